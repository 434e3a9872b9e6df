package render

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
