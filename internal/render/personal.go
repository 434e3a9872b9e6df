package render

import (
	"html"
	"strings"
)

// Slot tokens stand in for per-recipient values while an issue is rendered
// once. They use only [A-Za-z0-9_] so that html/template leaves them intact in
// every context (text, attribute, URL).
const (
	TokenName           = "__DIGEST_SUBSCRIBER_NAME__"
	TokenEmail          = "__DIGEST_SUBSCRIBER_EMAIL__"
	TokenUnsubscribeURL = "__DIGEST_UNSUBSCRIBE_URL__"
)

var tokens = []string{TokenName, TokenEmail, TokenUnsubscribeURL}

// Personal holds the per-recipient values substituted into a rendered issue.
type Personal struct {
	Name           string
	Email          string
	UnsubscribeURL string
}

func (p Personal) value(slot int, escapeHTML bool) string {
	var v string
	switch slot {
	case 0:
		v = p.Name
	case 1:
		v = p.Email
	case 2:
		v = p.UnsubscribeURL
	}
	if escapeHTML {
		return html.EscapeString(v)
	}
	return v
}

// template is a rendered text split at its slot tokens: parts[i] is followed
// by the value of slots[i]; the last part has no slot after it.
type slotted struct {
	parts []string
	slots []int
	html  bool
	size  int
}

func split(s string, escapeHTML bool) slotted {
	t := slotted{html: escapeHTML, size: len(s)}
	for {
		at, slot := -1, -1
		for i, tok := range tokens {
			if j := strings.Index(s, tok); j >= 0 && (at < 0 || j < at) {
				at, slot = j, i
			}
		}
		if at < 0 {
			t.parts = append(t.parts, s)
			return t
		}
		t.parts = append(t.parts, s[:at])
		t.slots = append(t.slots, slot)
		s = s[at+len(tokens[slot]):]
	}
}

func (t slotted) fill(p Personal) string {
	if len(t.slots) == 0 {
		return t.parts[0]
	}
	var b strings.Builder
	b.Grow(t.size + 256)
	for i, part := range t.parts {
		b.WriteString(part)
		if i < len(t.slots) {
			b.WriteString(p.value(t.slots[i], t.html))
		}
	}
	return b.String()
}
