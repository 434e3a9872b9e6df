package cli

import "testing"

func TestHealthURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ listen, want string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080/healthz"},
		{":8080", "http://127.0.0.1:8080/healthz"},
		{"0.0.0.0:9000", "http://127.0.0.1:9000/healthz"},
		{"[::]:8080", "http://[::1]:8080/healthz"},
		{"[2001:db8::1]:8080", "http://[2001:db8::1]:8080/healthz"},
		{"news.example.org:80", "http://news.example.org:80/healthz"},
	} {
		if got := healthURL(tt.listen); got != tt.want {
			t.Errorf("healthURL(%q) = %q, want %q", tt.listen, got, tt.want)
		}
	}
}
