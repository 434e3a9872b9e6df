package render_test

import (
	"bytes"
	"html"
	"strings"
	"testing"

	"github.com/digest/digest/internal/render"
)

func TestPersonalize(t *testing.T) {
	htmlPart := `<p>Hi ` + render.TokenName + `</p><a href="` + render.TokenUnsubscribeURL + `">x</a> ` + render.TokenEmail + render.TokenName
	textPart := "Hi " + render.TokenName + "\n" + render.TokenUnsubscribeURL + "\n"
	r := render.NewRendered("S", htmlPart, textPart)
	tests := []struct {
		name       string
		p          render.Personal
		html, text string
	}{
		{"escaped in HTML, raw in text", render.Personal{Name: `Ada "<Lovelace>"`, Email: "a&b@example.org", UnsubscribeURL: "https://x.example/u?a=1&b='2'"},
			`<p>Hi Ada &#34;&lt;Lovelace&gt;&#34;</p><a href="https://x.example/u?a=1&amp;b=&#39;2&#39;">x</a> a&amp;b@example.org` + `Ada &#34;&lt;Lovelace&gt;&#34;`,
			"Hi Ada \"<Lovelace>\"\nhttps://x.example/u?a=1&b='2'\n"},
		{"empty values", render.Personal{}, `<p>Hi </p><a href="">x</a> `, "Hi \n\n"},
		{"tokens give the template back", render.Personal{Name: render.TokenName, Email: render.TokenEmail, UnsubscribeURL: render.TokenUnsubscribeURL}, htmlPart, textPart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.HTML(tt.p); got != tt.html {
				t.Errorf("HTML = %q, want %q", got, tt.html)
			}
			if got := r.Text(tt.p); got != tt.text {
				t.Errorf("Text = %q, want %q", got, tt.text)
			}
			if n := r.HTMLLen(tt.p); n != len(tt.html) {
				t.Errorf("HTMLLen = %d, want %d", n, len(tt.html))
			}
			if n := r.TextLen(tt.p); n != len(tt.text) {
				t.Errorf("TextLen = %d, want %d", n, len(tt.text))
			}
			var buf bytes.Buffer
			if n, err := r.WriteHTML(&buf, tt.p); err != nil || n != int64(buf.Len()) || buf.String() != tt.html {
				t.Errorf("WriteHTML = %d, %v, %q", n, err, buf.String())
			}
			buf.Reset()
			if n, err := r.WriteText(&buf, tt.p); err != nil || n != int64(buf.Len()) || buf.String() != tt.text {
				t.Errorf("WriteText = %d, %v, %q", n, err, buf.String())
			}
			// The segments rebuild the same parts.
			parts, slots := r.HTMLSegments()
			var b strings.Builder
			for i, part := range parts {
				b.WriteString(part)
				if i < len(slots) {
					b.WriteString(html.EscapeString(tt.p.Value(slots[i])))
				}
			}
			if b.String() != tt.html {
				t.Errorf("HTMLSegments rebuild %q", b.String())
			}
			parts, slots = r.TextSegments()
			b.Reset()
			for i, part := range parts {
				b.WriteString(part)
				if i < len(slots) {
					b.WriteString(tt.p.Value(slots[i]))
				}
			}
			if b.String() != tt.text {
				t.Errorf("TextSegments rebuild %q", b.String())
			}
		})
	}
	if r.HTMLSize() != len(htmlPart) {
		t.Errorf("HTMLSize = %d, want %d", r.HTMLSize(), len(htmlPart))
	}
}

func TestPersonalizeNoSlots(t *testing.T) {
	r := render.NewRendered("S", "<p>plain</p>", "plain\n")
	if got := r.HTML(reader); got != "<p>plain</p>" {
		t.Errorf("HTML = %q", got)
	}
	parts, slots := r.HTMLSegments()
	if len(parts) != 1 || len(slots) != 0 {
		t.Errorf("segments = %q, %v", parts, slots)
	}
}

func TestEscapeHTML(t *testing.T) {
	for _, s := range []string{"", "plain", `<a href="x">&'</a>`, "ünïcødé & <>", "&&&&"} {
		if got, want := render.EscapeHTML(s), html.EscapeString(s); got != want {
			t.Errorf("EscapeHTML(%q) = %q, want %q", s, got, want)
		}
	}
}

func FuzzEscapeHTML(f *testing.F) {
	f.Add(`<a href="x">&'</a>`)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := render.EscapeHTML(s), html.EscapeString(s); got != want {
			t.Errorf("EscapeHTML(%q) = %q, want %q", s, got, want)
		}
	})
}

// TestPersonalizeAllocs keeps the per-recipient cost at one allocation per
// part, and none when streaming.
func TestPersonalizeAllocs(t *testing.T) {
	out := rendered30(t)
	if n := testing.AllocsPerRun(20, func() { _ = out.HTML(reader); _ = out.Text(reader) }); n > 2 {
		t.Errorf("HTML+Text: %v allocations, want 2", n)
	}
	var buf bytes.Buffer
	buf.Grow(out.HTMLLen(reader) + out.TextLen(reader))
	if n := testing.AllocsPerRun(20, func() {
		buf.Reset()
		_, _ = out.WriteHTML(&buf, reader)
		_, _ = out.WriteText(&buf, reader)
	}); n > 0 {
		t.Errorf("WriteHTML+WriteText: %v allocations, want 0", n)
	}
}
