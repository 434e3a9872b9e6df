package config

import (
	"strings"
	"testing"
)

func TestValidateBounces(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Bounces)
		want   string // "" valid
	}{
		{"unset", func(*Bounces) {}, ""},
		{"address and listen", func(b *Bounces) { b.Address, b.Listen = "bounces@news.example.org", "127.0.0.1:2526" }, ""},
		{"display name", func(b *Bounces) { b.Address = "Bounces <bounces@news.example.org>" }, "bounces.address"},
		{"plus", func(b *Bounces) { b.Address = "bounces+x@news.example.org" }, "must not contain '+'"},
		{"not an address", func(b *Bounces) { b.Address = "bounces" }, "bounces.address"},
		{"listen without address", func(b *Bounces) { b.Listen = "127.0.0.1:2526" }, "needs bounces.address"},
		{"bad listen", func(b *Bounces) { b.Address, b.Listen = "b@example.org", "2526" }, "bounces.listen"},
	}
	for _, tt := range tests {
		c := valid()
		tt.change(&c.Bounces)
		err := c.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}
