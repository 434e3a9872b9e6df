package render

import "strings"

// EscapeHTML is how the HTML part escapes a personal value, exposed so
// that the tests can hold it to html.EscapeString, which mail uses on
// HTMLSegments.
func EscapeHTML(s string) string {
	var b strings.Builder
	b.Grow(escapedLen(s))
	escapeInto(&b, s)
	return b.String()
}
