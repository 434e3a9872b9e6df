package render

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/issue"
)

// narrowNBSP is U+202F NARROW NO-BREAK SPACE, the "espace fine insécable"
// French typography puts before ! ? ; and : (it never starts a line).
const narrowNBSP = '\u202F'

// French reports whether a BCP 47 tag is French (fr, fr-CA, …): the
// issue's text then gets French spacing (see FrenchIssue).
func French(lang string) bool {
	l := strings.ToLower(lang)
	return l == "fr" || strings.HasPrefix(l, "fr-")
}

// FrenchIssue is iss with French spacing in its section names and its
// articles' titles and teasers. The cleaning of feed text drops a space
// before closing punctuation (an artifact of removed markup in English);
// in French that space belongs there, so it comes back as a narrow
// no-break space.
func FrenchIssue(iss issue.Issue) issue.Issue {
	sections := make([]issue.Section, len(iss.Sections))
	for i, s := range iss.Sections {
		arts := make([]article.Article, len(s.Articles))
		for j, a := range s.Articles {
			a.Title, a.Teaser = frenchSpacing(a.Title), frenchSpacing(a.Teaser)
			arts[j] = a
		}
		sections[i] = issue.Section{Name: frenchSpacing(s.Name), Articles: arts}
	}
	iss.Sections = sections
	return iss
}

// frenchSpacing puts a narrow no-break space before each ! ? ; : that ends
// a word ("Enfin !", "Pourquoi ?", "Note : …"), replacing an ordinary
// space there, and leaves alone those inside a word or a number ("12:30",
// "https://…", "a;b") and those already preceded by a no-break space.
func frenchSpacing(s string) string { return frenchAfter(s, 0) }

// frenchAfter is frenchSpacing of s where prev is the visible character
// before it (0: none), for text split by markup.
func frenchAfter(s string, prev rune) string {
	if !strings.ContainsAny(s, "!?;:") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isHighPunct(c) || !endsHere(s, i+1) {
			b.WriteByte(c)
			continue
		}
		before := strings.TrimRight(b.String(), " ")
		r, _ := utf8.DecodeLastRuneInString(before)
		if before == "" {
			r = prev
		}
		switch {
		case r == 0 || r == '\u00A0' || r == narrowNBSP || isHighPunct(byte(r)) && r < utf8.RuneSelf:
			// Nothing to space from, already spaced, or the second of "?!".
			b.WriteByte(c)
		case unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(")]»\"'’%…", r):
			b.Reset()
			b.WriteString(before)
			b.WriteRune(narrowNBSP)
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHighPunct(c byte) bool { return c == '!' || c == '?' || c == ';' || c == ':' }

// endsHere reports whether punctuation just before s[i] ends a word: the
// text ends, or a space, a quote, a bracket or more punctuation follows.
func endsHere(s string, i int) bool {
	if i >= len(s) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsSpace(r) || strings.ContainsRune(".,!?;:)]»\"'’…", r)
}

// frenchHTML applies frenchSpacing to the text of an HTML fragment (the
// rendered intro), not to its tags, attributes or character references.
func frenchHTML(h string) string {
	var b strings.Builder
	var prev rune // the last character of text written
	text := func(t string) {
		b.WriteString(frenchAfter(t, prev))
		if r, _ := utf8.DecodeLastRuneInString(strings.TrimRight(t, " ")); r != utf8.RuneError {
			prev = r
		}
	}
	for len(h) > 0 {
		i := strings.IndexAny(h, "<&")
		if i < 0 {
			text(h)
			break
		}
		text(h[:i])
		h = h[i:]
		end := 1
		if h[0] == '<' {
			if j := strings.IndexByte(h, '>'); j >= 0 {
				end = j + 1
			}
		} else if j := strings.IndexByte(h, ';'); j > 0 && j < 12 {
			end, prev = j+1, 'x' // a character reference stands for a letter or sign
		}
		b.WriteString(h[:end])
		h = h[end:]
	}
	return b.String()
}
