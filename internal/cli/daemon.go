package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/digest/digest/internal/config"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/metrics"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/schedule"
	"github.com/digest/digest/internal/store"
	"github.com/digest/digest/internal/web"
)

// daemonName names the daemon's lease and its schedule's state in the store.
const daemonName = "daemon"

// resumeEvery is how often an active daemon looks for an issue with
// recipients left pending (a relay that was down, a quota reached) and
// continues it, between scheduled runs.
const resumeEvery = 5 * time.Minute

// Roles of a daemon, as /healthz reports them.
const (
	roleStarting = "starting"
	roleActive   = "active"
	roleStandby  = "standby"
	roleStopping = "stopping"
)

// daemon is `digest daemon`: one active process per database runs the
// schedule; the others stand by, serve HTTP and take over when the active
// one's lease expires. Every run goes through pipeline.Deliver, the use case
// of `digest send`.
type daemon struct {
	e      *env // the streams, the store and the metrics; e.cfg is the first config
	holder store.Holder
	level  *slog.LevelVar
	log    *slog.Logger

	// deliverMu serializes this process's Deliver calls (a scheduled run,
	// a resume), so that it never competes with itself for the issue.
	deliverMu sync.Mutex

	mu      sync.Mutex
	w       *wiring        // built from the current configuration
	role    string         // roleStarting, roleActive, roleStandby or roleStopping
	other   *store.Lease   // the active daemon, while this one stands by
	loop    *schedule.Loop // the schedule, while active
	problem string         // why this daemon is not healthy; empty when it is
}

// wiring is what one configuration builds: the use case, the schedule and
// the readers' pages. A reload builds a new one; a run in progress keeps the
// one it started with.
type wiring struct {
	env   *env // a copy of the daemon's env with this configuration
	p     *pipeline.Pipeline
	sched *schedule.Schedule
	web   *web.Handler
}

func (e *env) daemon(ctx context.Context, args []string) error {
	f := newFlags(e, "daemon", false)
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	d := &daemon{e: e, role: roleStarting, level: new(slog.LevelVar)}
	d.level.Set(e.cfg.Log.SlogLevel())
	e.log = leveledLogger(e.stderr, e.cfg.Log.Format, d.level)
	d.log = e.log
	d.holder = e.store.Process()
	w, err := d.wire(ctx, e.cfg)
	if err != nil {
		return err
	}
	d.w = w
	return d.run(ctx)
}

// wire builds the use case and the schedule for cfg. Errors are those of a
// bad configuration (templates, sources, DKIM key), wrapped as such where
// the command would exit 2.
func (d *daemon) wire(ctx context.Context, cfg *config.Config) (*wiring, error) {
	ce := &env{stdout: d.e.stdout, stderr: d.e.stderr, configPath: d.e.configPath,
		cfg: cfg, log: d.log, store: d.e.store, metrics: d.e.metrics}
	sched, err := cfg.ParseSchedule()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: schedule: %w", config.ErrInvalid, cfg.Path, err)
	}
	p, err := ce.pipeline()
	if err != nil {
		return nil, err
	}
	if err := ce.wireDelivery(ctx, p); err != nil {
		return nil, err
	}
	// Logs, not a progress bar: the daemon's stderr is a log stream.
	p.Delivery.Engine.Progress = nil
	p.Delivery.Chosen = func(b *pipeline.Built, continued bool) {
		if continued {
			// However late: schedule_grace is about starting an issue; one
			// that reached some readers is finished for the others.
			d.log.Info("continuing an unfinished issue: its delivery started, so it is finished whatever the schedule's grace",
				"issue", b.Issue.ID)
		}
	}
	h, err := ce.webHandler(ctx)
	if err != nil {
		return nil, err
	}
	return &wiring{env: ce, p: p, sched: sched, web: h}, nil
}

// closeWeb stops a readers' handler's mail sender once its notices are out.
func (d *daemon) closeWeb(ctx context.Context, h *web.Handler) {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := h.Close(c); err != nil {
		d.log.Warn("stopping the readers' mail sender", "err", err)
	}
}

func (d *daemon) current() *wiring {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.w
}

// run serves HTTP and holds or waits for the lease until ctx is cancelled;
// then it stops taking work, lets the run in progress finish (at most
// shutdown_timeout), releases the lease and returns nil.
func (d *daemon) run(ctx context.Context) error {
	cfg := d.current().env.cfg
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		d.closeWeb(ctx, d.current().web)
		return fmt.Errorf("%s: server.listen: %w", cfg.Path, err)
	}
	srv := web.NewServer(d.routes())
	srv.ErrorLog = slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	purgeCtx, stopPurge := context.WithCancel(ctx)
	purged := make(chan struct{})
	go func() {
		defer close(purged)
		d.e.purgeLoop(purgeCtx)
	}()
	d.log.Info("daemon started", "listen", ln.Addr().String(), "holder", d.holder.String(),
		"schedule", cfg.Schedule, "zone", d.current().sched.Location().String())

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reloads := make(chan struct{})
	go func() {
		defer close(reloads)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				d.reload(ctx)
			}
		}
	}()

	for ctx.Err() == nil {
		ttl := d.current().env.cfg.Delivery.Lease
		a, err := d.e.store.AcquireLease(ctx, daemonName, d.holder, ttl)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			d.log.Error("cannot reach the lease in the store", "err", err)
			d.setProblem("store: " + errLine(err))
			sleepCtx(ctx, ttl/3)
		case a.Held:
			d.setProblem("")
			d.active(ctx, a)
		default:
			d.setProblem("")
			d.standby(ctx, a.Lease, ttl)
		}
	}

	d.setRole(roleStopping, nil)
	// The work has stopped (bounded by shutdown_timeout); HTTP answers
	// are quick, a couple of seconds is enough for those in progress.
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		d.log.Warn("HTTP server shutdown", "err", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		d.log.Error("HTTP server", "err", err)
	}
	stopPurge()
	<-purged
	<-reloads
	d.closeWeb(ctx, d.current().web)
	d.log.Info("daemon stopped")
	return nil
}

// standby waits a third of the lease before the next attempt, saying who is
// active when that changes.
func (d *daemon) standby(ctx context.Context, l store.Lease, ttl time.Duration) {
	d.mu.Lock()
	changed := d.other == nil || d.other.Holder.ID != l.Holder.ID || d.role != roleStandby
	d.mu.Unlock()
	if changed {
		d.log.Info("standing by: another daemon is active", "active", l.Holder.String(),
			"since", l.Since, "lease_expires", l.Expires)
	}
	d.setRole(roleStandby, &l)
	d.e.metrics.Active(false)
	d.e.metrics.NextRun(time.Time{})
	sleepCtx(ctx, livenessPoll(ttl))
}

// active runs the schedule while it holds the lease, renewing it every third
// of its length. It returns when ctx is cancelled (after the work stopped and
// the lease was released) or when the lease is lost.
func (d *daemon) active(ctx context.Context, a store.Acquisition) {
	if a.TookOver != nil {
		d.log.Warn("taking over from a daemon whose lease expired or whose process is gone", "previous", a.TookOver.Holder.String(),
			"lease_expires", a.TookOver.Expires)
	} else {
		d.log.Info("active: this daemon runs the schedule", "holder", d.holder.String())
	}
	w := d.current()
	work, stopWork := context.WithCancel(ctx)
	defer stopWork()
	loop := schedule.New(schedule.Options{
		Name: daemonName, Schedule: w.sched, Store: scheduleStore{d.e.store}, Job: d.tick,
		Grace: w.env.cfg.ScheduleGrace, Logger: d.log, Observer: d.e.metrics,
	})
	d.setRole(roleActive, nil)
	d.mu.Lock()
	d.loop = loop
	d.mu.Unlock()
	d.e.metrics.Active(true)

	// The unfinished delivery (if any) is resumed at once, beside the
	// schedule's own catch-up; deliverMu keeps them from overlapping.
	loopErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { d.resumeLoop(work) })
	wg.Go(func() { loopErr <- loop.Run(work) })
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	held := time.Now() // the last time the lease was certainly ours
	renew := time.NewTicker(w.env.cfg.Delivery.Lease / 3)
	defer renew.Stop()
	step := func(reason string) {
		stopWork()
		d.waitWork(done)
		d.mu.Lock()
		d.loop = nil
		d.mu.Unlock()
		if reason != "" {
			d.log.Error("stepping down", "reason", reason)
		}
	}
	for {
		select {
		case <-ctx.Done():
			if d.deliverMu.TryLock() {
				d.deliverMu.Unlock()
				d.log.Info("stopping: no run in progress")
			} else {
				d.log.Info("stopping: no new work; waiting for the run in progress", "shutdown_timeout", w.env.cfg.ShutdownTimeout)
			}
			step("")
			rel, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := d.e.store.ReleaseLease(rel, daemonName, d.holder); err != nil {
				d.log.Warn("releasing the lease; a standby takes over when it expires", "err", err)
			}
			cancel()
			return
		case err := <-loopErr:
			// The schedule could not start (its state is unreadable): give
			// another daemon the chance, and try again later.
			d.log.Error("the schedule cannot run", "err", err)
			d.setProblem("schedule: " + errLine(err))
			step("")
			if err := d.e.store.ReleaseLease(context.WithoutCancel(ctx), daemonName, d.holder); err != nil {
				d.log.Warn("releasing the lease", "err", err)
			}
			sleepCtx(ctx, d.current().env.cfg.Delivery.Lease)
			return
		case <-renew.C:
			ttl := d.current().env.cfg.Delivery.Lease
			_, err := d.e.store.RenewLease(ctx, daemonName, d.holder, ttl)
			switch {
			case err == nil:
				held = time.Now()
				d.setProblem("")
			case ctx.Err() != nil:
			case errors.Is(err, store.ErrLeaseTaken):
				step("the lease was taken by another daemon")
				return
			default:
				d.log.Warn("renewing the lease", "err", err)
				d.setProblem("lease: " + errLine(err))
				// Renewals come every third of the lease: the second that
				// fails in a row stops the work before the lease can have
				// expired, whoever might take it then.
				if time.Since(held) > ttl/2 {
					step("the lease could not be renewed in time")
					return
				}
			}
		}
	}
}

// waitWork waits for the active work to stop, at most shutdown_timeout.
func (d *daemon) waitWork(done <-chan struct{}) {
	limit := d.current().env.cfg.ShutdownTimeout
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		d.log.Warn("shutdown_timeout passed with messages in flight; their recipients stay pending for the next run",
			"shutdown_timeout", limit)
	}
}

// tick is one scheduled run: the same use case as `digest send`, for now.
func (d *daemon) tick(ctx context.Context, r schedule.Run) error {
	_, err := d.deliver(ctx, r.Kind.String(), r.Scheduled, pipeline.Request{Now: time.Now()})
	return err
}

// resume continues an issue whose delivery is unfinished (interrupted by a
// crash, a stop or a take-over; left pending by a relay outage or a quota),
// without building a new one. It returns when to look again: resumeEvery,
// or, when another process's run still holds the issue (the daemon this one
// took over from may have died with a live lease), right after that run's
// lease ends.
func (d *daemon) resume(ctx context.Context) time.Duration {
	busy, _ := d.deliver(ctx, "resume", time.Time{}, pipeline.Request{Now: time.Now(), Resume: true})
	if busy != nil {
		ttl := d.current().env.cfg.Delivery.Lease
		return min(max(time.Until(busy.Runs[0].Expires)+time.Second, time.Second), livenessPoll(ttl))
	}
	return resumeEvery
}

// livenessPoll is how often a standby asks for the lease, and a resume
// waiting for another process's run looks again: often enough that the
// death of the holder, which the store tells at once (see store's
// liveness), is acted on within seconds, not a lease later.
func livenessPoll(ttl time.Duration) time.Duration { return min(ttl/3, 2*time.Second) }

// resumeLoop resumes an unfinished delivery at once and then whenever
// resume says, until ctx ends.
func (d *daemon) resumeLoop(ctx context.Context) {
	for {
		wait := d.resume(ctx)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// deliver calls the use case once and logs one line about it. The error is
// set when the run failed, another process was delivering (busy tells who),
// or recipients are left pending, so that the schedule records the run as
// failed.
func (d *daemon) deliver(ctx context.Context, kind string, scheduled time.Time, req pipeline.Request) (*ledger.BusyError, error) {
	d.deliverMu.Lock()
	defer d.deliverMu.Unlock()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	w := d.current()
	start := time.Now()
	res, err := w.p.Deliver(ctx, req)
	if req.Resume && res.Built == nil && res.Busy == nil && err == nil {
		return nil, nil // nothing to resume
	}
	if req.Resume && res.Busy != nil && err == nil {
		// A live run elsewhere delivers: not a failure, look again when
		// its lease ends (or at once, once its process is seen gone).
		r := res.Busy.Runs[0]
		d.log.Info("an unfinished issue is being delivered by another process; waiting for it",
			"issue", r.IssueID, "delivering", fmt.Sprintf("%s pid %d", r.Host, r.PID), "lease_expires", r.Expires)
		return res.Busy, nil
	}
	attrs := []any{"kind", kind}
	if !scheduled.IsZero() {
		attrs = append(attrs, "scheduled", scheduled)
	}
	b := res.Built
	if b != nil {
		w.env.observe(b)
		attrs = append(attrs, "issue", b.Issue.ID, "articles", b.Issue.Count(), "built", !b.Loaded && !b.Empty())
		for _, s := range b.Sources {
			if s.Err != nil {
				attrs = append(attrs, "source_failed", s.Name)
			}
		}
	}
	c, s := res.Counts, res.Summary
	outcome := "delivered"
	switch {
	case res.Busy != nil:
		outcome = "busy"
		r := res.Busy.Runs[0]
		attrs = append(attrs, "issue", r.IssueID, "delivering", fmt.Sprintf("%s pid %d", r.Host, r.PID))
		err = errors.Join(err, fmt.Errorf("issue %s is being delivered by %s pid %d", r.IssueID, r.Host, r.PID))
	case b == nil:
		outcome = "error"
	case b.Empty():
		outcome = "nothing new"
		if allFailed(b) {
			err = errors.Join(err, errors.New("every source failed"))
		}
	case res.Already:
		outcome = "already delivered"
	case res.Run.ID != "":
		d.e.metrics.Delivered(s.Sent, s.Failed, c.Unfinished())
		d.e.metrics.DeliveryRun(res.Took)
		attrs = append(attrs, "sent", s.Sent, "failed", s.Failed, "total_sent", c.Sent, "total_failed", c.Failed,
			"skipped", c.Skipped, "pending", c.Unfinished())
		if !c.Done() {
			outcome = "pending left"
			err = errors.Join(err, fmt.Errorf("%s still pending", plural(c.Unfinished(), "recipient is", "recipients are")))
		}
	}
	if err != nil && ctx.Err() != nil {
		outcome = "interrupted"
	} else if err != nil && outcome == "delivered" {
		outcome = "error"
	}
	attrs = append(attrs, "outcome", outcome, "duration", time.Since(start).Round(time.Millisecond))
	if err != nil {
		d.log.Warn("run finished", append(attrs, "err", errLine(err))...)
		return res.Busy, err
	}
	d.log.Info("run finished", attrs...)
	if kind != "resume" {
		d.e.metrics.ScheduledRunSucceeded(time.Now())
	}
	return nil, nil
}

// allFailed reports whether every source of a build failed.
func allFailed(b *pipeline.Built) bool {
	if len(b.Sources) == 0 {
		return false
	}
	for _, s := range b.Sources {
		if s.Err == nil {
			return false
		}
	}
	return true
}

// reload reads the configuration again and, when it is valid and its
// templates and sources build, makes it the current one; otherwise it logs
// why and keeps the old one. The database and server.listen stay as they
// were until a restart.
func (d *daemon) reload(ctx context.Context) {
	old := d.current()
	cfg, err := config.Load(d.e.configPath, os.Getenv)
	if err == nil {
		if cfg.Database != old.env.cfg.Database {
			d.log.Warn("reload: a new database takes a restart; keeping the old one", "database", old.env.cfg.Database)
			cfg.Database = old.env.cfg.Database
		}
		if cfg.Server.Listen != old.env.cfg.Server.Listen {
			d.log.Warn("reload: a new server.listen takes a restart; keeping the old one", "listen", old.env.cfg.Server.Listen)
			cfg.Server.Listen = old.env.cfg.Server.Listen
		}
		if cfg.Log.Format != old.env.cfg.Log.Format {
			d.log.Warn("reload: a new log.format takes a restart")
		}
	}
	var w *wiring
	if err == nil {
		w, err = d.wire(ctx, cfg)
	}
	if err != nil {
		d.log.Error("reload failed: keeping the configuration in use", "config", d.e.configPath, "err", errLine(err))
		return
	}
	d.level.Set(cfg.Log.SlogLevel())
	d.mu.Lock()
	d.w = w
	loop := d.loop
	d.mu.Unlock()
	// Requests already routed to the old pages finish there; its queued
	// notices still go out.
	go d.closeWeb(ctx, old.web)
	if loop != nil && (w.sched.String() != old.sched.String() || w.sched.Location().String() != old.sched.Location().String()) {
		loop.Reschedule(w.sched)
	}
	d.log.Info("configuration reloaded", "config", d.e.configPath, "schedule", cfg.Schedule)
}

func (d *daemon) setRole(role string, other *store.Lease) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.role, d.other = role, other
}

func (d *daemon) setProblem(p string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.problem = p
}

// routes is the daemon's HTTP: health, metrics, and the readers' pages of
// the current configuration (the same handlers as `digest serve`).
func (d *daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", d.health)
	mux.Handle("GET /metrics", d.e.metrics.Handler())
	mux.Handle("/", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		d.current().web.ServeHTTP(rw, r)
	}))
	return mux
}

// health is the body of /healthz.
type health struct {
	Status   string     `json:"status"` // starting, active, standby or stopping
	Reason   string     `json:"reason,omitempty"`
	Store    string     `json:"store"` // "ok", or why the store cannot be reached
	Holder   string     `json:"holder"`
	Active   *leaseInfo `json:"active,omitempty"` // who is active, when standing by
	Schedule string     `json:"schedule"`
	Running  bool       `json:"running"`
	Current  *time.Time `json:"running_for,omitempty"` // the scheduled time of the run in progress
	LastRun  *lastRun   `json:"last_run,omitempty"`
	NextRun  *time.Time `json:"next_run,omitempty"`
}

type leaseInfo struct {
	Holder  string    `json:"holder"`
	Since   time.Time `json:"since"`
	Expires time.Time `json:"expires"`
}

type lastRun struct {
	Scheduled time.Time `json:"scheduled"`
	Outcome   string    `json:"outcome"`
	At        time.Time `json:"at"`
	Detail    string    `json:"detail,omitempty"`
}

// health answers 200 with what the daemon does when it is active or
// standing by with a reachable store, 503 with a reason otherwise.
func (d *daemon) health(rw http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	h := health{Status: d.role, Reason: d.problem, Holder: d.holder.String(), Schedule: d.w.sched.String()}
	if d.other != nil {
		h.Active = &leaseInfo{Holder: d.other.Holder.String(), Since: d.other.Since, Expires: d.other.Expires}
	}
	loop, sched := d.loop, d.w.sched
	d.mu.Unlock()

	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	st, err := d.e.store.ScheduleState(ctx, daemonName)
	switch {
	case err == nil || errors.Is(err, store.ErrNotFound):
		h.Store = "ok"
	default:
		h.Store = errLine(err)
		if h.Reason == "" {
			h.Reason = "the store cannot be reached"
		}
	}
	var next time.Time
	if loop != nil {
		ls := loop.Status()
		h.Running, next = ls.Running, ls.Next
		if ls.Running {
			h.Current = &ls.Current.Scheduled
		}
		if !ls.Last.Scheduled.IsZero() {
			h.LastRun = &lastRun{Scheduled: ls.Last.Scheduled, Outcome: string(ls.Last.Outcome), At: ls.Last.At, Detail: ls.Last.Detail}
		}
	} else if err == nil {
		// Standing by: what the active daemon recorded, and its next time.
		h.LastRun = &lastRun{Scheduled: st.Scheduled, Outcome: st.Outcome, At: st.At, Detail: st.Detail}
		next = sched.Next(st.Scheduled)
	}
	if !next.IsZero() {
		h.NextRun = &next
	}
	code := http.StatusOK
	if h.Status != roleActive && h.Status != roleStandby {
		code = http.StatusServiceUnavailable
		if h.Reason == "" {
			h.Reason = "the daemon is " + h.Status
		}
	} else if h.Reason != "" {
		code = http.StatusServiceUnavailable
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(code)
	enc := json.NewEncoder(rw)
	enc.SetIndent("", "  ")
	_ = enc.Encode(h)
}

// healthcheck asks a running daemon's /healthz and exits 0 when it answers
// 200 (active or standing by), 1 otherwise: the container's HEALTHCHECK,
// which has no curl or wget in an empty image.
func (e *env) healthcheck(ctx context.Context, args []string) error {
	f := newFlags(e, "healthcheck", false)
	target := f.String("url", "", "health URL to ask (default: /healthz on server.listen)")
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	if *target == "" {
		cfg, err := config.Load(e.configPath, nil)
		if err != nil {
			return err
		}
		*target = healthURL(cfg.Server.Listen)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return usagef("healthcheck --url: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &exitError{code: ExitFailed, err: fmt.Errorf("healthcheck: %w", err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprint(e.stdout, string(body))
	if resp.StatusCode != http.StatusOK {
		return &exitError{code: ExitFailed, err: fmt.Errorf("healthcheck %s: %s", *target, resp.Status)}
	}
	return nil
}

// healthURL is /healthz on the address the daemon listens on, reached over
// loopback when it listens on every interface.
func healthURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen + "/healthz"
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz"
}

// scheduleStore keeps the schedule's state in the store.
type scheduleStore struct{ st *store.Store }

var _ schedule.StateStore = scheduleStore{}

func (s scheduleStore) LoadState(ctx context.Context, name string) (schedule.State, bool, error) {
	st, err := s.st.ScheduleState(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return schedule.State{}, false, nil
	}
	if err != nil {
		return schedule.State{}, false, err
	}
	return schedule.State{Scheduled: st.Scheduled, Outcome: schedule.Outcome(st.Outcome), At: st.At, Detail: st.Detail}, true, nil
}

func (s scheduleStore) SaveState(ctx context.Context, name string, st schedule.State) error {
	return s.st.SaveScheduleState(ctx, name, store.ScheduleState{
		Scheduled: st.Scheduled, Outcome: string(st.Outcome), At: st.At, Detail: st.Detail})
}

// observedRuns counts every outcome a delivery run records, for the
// metrics; everything else passes through.
type observedRuns struct {
	pipeline.Runs
	m *metrics.Metrics
}

func (o observedRuns) BeginRun(ctx context.Context, info ledger.Run, ttl time.Duration) (pipeline.Run, error) {
	r, err := o.Runs.BeginRun(ctx, info, ttl)
	if err != nil {
		return nil, err
	}
	return observedRun{Run: r, m: o.m}, nil
}

type observedRun struct {
	pipeline.Run
	m *metrics.Metrics
}

func (r observedRun) Record(ctx context.Context, issueID string, outs []ledger.Outcome) error {
	if err := r.Run.Record(ctx, issueID, outs); err != nil {
		return err
	}
	for _, o := range outs {
		r.m.Message(o.Status, o.Code, o.Enhanced)
	}
	return nil
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// errLine is an error on one line, for a log attribute or a health answer.
func errLine(err error) string {
	var parts []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			parts = append(parts, line)
		}
	}
	s := strings.Join(parts, "; ")
	// A stop is not a failure of the run: say it in the user's words.
	return strings.ReplaceAll(s, context.Canceled.Error(), "interrupted")
}
