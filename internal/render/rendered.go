package render

import (
	"io"
	"slices"
)

// Rendered is an issue rendered once, with slot tokens where per-recipient
// values go. Personalizing it is a few string copies, not a template run.
type Rendered struct {
	Subject string
	html    slotted
	text    slotted
}

// NewRendered splits already rendered parts at their slot tokens.
func NewRendered(subject, html, text string) *Rendered {
	return &Rendered{Subject: subject, html: split(html, true), text: split(text, false)}
}

// HTML returns the HTML part for one recipient (values HTML-escaped).
func (r *Rendered) HTML(p Personal) string { return r.html.fill(p) }

// Text returns the plain-text part for one recipient.
func (r *Rendered) Text(p Personal) string { return r.text.fill(p) }

// HTMLSize is the size in bytes of the HTML part before personalization.
func (r *Rendered) HTMLSize() int { return r.html.size }

// HTMLLen is the size in bytes of the HTML part for p, computed without
// building it (to size a buffer).
func (r *Rendered) HTMLLen(p Personal) int { return r.html.len(p) }

// TextLen is the size in bytes of the plain-text part for p.
func (r *Rendered) TextLen(p Personal) int { return r.text.len(p) }

// WriteHTML writes the HTML part for p to w, as HTML returns it. It
// allocates nothing when w is an io.StringWriter (bufio.Writer,
// bytes.Buffer).
func (r *Rendered) WriteHTML(w io.Writer, p Personal) (int64, error) { return r.html.write(w, p) }

// WriteText writes the plain-text part for p to w, as Text returns it.
func (r *Rendered) WriteText(w io.Writer, p Personal) (int64, error) { return r.text.write(w, p) }

// HTMLSegments returns the HTML part split at its slots, for a writer that
// prepares (encodes) the constant parts once per issue: parts[i] is followed
// by the value of slots[i], escaped as html.EscapeString does; len(parts) is
// len(slots)+1. The slices are copies.
func (r *Rendered) HTMLSegments() (parts []string, slots []Slot) {
	return slices.Clone(r.html.parts), slices.Clone(r.html.slots)
}

// TextSegments is HTMLSegments for the plain-text part, whose values are
// inserted raw.
func (r *Rendered) TextSegments() (parts []string, slots []Slot) {
	return slices.Clone(r.text.parts), slices.Clone(r.text.slots)
}
