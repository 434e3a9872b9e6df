package pipeline

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/lease"
	"github.com/digest/digest/internal/ledger"
)

// DefaultLease is the length of a delivery run's lease. The rows of a run
// that was killed are taken over at most this long after its last renewal:
// well within a minute. It also bounds the clock skew tolerated between
// machines sharing a database.
const DefaultLease = 30 * time.Second

// renewEvery is how often a run renews its lease: every 2s, or a third of
// the lease when that is shorter, so that a run misses many renewals before
// others may take over its rows. A renewal is also when a run learns how
// many runs share the list's rate, so the frequent renewals let the rate
// follow runs that join or end within seconds. Each is one small
// transaction.
func renewEvery(ttl time.Duration) time.Duration { return min(ttl/3, 2*time.Second) }

// Runs registers delivery runs (package store implements it; cli adapts).
type Runs interface {
	// BeginRun registers a run under a lease of ttl. Unless info.Worker is
	// set it fails with a *ledger.BusyError while another run is live.
	BeginRun(ctx context.Context, info ledger.RunInfo, ttl time.Duration) (Run, error)
	// LiveRuns returns the runs whose lease has not expired, oldest first.
	LiveRuns(ctx context.Context) ([]ledger.RunInfo, error)
}

// Run is one registered delivery run: the ledger as it sees it, and its
// lease.
type Run interface {
	deliver.SharedLedger
	// Renew extends the lease and returns how many runs are live; it
	// returns an error wrapping ledger.ErrLeaseLost when the lease had
	// already expired.
	Renew(ctx context.Context) (live int, err error)
	// End ends the lease and gives back any row still held.
	End(ctx context.Context) error
	Info() ledger.RunInfo
}

// runLease keeps a run's lease (lease.Keeper, renewed every renewEvery)
// and answers the engine's questions about it (deliver.Lease): whether it
// is still valid, and how many runs share the list's rate, as the last
// renewal counted them.
type runLease struct {
	*lease.Keeper
	peers atomic.Int64
}

var _ deliver.Lease = (*runLease)(nil)

// keep starts renewing run's lease every renewEvery(ttl), on the lease
// clock now, until close is called.
func keep(ctx context.Context, run Run, ttl time.Duration, now func() time.Time, log *slog.Logger) *runLease {
	r := &runLease{}
	r.peers.Store(1)
	r.Keeper = lease.Keep(ctx, lease.Options{
		Name: "delivery run " + run.Info().ID, TTL: ttl, Every: renewEvery(ttl), Now: now, Logger: log,
		Renew: func(ctx context.Context) error {
			live, err := run.Renew(ctx)
			if err == nil {
				r.peers.Store(int64(max(live, 1)))
			}
			return err
		},
	})
	return r
}

// Peers is how many live runs the last renewal saw.
func (r *runLease) Peers() int { return int(r.peers.Load()) }
