package daemon_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/clocktest"
	"github.com/digest/digest/internal/daemon"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/schedule"
	"github.com/digest/digest/internal/store"
)

var t0 = time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)

const lease = 30 * time.Second

// newClock is a fake clock at t0.
func newClock() *clocktest.Clock { return clocktest.New(t0) }

// step is how far the tests' Until moves the clock at a time, letting the
// daemon's goroutines run between steps.
const step = 100 * time.Millisecond

// flaky is the real store, whose lease renewals can be made to fail.
type flaky struct {
	*store.Store
	fail atomic.Bool
}

func (f *flaky) RenewLease(ctx context.Context, name string, h ledger.Process, ttl time.Duration) (store.Lease, error) {
	if f.fail.Load() {
		return store.Lease{}, errors.New("connection refused")
	}
	return f.Store.RenewLease(ctx, name, h, ttl)
}

func (f *flaky) AcquireLease(ctx context.Context, name string, h ledger.Process, ttl time.Duration) (store.Acquisition, error) {
	if f.fail.Load() {
		return store.Acquisition{}, errors.New("connection refused")
	}
	return f.Store.AcquireLease(ctx, name, h, ttl)
}

func openStore(t *testing.T, c *clocktest.Clock) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "digest.db"),
		store.WithClock(c.Now), store.WithLeaseClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// deliverer is a fake use case: it counts calls, notes overlaps and
// answers with what answer returns.
type deliverer struct {
	mu       sync.Mutex
	calls    []pipeline.Request
	inside   atomic.Int32
	overlaps atomic.Int32
	answer   func(ctx context.Context, req pipeline.Request, n int) (pipeline.Result, error)
}

func (f *deliverer) Deliver(ctx context.Context, req pipeline.Request) (pipeline.Result, error) {
	if f.inside.Add(1) > 1 {
		f.overlaps.Add(1)
	}
	defer f.inside.Add(-1)
	f.mu.Lock()
	f.calls = append(f.calls, req)
	n := len(f.calls)
	f.mu.Unlock()
	if f.answer == nil {
		return pipeline.Result{}, nil
	}
	return f.answer(ctx, req, n)
}

func (f *deliverer) count(resume bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.calls {
		if r.Resume == resume {
			n++
		}
	}
	return n
}

func config(t *testing.T, spec string, f *deliverer) *daemon.Config {
	t.Helper()
	s, err := schedule.Parse(spec, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	return &daemon.Config{Schedule: s, Grace: time.Hour, Lease: lease, ShutdownTimeout: 10 * time.Second,
		Deliver: f.Deliver, Web: http.NotFoundHandler()}
}

// start runs a daemon until the test ends.
func start(t *testing.T, st daemon.Store, holder ledger.Process, c *clocktest.Clock, cfg *daemon.Config, load func(context.Context) (*daemon.Config, error)) *daemon.Daemon {
	t.Helper()
	d := daemon.New(daemon.Options{Store: st, Holder: holder, Clock: c, Load: load}, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

func status(d *daemon.Daemon) string {
	h, _ := d.Health(context.Background())
	return h.Status
}

func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// A standby takes over when the active daemon's lease expires, and at once
// when that daemon is provably gone (same host, its pid dead); then it
// resumes the unfinished issue.
func TestTakeover(t *testing.T) {
	host, _ := os.Hostname()
	tests := []struct {
		name   string
		other  ledger.Process
		within time.Duration // fake time from the start to active
		after  time.Duration // and not before
	}{
		{"lease expires", ledger.Process{ID: "other", Host: "elsewhere", PID: 7}, lease + 3*time.Second, lease - time.Second},
		{"holder's pid is gone", ledger.Process{ID: "dead", Host: host, PID: deadPID(t)}, 3 * time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClock()
			st := openStore(t, c)
			if a, err := st.AcquireLease(context.Background(), daemon.Name, tt.other, lease); err != nil || !a.Held {
				t.Fatalf("the other daemon's lease: %+v, %v", a, err)
			}
			f := &deliverer{}
			d := start(t, st, st.Process(), c, config(t, "@every 1h", f), nil)
			c.Until(t, "standing by", step, time.Second, func() bool { return status(d) == daemon.RoleStandby || status(d) == daemon.RoleActive })
			took := c.Until(t, "active", step, tt.within, func() bool { return status(d) == daemon.RoleActive })
			if took < tt.after {
				t.Errorf("active after %s of fake time, before the lease could expire", took)
			}
			c.Until(t, "resumed", step, time.Second, func() bool { return f.count(true) >= 1 })
		})
	}
}

// An active daemon whose renewals fail steps down before its lease can
// expire: its work stops, and health says it is not active (503).
func TestStepDownOnLostRenewals(t *testing.T) {
	t.Parallel()
	c := newClock()
	st := &flaky{Store: openStore(t, c)}
	stopped := make(chan struct{})
	f := &deliverer{answer: func(ctx context.Context, req pipeline.Request, n int) (pipeline.Result, error) {
		if n == 1 {
			<-ctx.Done() // a long delivery, until the work stops
			close(stopped)
			return pipeline.Result{}, ctx.Err()
		}
		return pipeline.Result{}, nil
	}}
	d := start(t, st, st.Process(), c, config(t, "@every 1h", f), nil)
	c.Until(t, "active", step, time.Second, func() bool { return status(d) == daemon.RoleActive })
	st.fail.Store(true)
	took := c.Until(t, "stepped down", step, lease, func() bool {
		select {
		case <-stopped:
			return true
		default:
			return false
		}
	})
	if took >= lease {
		t.Errorf("work stopped %s after the renewals began to fail, not before the lease (%s)", took, lease)
	}
	c.Until(t, "health says so", step, time.Second, func() bool { return status(d) != daemon.RoleActive })
	h, code := d.Health(context.Background())
	if h.Status != daemon.RoleUnavailable || code != http.StatusServiceUnavailable || h.Reason == "" {
		t.Errorf("health after stepping down: %d %+v", code, h)
	}
}

// A resume that finds another process delivering looks again within
// seconds (not ResumeEvery), and does not record a failure.
func TestResumeAfterBusy(t *testing.T) {
	t.Parallel()
	c := newClock()
	st := openStore(t, c)
	busy := &ledger.BusyError{Runs: []ledger.RunInfo{{ID: "r", IssueID: "2026-12-07", Host: "elsewhere", PID: 9, Expires: t0.Add(lease)}}}
	f := &deliverer{answer: func(_ context.Context, req pipeline.Request, n int) (pipeline.Result, error) {
		if req.Resume && n == 1 {
			return pipeline.Result{Busy: busy}, nil
		}
		return pipeline.Result{}, nil
	}}
	d := start(t, st, st.Process(), c, config(t, "@every 1h", f), nil)
	c.Until(t, "first resume", step, time.Second, func() bool { return f.count(true) >= 1 })
	took := c.Until(t, "second resume", step, daemon.ResumeEvery, func() bool { return f.count(true) >= 2 })
	if took > 3*time.Second {
		t.Errorf("looked again %s after a busy answer", took)
	}
	if h, _ := d.Health(context.Background()); h.LastRun != nil && h.LastRun.Outcome == "failed" {
		t.Errorf("a busy resume is recorded as failed: %+v", h.LastRun)
	}
}

// Scheduled runs and resumes of one daemon never overlap.
func TestNoOverlap(t *testing.T) {
	t.Parallel()
	c := newClock()
	st := openStore(t, c)
	f := &deliverer{answer: func(_ context.Context, req pipeline.Request, _ int) (pipeline.Result, error) {
		time.Sleep(2 * time.Millisecond) // long enough for the other to try
		return pipeline.Result{}, nil
	}}
	start(t, st, st.Process(), c, config(t, "@every 1s", f), nil)
	c.Until(t, "runs and resumes", step, time.Minute, func() bool { return f.count(false) >= 5 && f.count(true) >= 1 })
	if n := f.overlaps.Load(); n > 0 {
		t.Errorf("%d overlapping Deliver calls", n)
	}
}

// A reload that fails keeps the configuration in use and shows in health;
// one that works takes effect.
func TestReload(t *testing.T) {
	t.Parallel()
	c := newClock()
	st := openStore(t, c)
	f := &deliverer{}
	next := config(t, "@every 30m", f)
	fail := true
	load := func(context.Context) (*daemon.Config, error) {
		if fail {
			return nil, errors.New("config.yaml:3: schedule: bad spec")
		}
		return next, nil
	}
	d := start(t, st, st.Process(), c, config(t, "@every 1h", f), load)
	c.Until(t, "active", step, time.Second, func() bool { return status(d) == daemon.RoleActive })
	if d.Reload(context.Background()) {
		t.Fatal("a failed reload reported success")
	}
	h, code := d.Health(context.Background())
	if h.Schedule != "@every 1h" || code != http.StatusOK || h.LastReload == nil || h.LastReload.OK || h.LastReload.Error == "" {
		t.Errorf("after a failed reload: %d %+v, reload %+v", code, h, h.LastReload)
	}
	fail = false
	if !d.Reload(context.Background()) {
		t.Fatal("reload failed")
	}
	if h, _ := d.Health(context.Background()); h.Schedule != "@every 30m" || !h.LastReload.OK {
		t.Errorf("after a reload: %+v", h)
	}
}

// Health: a fresh daemon has no last run (not "started"); times are RFC
// 3339 in UTC; after a run that finished fine, last_run says so, even if
// the schedule skipped a time meanwhile; a standby names the active one.
func TestHealthFields(t *testing.T) {
	t.Parallel()
	c := newClock()
	st := openStore(t, c)
	release := make(chan struct{})
	f := &deliverer{answer: func(_ context.Context, req pipeline.Request, n int) (pipeline.Result, error) {
		if !req.Resume {
			<-release // a scheduled run longer than the next tick
		}
		return pipeline.Result{}, nil
	}}
	d := start(t, st, st.Process(), c, config(t, "@every 10s", f), nil)
	c.Until(t, "active", step, time.Second, func() bool {
		h, _ := d.Health(context.Background())
		return h.Status == daemon.RoleActive && h.NextRun != ""
	})
	h, code := d.Health(context.Background())
	if code != http.StatusOK || h.LastRun != nil {
		t.Errorf("fresh daemon: %d, last run %+v", code, h.LastRun)
	}
	if _, err := time.Parse(time.RFC3339, h.NextRun); err != nil || h.NextRun[len(h.NextRun)-1] != 'Z' {
		t.Errorf("next_run %q: want RFC 3339 in UTC", h.NextRun)
	}
	c.Until(t, "a run going", step, 15*time.Second, func() bool { return f.count(false) == 1 })
	c.Advance(10 * time.Second) // the next tick finds the run going: skipped
	c.Until(t, "the overlap recorded", step, 2*time.Second, func() bool {
		h, _ := d.Health(context.Background())
		return h.LastRun != nil && h.LastRun.Outcome == "skipped"
	})
	close(release)
	c.Until(t, "the long run recorded", step, 2*time.Second, func() bool {
		h, _ := d.Health(context.Background())
		return h.LastRun != nil && h.LastRun.Outcome == "ok"
	})
	h, _ = d.Health(context.Background())
	if _, err := time.Parse(time.RFC3339, h.LastRun.At); err != nil || h.LastRun.At[len(h.LastRun.At)-1] != 'Z' {
		t.Errorf("last_run.at %q: want RFC 3339 in UTC", h.LastRun.At)
	}

	// A second daemon on the database stands by and names the active one.
	b := start(t, st, ledger.Process{ID: "b", Host: "elsewhere", PID: 2}, c, config(t, "@every 10s", &deliverer{}), nil)
	c.Until(t, "standing by", step, time.Second, func() bool { return status(b) == daemon.RoleStandby })
	hb, code := b.Health(context.Background())
	if code != http.StatusOK || hb.Active == nil || hb.Active.Holder != st.Process().String() || hb.LastRun == nil {
		t.Errorf("standby health: %d %+v", code, hb)
	}
}

// An interrupted run found more than schedule_grace late is skipped (no new
// issue is built for it), and the issue whose delivery it started is still
// finished by the resume: it already reached some readers. The record says
// both.
func TestInterruptedPastGraceIsFinished(t *testing.T) {
	t.Parallel()
	c := newClock()
	st := openStore(t, c)
	if err := st.SaveState(context.Background(), daemon.Name, schedule.State{
		Scheduled: t0.Add(-2 * time.Hour), Outcome: schedule.OutcomeInterrupted, At: t0.Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f := &deliverer{}
	d := start(t, st, st.Process(), c, config(t, "@every 24h", f), nil) // grace 1h
	c.Until(t, "resumed", step, time.Second, func() bool { return f.count(true) >= 1 })
	if n := f.count(false); n != 0 {
		t.Errorf("%d scheduled runs for a time past the grace", n)
	}
	c.Until(t, "the skip recorded", step, time.Second, func() bool {
		h, _ := d.Health(context.Background())
		return h.LastRun != nil && h.LastRun.Outcome == "skipped"
	})
	h, _ := d.Health(context.Background())
	if !strings.Contains(h.LastRun.Detail, "still finished") {
		t.Errorf("the skip's detail does not say the started issue is finished: %q", h.LastRun.Detail)
	}
}
