package web

import (
	"errors"
	"strings"
	"testing"
)

func TestWithoutAddress(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, email, msg string }{
		{"plain", "ann@example.org", "get subscriber Ann@Example.org: context deadline exceeded"},
		{"twice", "ann@example.org", "ann@example.org and ANN@EXAMPLE.ORG"},
		// Ⱥ is two bytes, ⱥ three: lower-casing moves every index after it.
		{"length changes", "ȺȺȺȺȺȺȺȺ@x.org", "get subscriber ȺȺȺȺȺȺȺȺ@x.org: timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := withoutAddress(errors.New(tt.msg), tt.email).Error()
			if strings.Contains(strings.ToLower(got), strings.ToLower(tt.email)) || !strings.Contains(got, "<address>") {
				t.Errorf("withoutAddress(%q) = %q", tt.msg, got)
			}
		})
	}
}
