package article

import (
	"testing"
)

func TestCanonical(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"already canonical", "https://example.com/a/b", "https://example.com/a/b"},
		{"scheme and host lower-cased", "HTTPS://Example.COM/Path/Case", "https://example.com/Path/Case"},
		{"default https port dropped", "https://example.com:443/a", "https://example.com/a"},
		{"default http port dropped", "http://example.com:80/a", "http://example.com/a"},
		{"other port kept", "http://example.com:8080/a", "http://example.com:8080/a"},
		{"fragment dropped", "https://example.com/a#comments", "https://example.com/a"},
		{"utm params dropped", "https://example.com/a?utm_source=rss&utm_medium=feed&UTM_Campaign=x", "https://example.com/a"},
		{"click ids dropped", "https://example.com/a?fbclid=1&gclid=2&mc_cid=3&mc_eid=4&ref=home", "https://example.com/a"},
		{"params sorted, tracking dropped", "https://example.com/a?z=1&utm_source=x&a=2&m=3", "https://example.com/a?a=2&m=3&z=1"},
		{"repeated keys keep their order", "https://example.com/a?b=2&a=x&b=1", "https://example.com/a?a=x&b=2&b=1"},
		{"encoding of values kept", "https://example.com/s?q=caf%C3%A9+au+lait", "https://example.com/s?q=caf%C3%A9+au+lait"},
		{"empty path becomes slash", "https://Example.com", "https://example.com/"},
		{"empty query dropped", "https://example.com/a?", "https://example.com/a"},
		{"spaces trimmed", "  https://example.com/a  ", "https://example.com/a"},
		{"unparseable returned trimmed", " http://exa mple.com/%zz ", "http://exa mple.com/%zz"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Canonical(tt.in); got != tt.want {
				t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tests := []struct{ name, base, ref, want string }{
		{"relative file", "https://ex.org/blog/", "posts/one.html", "https://ex.org/blog/posts/one.html"},
		{"root relative", "https://ex.org/blog/", "/about", "https://ex.org/about"},
		{"parent", "https://ex.org/blog/feed.xml", "../img/a.png", "https://ex.org/img/a.png"},
		{"protocol relative", "https://ex.org/", "//cdn.ex.org/a.png", "https://cdn.ex.org/a.png"},
		{"absolute kept", "https://ex.org/", "http://other.org/x", "http://other.org/x"},
		{"empty ref", "https://ex.org/", "", ""},
		{"no base", "", "posts/one.html", "posts/one.html"},
		{"relative base", "blog/", "one.html", "one.html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Resolve(tt.base, tt.ref); got != tt.want {
				t.Errorf("Resolve(%q, %q) = %q, want %q", tt.base, tt.ref, got, tt.want)
			}
		})
	}
}

func TestWebURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://ex.org/a", "https://ex.org/a"},
		{"HTTP://ex.org/a", "http://ex.org/a"},
		{"javascript:alert(1)", ""},
		{"data:image/png;base64,AAAA", ""},
		{"/relative", ""},
		{"mailto:a@b.org", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := WebURL(tt.in); got != tt.want {
				t.Errorf("WebURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
