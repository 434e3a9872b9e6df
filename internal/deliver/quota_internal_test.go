package deliver

import (
	"context"
	"testing"
	"time"
)

// A slot refunded after a refresh emptied the slots' times is still
// uncounted: two messages taken and refunded across a refresh leave the
// whole cap free at the next refresh (before, the first stayed counted in
// flight for the rest of the run).
func TestRefundAcrossARefresh(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	noneSent := func(context.Context, time.Time) (int, error) { return 0, nil }
	o := Options{PerHour: 2, SentSince: noneSent, Now: func() time.Time { return now }}
	q, err := newQuota(ctx, o, func() int { return 0 }, 1)
	if err != nil {
		t.Fatal(err)
	}
	first, err := q.take(ctx, now, 1)
	if err != nil {
		t.Fatal(err)
	}
	later := now.Add(quotaRefresh + time.Second) // the next take refreshes
	second, err := q.take(ctx, later, 1)
	if err != nil {
		t.Fatal(err)
	}
	q.refund(first)
	q.refund(second)
	// At the next refresh nothing is in flight any more.
	next := later.Add(quotaRefresh + time.Second)
	for i := range 2 {
		if _, err := q.take(ctx, next, 1); err != nil {
			t.Fatalf("take %d after both refunds: %v", i+1, err)
		}
	}
}
