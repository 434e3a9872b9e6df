package subscriber

import (
	"fmt"
	"testing"
)

// TestSeenSetAcrossGrowth: every address is new once and then a repeat of
// its own first line, through many growths of every shard.
func TestSeenSetAcrossGrowth(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 17, 5000, 200_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			s := newSeenSet()
			key := func(i int) string { return fmt.Sprintf("reader%07d@example.org", i) }
			for i := range n {
				if first, dup := s.firstLine(key(i), i+2); dup {
					t.Fatalf("%s (line %d): a repeat of line %d, want new", key(i), i+2, first)
				}
			}
			for i := n - 1; i >= 0; i-- {
				if first, dup := s.firstLine(key(i), n+i+2); !dup || first != i+2 {
					t.Fatalf("%s again: (%d, %v), want (%d, true)", key(i), first, dup, i+2)
				}
			}
			total := 0
			for _, sh := range s.shards {
				total += sh.n
				if len(sh.hashes) > 0 && sh.n*5 > len(sh.hashes)*4 {
					t.Errorf("a shard holds %d in %d slots: over 80%% full", sh.n, len(sh.hashes))
				}
			}
			if total != n {
				t.Errorf("%d entries, want %d", total, n)
			}
		})
	}
}
