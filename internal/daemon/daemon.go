// Package daemon is the operator's long-running process: of the daemons
// that share a database one is active and runs the schedule, the others
// stand by and take over when it is gone. Every run, scheduled or a resume
// of an unfinished issue, goes through the delivery use case
// (pipeline.Pipeline.Deliver), the same as `digest send`.
//
// The election is a lease in the store (Leases): the active daemon renews
// it every third of its length and steps down, stopping its work, when it
// could not renew it for half of it, so that it never works past its lease
// (self-fencing); a standby asks for it every livenessPoll and gets it when
// it expired or its holder is provably gone (the store tells: see its
// liveness rules). Time comes from an injected clock, so that all of this
// is tested without waiting.
package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/digest/digest/internal/lease"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/schedule"
	"github.com/digest/digest/internal/store"
)

// Name names the daemon's lease and its schedule's state in the store.
const Name = "daemon"

// ResumeEvery is how often an active daemon looks for an issue with
// recipients left pending (a relay that was down, a quota reached) and
// continues it, between scheduled runs.
const ResumeEvery = 5 * time.Minute

// Roles of a daemon, as /healthz reports them.
const (
	RoleStarting    = "starting"
	RoleActive      = "active"
	RoleStandby     = "standby"
	RoleUnavailable = "unavailable" // the store cannot be reached: it runs nothing
	RoleStopping    = "stopping"
)

// Leases keeps the daemon's lease (package store implements it). Acquire
// takes a free, expired or orphaned lease; Renew fails with an error
// wrapping ledger.ErrLeaseLost when the lease is no longer the holder's.
type Leases interface {
	AcquireLease(ctx context.Context, name string, h ledger.Process, ttl time.Duration) (store.Acquisition, error)
	RenewLease(ctx context.Context, name string, h ledger.Process, ttl time.Duration) (store.Lease, error)
	ReleaseLease(ctx context.Context, name string, h ledger.Process) error
}

// Store is what the daemon keeps in the database: its lease and its
// schedule's state.
type Store interface {
	Leases
	schedule.StateStore
}

// Config is what one configuration gives the daemon; cli builds it from
// the YAML, and again at each reload.
type Config struct {
	Schedule        *schedule.Schedule
	Grace           time.Duration // schedule_grace
	Lease           time.Duration // delivery.lease
	ShutdownTimeout time.Duration
	// Deliver is the delivery use case with this configuration.
	Deliver func(ctx context.Context, req pipeline.Request) (pipeline.Result, error)
	// Web serves the readers' pages of this configuration; Close, when
	// set, stops it once its queued work is done.
	Web   http.Handler
	Close func(ctx context.Context) error
}

// Metrics is told what the daemon does (package metrics implements it).
type Metrics interface {
	schedule.Observer
	Active(active bool)
	ScheduledRunSucceeded(at time.Time)
}

// Options configure a Daemon. Store, Holder and Load are required.
type Options struct {
	Store  Store
	Holder ledger.Process // this process (store.Process)
	Clock  schedule.Clock // nil: the real clock
	Logger *slog.Logger   // nil: discard
	// Metrics, when set, is told of the role and the schedule.
	Metrics Metrics
	// Load reads and wires the configuration again, for Reload. On an
	// error the daemon keeps the configuration it has.
	Load func(ctx context.Context) (*Config, error)
	// Observe, when set, is told of every Deliver result (for the
	// metrics of the build and of the run).
	Observe func(pipeline.Result)
	// Relay, when set, says what delivery knows of an SMTP relay it waits
	// for (nil while the relay answers): /healthz shows it under "relay",
	// and an active daemon's status is then "degraded".
	Relay func() any
}

// Daemon is one daemon process's election, schedule, resumes, reloads and
// health.
type Daemon struct {
	o     Options
	clock schedule.Clock
	log   *slog.Logger

	// deliverMu serializes this process's Deliver calls (a scheduled run,
	// a resume), so that it never competes with itself for the issue.
	deliverMu sync.Mutex

	mu      sync.Mutex
	cfg     *Config        // the current configuration
	role    string         // one of the Role constants
	other   *store.Lease   // the active daemon, while this one stands by
	loop    *schedule.Loop // the schedule, while active
	problem string         // why this daemon is not healthy; empty when it is
	last    *runRecord     // the last run this daemon finished
	reload  *reloadRecord  // the last reload
}

// New makes a daemon with its first configuration.
func New(o Options, cfg *Config) *Daemon {
	d := &Daemon{o: o, clock: o.Clock, log: o.Logger, cfg: cfg, role: RoleStarting}
	if d.clock == nil {
		d.clock = schedule.SystemClock()
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return d
}

func (d *Daemon) current() *Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Run holds or waits for the lease until ctx is cancelled; then it stops
// taking work, lets the run in progress finish (at most shutdown_timeout),
// releases the lease and returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		ttl := d.current().Lease
		a, err := d.o.Store.AcquireLease(ctx, Name, d.o.Holder, ttl)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			d.log.Error("cannot reach the lease in the store", "err", errLine(err))
			d.setRole(RoleUnavailable, nil, "store: "+errLine(err))
			d.sleep(ctx, livenessPoll(ttl))
		case a.Held:
			d.active(ctx, a)
		default:
			d.standby(ctx, a.Lease, ttl)
		}
	}
	d.setRole(RoleStopping, nil, "")
	return nil
}

// livenessPoll is how often a standby asks for the lease, and a resume
// waiting for another process's run looks again: often enough that the
// death of the holder, which the store tells at once, is acted on within
// seconds, not a lease later.
func livenessPoll(ttl time.Duration) time.Duration { return min(ttl/3, 2*time.Second) }

// standby waits livenessPoll before the next attempt, saying who is active
// when that changes.
func (d *Daemon) standby(ctx context.Context, l store.Lease, ttl time.Duration) {
	d.mu.Lock()
	changed := d.other == nil || d.other.Holder.ID != l.Holder.ID || d.role != RoleStandby
	d.mu.Unlock()
	if changed {
		d.log.Info("standing by: another daemon is active", "active", l.Holder.String(),
			"since", l.Since, "lease_expires", l.Expires)
	}
	d.setRole(RoleStandby, &l, "")
	if m := d.o.Metrics; m != nil {
		m.Active(false)
		m.NextRun(time.Time{})
	}
	d.sleep(ctx, livenessPoll(ttl))
}

// active runs the schedule while it holds the lease, renewing it every
// third of its length. It returns when ctx is cancelled (after the work
// stopped and the lease was released) or when the lease is lost.
func (d *Daemon) active(ctx context.Context, a store.Acquisition) {
	if a.TookOver != nil {
		d.log.Warn("taking over from a daemon whose lease expired or whose process is gone", "previous", a.TookOver.Holder.String(),
			"lease_expires", a.TookOver.Expires)
	} else {
		d.log.Info("active: this daemon runs the schedule", "holder", d.o.Holder.String())
	}
	cfg := d.current()
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	var obs schedule.Observer
	if d.o.Metrics != nil {
		obs = d.o.Metrics
	}
	loop := schedule.New(schedule.Options{
		Name: Name, Schedule: cfg.Schedule, Store: d.o.Store, Job: d.tick,
		Grace: cfg.Grace, Logger: d.log, Observer: obs, Clock: d.clock,
	})
	d.mu.Lock()
	d.loop = loop
	d.mu.Unlock()
	d.setRole(RoleActive, nil, "")
	if d.o.Metrics != nil {
		d.o.Metrics.Active(true)
	}

	// The unfinished delivery (if any) is resumed at once, beside the
	// schedule's own catch-up; deliverMu keeps them from overlapping.
	loopErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { d.resumeLoop(workCtx) })
	wg.Go(func() { loopErr <- loop.Run(workCtx) })
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	w := &work{d: d, stop: stopWork, done: done}

	switch reason := d.keep(ctx, loopErr); reason {
	case stopped:
		w.end("")
		d.release(ctx)
	case scheduleFailed:
		w.end(string(reason))
		d.release(ctx)
		d.sleep(ctx, d.current().Lease)
	default:
		w.end(string(reason))
	}
}

// why keep returned.
type why string

const (
	stopped        why = ""
	scheduleFailed why = "the schedule cannot run"
	leaseTaken     why = "the lease was taken by another daemon"
	leaseLapsing   why = "the lease could not be renewed in time"
)

// keep renews the lease every third of its length (lease.Keeper) until
// ctx ends, the schedule fails to start, or the lease is lost or about to
// lapse: a renewal that fails leaves the lease valid for at most half of
// it, so that the work stops before the lease can have expired, whoever
// might take it then.
func (d *Daemon) keep(ctx context.Context, loopErr <-chan error) why {
	ttl := d.current().Lease
	k := lease.Keep(ctx, lease.Options{
		Name: Name, TTL: ttl, Every: ttl / 3, Margin: ttl / 2, Now: d.clock.Now, Logger: d.log,
		NewTimer: func(dur time.Duration) lease.Timer { return d.clock.NewTimer(dur) },
		Renew: func(ctx context.Context) error {
			// The length this keeper renews at: a reload's new lease
			// applies from the next time this daemon becomes active
			// (renewing a shorter one at this keeper's interval would let
			// it lapse between renewals).
			_, err := d.o.Store.RenewLease(ctx, Name, d.o.Holder, ttl)
			if errors.Is(err, ledger.ErrLeaseLost) {
				return err
			}
			if err != nil {
				d.setProblem("lease: " + errLine(err))
			} else {
				d.setProblem("")
			}
			return err
		},
	})
	defer k.Close()
	select {
	case <-ctx.Done():
		return stopped
	case err := <-loopErr:
		// The schedule could not start (its state is unreadable): give
		// another daemon the chance, and try again later.
		d.log.Error("the schedule cannot run", "err", errLine(err))
		d.setProblem("schedule: " + errLine(err))
		return scheduleFailed
	case <-k.LostC():
		if errors.Is(k.Lost(), ledger.ErrLeaseLost) {
			return leaseTaken
		}
		return leaseLapsing
	}
}

// work is the active daemon's schedule and resumes.
type work struct {
	d    *Daemon
	stop context.CancelFunc
	done <-chan struct{}
}

// end stops the work and waits for it (at most shutdown_timeout); reason,
// when set, is why the daemon steps down.
func (w *work) end(reason string) {
	d := w.d
	if reason == "" && d.busy() {
		d.log.Info("stopping: no new work; waiting for the run in progress", "shutdown_timeout", d.current().ShutdownTimeout)
	} else if reason == "" {
		d.log.Info("stopping: no run in progress")
	}
	w.stop()
	limit := d.current().ShutdownTimeout
	t := d.clock.NewTimer(limit)
	select {
	case <-w.done:
		t.Stop()
	case <-t.C():
		d.log.Warn("shutdown_timeout passed with messages in flight; their recipients stay pending for the next run",
			"shutdown_timeout", limit)
	}
	d.mu.Lock()
	d.loop = nil
	d.mu.Unlock()
	if reason != "" {
		d.log.Error("stepping down", "reason", reason)
		// Not active any more, and not standing by until the store says
		// who is: the next attempt at the lease tells.
		d.mu.Lock()
		if d.problem != "" {
			reason += ": " + d.problem
		}
		d.mu.Unlock()
		d.setRole(RoleUnavailable, nil, reason)
		if d.o.Metrics != nil {
			d.o.Metrics.Active(false)
		}
	}
}

// busy reports whether a Deliver call is in progress.
func (d *Daemon) busy() bool {
	if d.deliverMu.TryLock() {
		d.deliverMu.Unlock()
		return false
	}
	return true
}

// release gives the lease up, so that a standby takes over at once.
func (d *Daemon) release(ctx context.Context) {
	rel, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := d.o.Store.ReleaseLease(rel, Name, d.o.Holder); err != nil {
		d.log.Warn("releasing the lease; a standby takes over when it expires", "err", errLine(err))
	}
}

func (d *Daemon) setRole(role string, other *store.Lease, problem string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.role, d.other, d.problem = role, other, problem
}

func (d *Daemon) setProblem(p string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.problem = p
}

// sleep waits for dur on the daemon's clock, or until ctx ends.
func (d *Daemon) sleep(ctx context.Context, dur time.Duration) {
	t := d.clock.NewTimer(dur)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	}
}
