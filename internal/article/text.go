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
func PlainText(s string) string {
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(s))
	skip := 0 // depth inside skipContent elements
	for {
		switch z.Next() {
		case html.ErrorToken: // io.EOF: the tokenizer does not fail otherwise
			return collapse(b.String())
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			tt := z.Token()
			if skipContent[tt.DataAtom] {
				switch {
				case tt.Type == html.StartTagToken:
					skip++
				case tt.Type == html.EndTagToken && skip > 0:
					skip--
				}
			}
			if !inline[tt.DataAtom] {
				b.WriteByte(' ')
			}
		}
	}
}

// Clean makes a plain-text title out of a possibly marked-up one.
func Clean(s string) string { return PlainText(s) }

// collapse removes invalid UTF-8, control and invisible characters, and
// collapses runs of white space into one space.
func collapse(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == utf8.RuneError: // invalid byte, or a U+FFFD left by a decoder
			continue
		case unicode.IsSpace(r):
			space = true
			continue
		case unicode.IsControl(r), r == '\u00AD', r == '\u200B', r == '\uFEFF':
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
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
	rs := []rune(text)
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
