package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/digest/digest/internal/deliver"
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
	BeginRun(ctx context.Context, info ledger.Run, ttl time.Duration) (Run, error)
	// LiveRuns returns the runs whose lease has not expired, oldest first.
	LiveRuns(ctx context.Context) ([]ledger.Run, error)
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
	Info() ledger.Run
}

// keeper renews a run's lease and answers the engine's questions about it
// (deliver.Lease). It renews every renewEvery: in the background,
// so that a run busy elsewhere (a long SMTP reply, a big enqueue) keeps its
// lease, and also when the engine asks and a renewal is due, so that the
// lease follows the lease clock even when the timer lags.
type keeper struct {
	run      Run
	ttl      time.Duration
	now      func() time.Time
	log      *slog.Logger
	ctx      context.Context
	renewing sync.Mutex // one renewal at a time
	mu       sync.Mutex
	ok       time.Time // start of the last successful renewal (or registration)
	tried    time.Time // start of the last renewal attempt
	peers    int
	lost     bool
	stop     context.CancelFunc
	done     chan struct{}
}

var _ deliver.Lease = (*keeper)(nil)

// keep starts renewing run's lease every renewEvery(ttl) until stop is
// called.
func keep(ctx context.Context, run Run, ttl time.Duration, now func() time.Time, log *slog.Logger) *keeper {
	start := now()
	k := &keeper{run: run, ttl: ttl, now: now, log: log, ok: start, tried: start, peers: 1, done: make(chan struct{})}
	k.ctx, k.stop = context.WithCancel(context.WithoutCancel(ctx))
	go k.loop(k.ctx)
	return k
}

func (k *keeper) loop(ctx context.Context) {
	defer close(k.done)
	t := time.NewTicker(renewEvery(k.ttl))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.renew(ctx)
		}
	}
}

// renew renews the lease once.
func (k *keeper) renew(ctx context.Context) {
	k.renewing.Lock()
	defer k.renewing.Unlock()
	start := k.now()
	k.mu.Lock()
	k.tried = start
	k.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, k.ttl/3)
	live, err := k.run.Renew(rctx)
	cancel()
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case errors.Is(err, ledger.ErrLeaseLost):
		if !k.lost {
			k.log.Error("delivery lease lost: another run may take over this run's recipients; stopping", "run", k.run.Info().ID)
		}
		k.lost = true
	case err != nil:
		// Try again at the next tick; Valid turns false if it keeps failing.
		k.log.Warn("renewing the delivery lease", "run", k.run.Info().ID, "err", err)
	default:
		k.ok, k.peers = start, max(live, 1)
	}
}

// Valid renews the lease first when a renewal is due, then reports whether
// the last successful renewal is recent enough that no other run can have
// taken the rows yet, with a margin of a sixth of the lease for the message
// in flight.
func (k *keeper) Valid() bool {
	k.mu.Lock()
	due := !k.lost && k.now().Sub(k.tried) >= renewEvery(k.ttl)
	k.mu.Unlock()
	if due && k.renewing.TryLock() {
		k.renewing.Unlock() // renew takes it again; a racing renewal is harmless
		k.renew(k.ctx)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.lost && k.now().Before(k.ok.Add(k.ttl-k.ttl/6))
}

// Peers is how many live runs the last renewal saw.
func (k *keeper) Peers() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.peers
}

// close stops the renewals.
func (k *keeper) close() {
	k.stop()
	<-k.done
}
