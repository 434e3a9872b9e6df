package render

import (
	htmltemplate "html/template"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/digest/digest/internal/article"
)

// funcMap is the functions available to every template.
func funcMap(loc *time.Location) map[string]any {
	return map[string]any{
		// date formats t in the newsletter's time zone with a Go layout.
		"date": func(layout string, t time.Time) string { return t.In(loc).Format(layout) },
		// wrap word-wraps s at width columns, never breaking a word or URL.
		"wrap": Wrap,
		// truncate cuts s to about n characters at a word, ending in "…"
		// when cut (as teasers are cut); text that fits is kept whole.
		"truncate": func(n int, s string) string { return article.Teaser(s, n) },
		"upper":    strings.ToUpper,
		"lower":    strings.ToLower,
		// plural picks one or many by n.
		"plural": func(n int, one, many string) string {
			if n == 1 {
				return one
			}
			return many
		},
		// rule returns a line of n '=' characters, for text headings.
		"rule": func(n int) string { return strings.Repeat("=", n) },
		// runes is the length of s in characters, for underlining it.
		"runes": utf8.RuneCountInString,
		"sub":   func(a, b int) int { return a - b },
		"add":   func(a, b int) int { return a + b },
		// mso wraps trusted markup in a conditional comment that only
		// Outlook for Windows reads (html/template drops comments written
		// in a template), e.g. a fixed-width table around a fluid column.
		"mso": func(markup string) htmltemplate.HTML {
			return htmltemplate.HTML("<!--[if mso]>" + markup + "<![endif]-->")
		},
		// spacer returns n invisible characters to put after the preheader,
		// so that inboxes do not fill the preview with the body's text.
		"spacer": func(n int) htmltemplate.HTML {
			return htmltemplate.HTML(strings.Repeat("&#847;&zwnj;&nbsp;", n))
		},
	}
}

// fields splits s at white space where a line may break: not at a no-break
// space (U+00A0, U+2007, U+202F, U+2060), which French typography puts
// before ! ? ; : and which must stay with the word.
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		switch r {
		case '\u00A0', '\u2007', '\u202F', '\u2060':
			return false
		}
		return unicode.IsSpace(r)
	})
}

// Wrap word-wraps s at width columns (runes). Existing line breaks are kept;
// a word longer than width (such as a URL) stands alone on its line, unbroken.
func Wrap(width int, s string) string {
	var b strings.Builder
	for i, para := range strings.Split(s, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		col := 0
		for _, w := range fields(para) {
			n := utf8.RuneCountInString(w)
			switch {
			case col == 0:
			case col+1+n > width:
				b.WriteByte('\n')
				col = 0
			default:
				b.WriteByte(' ')
				col++
			}
			b.WriteString(w)
			col += n
		}
	}
	return b.String()
}
