package article

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Sanitizer cleans untrusted HTML with an allow-list. Building the policy
// costs about half a millisecond, so build one and share it; it is safe for
// concurrent use.
type Sanitizer struct {
	policy *bluemonday.Policy
}

// NewSanitizer returns a Sanitizer for user-generated content: formatting,
// links, images and tables are kept; script, style, iframe, object, forms,
// event-handler attributes and non-http(s)/mailto URLs are removed; absolute
// links get rel="nofollow noopener" and target="_blank".
func NewSanitizer() *Sanitizer {
	p := bluemonday.UGCPolicy()
	p.RequireNoFollowOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true) // which also adds noopener
	p.AddSpaceWhenStrippingTag(true)
	return &Sanitizer{policy: p}
}

// HTML returns s with everything outside the allow-list removed. The result
// is valid UTF-8. Text without '<' has no markup to remove: it is only
// escaped, without running the policy (a fifth of the cost of a feed).
func (s *Sanitizer) HTML(in string) string {
	in = strings.ToValidUTF8(in, "")
	if !strings.Contains(in, "<") {
		return escapeText(in)
	}
	return s.policy.Sanitize(in)
}

// escapeText is what the policy makes of text without markup: white space
// alone is kept as it is; otherwise entities are decoded once, newlines
// normalized to \n as an HTML tokenizer does, and the special characters
// escaped.
func escapeText(s string) string {
	if strings.TrimSpace(s) == "" {
		return s
	}
	if strings.IndexByte(s, '&') >= 0 {
		s = html.UnescapeString(s)
	}
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	}
	return html.EscapeString(s)
}

// skipContent are elements whose text is never reader-visible prose.
var skipContent = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Template: true, atom.Head: true,
	atom.Noscript: true, atom.Iframe: true, atom.Object: true, atom.Svg: true,
	atom.Title: true, atom.Select: true, atom.Textarea: true,
}

// inline elements join their text to the neighbours'; every other element
// (p, div, li, br, td, …) separates words.
var inline = map[atom.Atom]bool{
	atom.A: true, atom.Abbr: true, atom.B: true, atom.Bdi: true, atom.Bdo: true,
	atom.Cite: true, atom.Code: true, atom.Data: true, atom.Del: true, atom.Dfn: true,
	atom.Em: true, atom.Font: true, atom.I: true, atom.Ins: true, atom.Kbd: true,
	atom.Mark: true, atom.Q: true, atom.S: true, atom.Samp: true, atom.Small: true,
	atom.Span: true, atom.Strike: true, atom.Strong: true, atom.Sub: true,
	atom.Sup: true, atom.Time: true, atom.Tt: true, atom.U: true, atom.Var: true,
	atom.Wbr: true, atom.Nobr: true, atom.Big: true,
}

// PlainText turns an HTML fragment into one line of text: tags stripped,
// entities decoded, block boundaries turned into spaces, script and style
// contents dropped, whitespace collapsed, control characters and invalid
// UTF-8 removed.
func PlainText(s string) string { return plainText(s, -1) }

// HTMLTeaser is Teaser(PlainText(s), max), but converts only as much of s
// as the teaser needs: a long description costs what its first paragraphs
// cost.
func HTMLTeaser(s string, max int) string {
	if max <= 0 {
		return ""
	}
	return Teaser(plainText(s, max), max)
}

// plainText is PlainText; with need >= 0 it may stop early, returning a
// prefix of the text that has at least need+2 runes and ends in a letter or
// digit. Such a prefix gives the same Teaser(_, need) as the whole text:
// the cut depends only on the first need+1 runes, and no source-cut mark
// (TidyEllipsis) can reach back past that final letter.
func plainText(s string, need int) string {
	if !strings.ContainsAny(s, "<&") {
		return collapse(s)
	}
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(s))
	skip := 0 // depth inside skipContent elements
	checked := 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken: // io.EOF: the tokenizer does not fail otherwise
			return collapse(b.String())
		case html.TextToken:
			if skip > 0 {
				continue
			}
			text := z.Text()
			b.Write(text)
			if need >= 0 && b.Len() >= need+2 && b.Len()-checked >= 256 && wordEnd(text) {
				checked = b.Len()
				if t := collapse(b.String()); enough(t, need) {
					return t
				}
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if skipContent[a] {
				switch {
				case tt == html.StartTagToken:
					skip++
				case tt == html.EndTagToken && skip > 0:
					skip--
				}
			}
			if !inline[a] {
				b.WriteByte(' ')
			}
		}
	}
}

// wordEnd is a cheap first test for enough: text ends in what may be a
// letter or digit.
func wordEnd(text []byte) bool {
	if len(text) == 0 {
		return false
	}
	c := text[len(text)-1]
	return c >= utf8.RuneSelf || (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z')
}

// enough reports whether collapsed text t can stand for the whole text in
// Teaser(_, need) (see plainText).
func enough(t string, need int) bool {
	r, _ := utf8.DecodeLastRuneInString(t)
	return (unicode.IsLetter(r) || unicode.IsDigit(r)) && utf8.RuneCountInString(t) >= need+2
}

// Clean makes a plain-text title out of a possibly marked-up one.
func Clean(s string) string { return PlainText(s) }

// collapse removes invalid UTF-8, control and invisible characters, and
// collapses runs of white space into one space. A space before closing
// punctuation that ends a word ("budget ." where markup was removed) is
// dropped too. Text that is already clean is returned without a copy.
func collapse(s string) string {
	c := collapser{s: s, start: true}
	for i := 0; i < len(s); {
		if ch := s[i]; ch > ' ' && ch < 0x7f && !c.space {
			// Most bytes: a printable ASCII character inside a word.
			c.start = false
			if c.b != nil {
				c.b = append(c.b, ch)
			}
			i++
		} else if ch < utf8.RuneSelf {
			i = c.ascii(i)
		} else {
			i = c.nonASCII(i)
		}
	}
	if c.b == nil {
		return s
	}
	return string(c.b)
}

// collapser is the state of collapse between characters.
type collapser struct {
	s     string
	b     []byte // nil while the output equals s[:i]
	space bool   // white space seen since the last character kept
	start bool   // nothing written yet
}

// ascii handles the ASCII byte at i (the fast path) and returns the index
// of the next character.
func (c *collapser) ascii(i int) int {
	ch := c.s[i]
	switch {
	case ch == ' ' && c.singleSpace(i):
		// A single space between words: kept as it is.
		if c.b != nil {
			c.b = append(c.b, ' ')
		}
	case ch == ' ' || (ch >= '\t' && ch <= '\r'):
		c.b = diverge(c.b, c.s, i)
		c.space = true
	case ch < 0x20 || ch == 0x7f:
		c.b = diverge(c.b, c.s, i)
	default:
		c.keep(i, i+1, closing(ch) && endsWord(c.s, i+1))
	}
	return i + 1
}

// singleSpace reports whether the space at i is one between two words,
// which stays as it is.
func (c *collapser) singleSpace(i int) bool {
	s := c.s
	return !c.space && !c.start && i+1 < len(s) && s[i+1] > ' ' && s[i+1] < 0x7f &&
		!(closing(s[i+1]) && endsWord(s, i+2))
}

// nonASCII handles the rune at i and returns the index of the next one.
func (c *collapser) nonASCII(i int) int {
	r, n := utf8.DecodeRuneInString(c.s[i:])
	switch {
	case r == utf8.RuneError: // invalid byte, or a U+FFFD left by a decoder
		c.b = diverge(c.b, c.s, i)
	case unicode.IsSpace(r): // before IsControl: U+0085 is both
		c.b = diverge(c.b, c.s, i)
		c.space = true
	case unicode.IsControl(r), r == '\u00AD', r == '\u200B', r == '\uFEFF':
		c.b = diverge(c.b, c.s, i)
	default:
		c.keep(i, i+n, false)
	}
	return i + n
}

// keep writes s[i:j], after the one space that stands for the white space
// before it unless it starts the text or closes a word.
func (c *collapser) keep(i, j int, closes bool) {
	if c.space && !c.start && !closes {
		c.b = append(c.b, ' ')
	}
	c.space, c.start = false, false
	if c.b != nil {
		c.b = append(c.b, c.s[i:j]...)
	}
}

// closing is punctuation that follows a word without a space: a space
// before it is an artifact of removed markup or of careless typing.
func closing(c byte) bool {
	switch c {
	case '.', ',', ';', ':', '!', '?', ')', ']', '}':
		return true
	}
	return false
}

// endsWord reports whether closing punctuation just before s[i] ends a word
// in collapse's output: the text ends there, or white space or more closing
// punctuation follows (so ".NET" or ":x" keep their space). Characters
// collapse drops are skipped over.
func endsWord(s string, i int) bool {
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == ' ' || (c >= '\t' && c <= '\r'):
				return true
			case c < 0x20 || c == 0x7f:
				i++
				continue
			}
			return closing(c)
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case unicode.IsSpace(r):
			return true
		case r == utf8.RuneError, unicode.IsControl(r), r == '\u00AD', r == '\u200B', r == '\uFEFF':
			i += n
			continue
		}
		return false
	}
	return true
}

// diverge starts collapse's output buffer, a copy of s[:i], if need be.
func diverge(b []byte, s string, i int) []byte {
	if b != nil {
		return b
	}
	b = make([]byte, i, len(s))
	copy(b, s[:i])
	return b
}

// Teaser cuts text to at most max characters (runes) plus an ellipsis. It
// cuts at a word boundary, or between two CJK characters, when one lies in
// the second half of the allowance, and otherwise at a rune; trailing spaces,
// dashes and separating punctuation are trimmed before the "…". White space
// is collapsed and invalid UTF-8 dropped first, and a cut the source made
// itself ("as part of a...", "[…]", "[...]") ends in one "…" (see
// TidyEllipsis). Text that fits is returned whole, without another
// ellipsis. max <= 0 gives "".
//
// The result is valid UTF-8, at most max+1 runes long, and never longer than
// the collapsed input plus one rune.
func Teaser(text string, max int) string {
	if max <= 0 {
		return ""
	}
	text = TidyEllipsis(collapse(text))
	if utf8.RuneCountInString(text) <= max {
		return text
	}
	rs := make([]rune, 0, max+1) // the runes the cut looks at
	for _, r := range text {
		if len(rs) > max {
			break
		}
		rs = append(rs, r)
	}
	cut := max // rs[:cut] is kept; rs[cut] exists
	for b := max; b >= max/2 && b > 0; b-- {
		if breakBefore(rs, b) {
			cut = b
			break
		}
	}
	// Don't separate a base character from its marks or a joined sequence.
	for cut > 1 && (joins(rs[cut]) || rs[cut-1] == '\u200D') {
		cut--
	}
	kept := strings.TrimRightFunc(string(rs[:cut]), trimmable)
	if kept == "" {
		kept = strings.TrimRightFunc(string(rs[:cut]), unicode.IsSpace)
	}
	return kept + "…"
}

// sourceCuts are the ways feeds and pages mark text they cut themselves,
// longest first.
var sourceCuts = []string{"[...]", "[…]", "(...)", "(…)", "...", "…"}

// TidyEllipsis makes the mark of a cut a source made itself at the end of
// text ("a...", "a […]", "a [...]", "a …") a single "…" right after the last
// word. Text that is only dots, or has no such mark, is returned as it is.
// The result is never longer than text.
func TidyEllipsis(text string) string {
	t := strings.TrimRightFunc(text, unicode.IsSpace)
	for _, suf := range sourceCuts {
		rest, ok := strings.CutSuffix(t, suf)
		if !ok {
			continue
		}
		rest = strings.TrimRightFunc(rest, func(r rune) bool {
			return unicode.IsSpace(r) || r == '.' || r == ',' || r == ';' || r == ':' || r == '…'
		})
		if rest == "" {
			return text
		}
		return rest + "…"
	}
	return text
}

// breakBefore reports whether a line may break between rs[i-1] and rs[i].
func breakBefore(rs []rune, i int) bool {
	prev, next := rs[i-1], rs[i]
	return unicode.IsSpace(prev) || unicode.IsSpace(next) ||
		ideographic(prev) || ideographic(next) ||
		(prev == '-' || prev == '/' || prev == '–' || prev == '—')
}

// ideographic scripts write words without spaces.
func ideographic(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Thai,
		unicode.Lao, unicode.Khmer, unicode.Myanmar) ||
		(r >= 0x3000 && r <= 0x303F) || (r >= 0xFF00 && r <= 0xFF65) // CJK punctuation, full-width forms
}

// joins reports runes that attach to the rune before them.
func joins(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc) || r == '\u200D' ||
		(r >= 0xFE00 && r <= 0xFE0F) || (r >= 0x1F3FB && r <= 0x1F3FF)
}

// trimmable runes look wrong before an ellipsis.
func trimmable(r rune) bool {
	if unicode.IsSpace(r) || unicode.In(r, unicode.Pd, unicode.Ps, unicode.Pi) {
		return true
	}
	return strings.ContainsRune(",.;:!?…·、。，；：！？/\\|&*#@", r)
}

// FirstImage returns the src of the first <img> in an HTML fragment, as
// written (unresolved), or "".
func FirstImage(s string) string {
	if !strings.Contains(s, "<") {
		return ""
	}
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			t := z.Token()
			if t.DataAtom != atom.Img {
				continue
			}
			for _, a := range t.Attr {
				if a.Key == "src" && strings.TrimSpace(a.Val) != "" {
					return strings.TrimSpace(a.Val)
				}
			}
		}
	}
}
