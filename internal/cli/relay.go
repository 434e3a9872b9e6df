package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/metrics"
	"github.com/digest/digest/internal/plural"
	"github.com/digest/digest/internal/store"
)

// relayDown is the relay part of /healthz while delivery waits for it.
type relayDown struct {
	Status    string    `json:"status"` // "down", or "quota" while a sending cap holds delivery back
	Since     time.Time `json:"since"`
	LastReply string    `json:"last_reply"`
	RetryAt   time.Time `json:"retry_at"`
}

// relayHealth reports the relay when delivery waits for it; nil while it
// answers.
func relayHealth(r *deliver.RelayState) *relayDown {
	if r == nil {
		return nil
	}
	st := r.Status()
	if !st.Down {
		return nil
	}
	h := &relayDown{Status: "down", Since: st.Since, LastReply: st.Reply, RetryAt: st.Retry}
	if st.Quota {
		h.Status = "quota"
	}
	return h
}

// relayRecorder tells the metrics what the relay does, and the store while
// it is down, so that `digest status` in another process can say so.
type relayRecorder struct {
	m     *metrics.Metrics
	st    *store.Store
	log   *slog.Logger
	state *deliver.RelayState
}

// newRelayState is the relay's state for this process's delivery runs.
func (e *env) newRelayState() *deliver.RelayState {
	r := &relayRecorder{m: e.metrics, st: e.store, log: e.log}
	r.state = deliver.NewRelayState(r)
	return r.state
}

func (r *relayRecorder) RelayUp(up bool) {
	if up || !r.state.Status().Quota { // a cap is not the relay being down
		r.m.RelayUp(up)
	}
	if r.st == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if up {
		err = r.st.ClearRelayOutage(ctx)
	} else {
		s := r.state.Status()
		err = r.st.SaveRelayOutage(ctx, store.RelayOutage{Since: s.Since, Reply: s.Reply, Quota: s.Quota})
	}
	if err != nil {
		r.log.Warn("recording the relay's state for digest status", "err", err)
	}
}

func (r *relayRecorder) Deferred(reason string) { r.m.Deferred(reason) }

// printWaits says, in digest status, what the unfinished issue waits for:
// the relay (or a cap), and readers' retries not yet due.
func (e *env) printWaits(ctx context.Context, iss store.Issue, c ledger.Counts, runs []ledger.RunInfo) error {
	if !iss.CompletedAt.IsZero() || c.Unfinished() == 0 {
		return nil
	}
	if o, ok, err := e.store.LastRelayOutage(ctx); err != nil {
		return err
	} else if ok {
		printRelay(e.stdout, o, liveRuns(runs, time.Now()) > 0)
	}
	n, next, err := e.store.RetriesWaiting(ctx, iss.ID)
	if err != nil || n == 0 {
		return err
	}
	fmt.Fprintf(e.stdout, "  %s for a retry after a temporary failure of their own; the next at %s\n",
		plural.N(n, "reader waits", "readers wait"), next.Local().Format(time.DateTime))
	return nil
}

// printRelay says, in digest status, that delivery waits for the relay
// (or a sending cap), or that the last run stopped waiting for it.
func printRelay(w io.Writer, o store.RelayOutage, delivering bool) {
	what, since := "the relay", o.Since.Local().Format(time.DateTime)
	if o.Quota {
		what = "a sending cap"
	}
	if delivering {
		fmt.Fprintf(w, "  Waiting for %s since %s: %s\n", what, since, o.Reply)
		return
	}
	fmt.Fprintf(w, "  The last run stopped waiting for %s (unavailable since %s: %s); run send again to continue\n", what, since, o.Reply)
}

// liveRuns counts the runs whose lease is valid at now.
func liveRuns(runs []ledger.RunInfo, now time.Time) int {
	n := 0
	for _, r := range runs {
		if r.Live(now) {
			n++
		}
	}
	return n
}
