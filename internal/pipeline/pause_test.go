package pipeline_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/store"
)

// countingStore counts the calls of Counts, which reads every row of an
// issue.
type countingStore struct {
	*store.Store
	counts atomic.Int32
}

func (c *countingStore) Counts(ctx context.Context, id string) (ledger.Counts, error) {
	c.counts.Add(1)
	return c.Store.Counts(ctx, id)
}

// The bounce-rate check reads the counts before the first claim
// and then only now and then, not before each claim: on a list of
// millions each read costs a scan.
func TestBounceRateIsNotReadBeforeEveryClaim(t *testing.T) {
	t.Parallel()
	deliverWith := func(rate float64) int32 {
		src := &fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-time.Hour))}}
		p, st := newPipeline(t, src)
		cs := &countingStore{Store: st}
		p.Store = cs
		for i := range 300 {
			addReaders(t, st, fmt.Sprintf("r%03d@example.org", i))
		}
		wire(t, p, st, &leaseClock{t: t0}) // the lease clock stands still
		p.Delivery.PauseOnBounceRate = rate
		res, err := p.Deliver(context.Background(), pipeline.Request{Now: t0})
		if err != nil || res.Summary.Sent != 300 {
			t.Fatalf("rate %v: %+v, %v", rate, res.Summary, err)
		}
		return cs.counts.Load()
	}
	off, on := deliverWith(0), deliverWith(0.1)
	if on > off+1 {
		t.Errorf("Counts read %d times with the check on, %d with it off: want one read more at most", on, off)
	}
}
