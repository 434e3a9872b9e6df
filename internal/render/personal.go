package render

import (
	"io"
	"strings"
)

// Slot tokens stand in for per-recipient values while an issue is rendered
// once. They use only [A-Za-z0-9_] so that html/template leaves them intact in
// every context (text, attribute, URL).
const (
	TokenName           = "__DIGEST_SUBSCRIBER_NAME__"
	TokenEmail          = "__DIGEST_SUBSCRIBER_EMAIL__"
	TokenUnsubscribeURL = "__DIGEST_UNSUBSCRIBE_URL__"
	TokenPreferencesURL = "__DIGEST_PREFERENCES_URL__"
)

// Slot names a per-recipient value in a rendered part.
type Slot int

// The slots, in the order of their tokens.
const (
	SlotName           Slot = iota // Personal.Name, in place of TokenName
	SlotEmail                      // Personal.Email, in place of TokenEmail
	SlotUnsubscribeURL             // Personal.UnsubscribeURL, in place of TokenUnsubscribeURL
	SlotPreferencesURL             // Personal.PreferencesURL, in place of TokenPreferencesURL
)

var tokens = [...]string{TokenName, TokenEmail, TokenUnsubscribeURL, TokenPreferencesURL}

// Personal holds the per-recipient values substituted into a rendered issue.
type Personal struct {
	Name           string
	Email          string
	UnsubscribeURL string
	PreferencesURL string
}

// Value returns the raw value of slot s; escape it with EscapeHTML for the
// HTML part.
func (p Personal) Value(s Slot) string {
	switch s {
	case SlotName:
		return p.Name
	case SlotEmail:
		return p.Email
	case SlotUnsubscribeURL:
		return p.UnsubscribeURL
	case SlotPreferencesURL:
		return p.PreferencesURL
	}
	return ""
}

// htmlEscape returns the entity for a byte that the HTML part escapes in
// values, as html.EscapeString does, so that a value is safe in text and in
// quoted attributes alike; "" for any other byte.
func htmlEscape(c byte) string {
	switch c {
	case '&':
		return "&amp;"
	case '\'':
		return "&#39;"
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	case '"':
		return "&#34;"
	}
	return ""
}

func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if e := htmlEscape(s[i]); e != "" {
			n += len(e) - 1
		}
	}
	return n
}

// writeEscaped writes s HTML-escaped, in runs between the escaped bytes:
// no allocation when w is an io.StringWriter.
func writeEscaped(w io.Writer, s string) (int64, error) {
	var n int64
	last := 0
	for i := 0; i < len(s); i++ {
		e := htmlEscape(s[i])
		if e == "" {
			continue
		}
		m, err := io.WriteString(w, s[last:i])
		n += int64(m)
		if err != nil {
			return n, err
		}
		m, err = io.WriteString(w, e)
		n += int64(m)
		if err != nil {
			return n, err
		}
		last = i + 1
	}
	m, err := io.WriteString(w, s[last:])
	return n + int64(m), err
}

// slotted is a rendered text split at its slot tokens: parts[i] is followed
// by the value of slots[i]; the last part has no slot after it.
type slotted struct {
	parts []string
	slots []Slot
	html  bool
	size  int // bytes of the text with its tokens
	fixed int // bytes of the parts alone
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
			t.fixed += len(s)
			return t
		}
		t.parts = append(t.parts, s[:at])
		t.fixed += at
		t.slots = append(t.slots, Slot(slot))
		s = s[at+len(tokens[slot]):]
	}
}

// len is the size of the text filled in for p.
func (t *slotted) len(p Personal) int {
	n := t.fixed
	for _, s := range t.slots {
		if t.html {
			n += escapedLen(p.Value(s))
		} else {
			n += len(p.Value(s))
		}
	}
	return n
}

// fill returns the text for p, in one allocation of the exact size. It
// does not go through write: a strings.Builder passed as an io.Writer would
// escape to the heap.
func (t *slotted) fill(p Personal) string {
	if len(t.slots) == 0 {
		return t.parts[0]
	}
	var b strings.Builder
	b.Grow(t.len(p))
	for i, part := range t.parts {
		b.WriteString(part)
		if i == len(t.slots) {
			break
		}
		v := p.Value(t.slots[i])
		if t.html {
			escapeInto(&b, v)
		} else {
			b.WriteString(v)
		}
	}
	return b.String()
}

func escapeInto(b *strings.Builder, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		if e := htmlEscape(s[i]); e != "" {
			b.WriteString(s[last:i])
			b.WriteString(e)
			last = i + 1
		}
	}
	b.WriteString(s[last:])
}

// write streams the text for p to w; it allocates nothing when w is an
// io.StringWriter (bufio.Writer, bytes.Buffer, strings.Builder).
func (t *slotted) write(w io.Writer, p Personal) (int64, error) {
	var n int64
	for i, part := range t.parts {
		m, err := io.WriteString(w, part)
		n += int64(m)
		if err != nil {
			return n, err
		}
		if i == len(t.slots) {
			break
		}
		v := p.Value(t.slots[i])
		var k int64
		if t.html {
			k, err = writeEscaped(w, v)
		} else {
			var m int
			m, err = io.WriteString(w, v)
			k = int64(m)
		}
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
