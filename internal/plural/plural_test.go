package plural_test

import (
	"testing"

	"github.com/digest/digest/internal/plural"
)

func TestN(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		n    int
		want string
	}{
		{0, "0 stories"},
		{1, "1 story"},
		{2, "2 stories"},
		{-1, "-1 stories"},
		{1204, "1204 stories"},
	} {
		if got := plural.N(c.n, "story", "stories"); got != c.want {
			t.Errorf("N(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
