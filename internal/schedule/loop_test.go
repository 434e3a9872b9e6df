package schedule_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/digest/digest/internal/clocktest"
	"github.com/digest/digest/internal/schedule"
)

const name = "digest"

// harness runs one loop over a fake clock and an in-memory state.
type harness struct {
	t      *testing.T
	clock  *clocktest.Clock
	state  *memState
	obs    *counts
	runs   chan schedule.Tick
	hold   chan error // when set, each run waits for its result here
	loop   *schedule.Loop
	cancel context.CancelFunc
	errc   chan error
}

type setup struct {
	spec  string
	loc   *time.Location
	now   time.Time
	grace time.Duration   // default 12h
	state *schedule.State // saved before the loop starts
	hold  bool            // runs wait for h.hold
	// reuse continues with the clock and state of an earlier harness (a
	// restart of the daemon).
	reuse *harness
}

func start(t *testing.T, s setup) *harness {
	t.Helper()
	h := &harness{t: t, obs: &counts{}, runs: make(chan schedule.Tick, 10), errc: make(chan error, 1)}
	if s.reuse != nil {
		h.clock, h.state = s.reuse.clock, s.reuse.state
		h.clock.Set(s.now)
	} else {
		h.clock, h.state = clocktest.New(s.now), newMemState()
	}
	if s.state != nil {
		h.state.st[name] = *s.state
	}
	if s.hold {
		h.hold = make(chan error)
	}
	if s.grace == 0 {
		s.grace = 12 * time.Hour
	}
	sched, err := schedule.Parse(s.spec, s.loc)
	if err != nil {
		t.Fatal(err)
	}
	h.loop = schedule.New(schedule.Options{
		Name: name, Schedule: sched, Store: h.state, Grace: s.grace, Clock: h.clock, Observer: h.obs,
		Job: func(ctx context.Context, r schedule.Tick) error {
			h.runs <- r
			if h.hold == nil {
				return nil
			}
			select {
			case err := <-h.hold:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.errc <- h.loop.Run(ctx) }()
	t.Cleanup(func() { h.stop() })
	return h
}

// stop cancels the loop and waits for Run to return.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case err, ok := <-h.errc:
		if ok && err != nil {
			h.t.Errorf("Run: %v", err)
		}
		if ok {
			close(h.errc)
		}
	case <-time.After(hang):
		h.t.Fatal("Run did not return after cancel")
	}
}

// run returns the next run the job saw.
func (h *harness) run() schedule.Tick {
	h.t.Helper()
	select {
	case r := <-h.runs:
		return r
	case <-time.After(hang):
		h.t.Fatal("no run")
		return schedule.Tick{}
	}
}

// noRun checks that the job did not run (call it once the loop is waiting
// on a timer: everything due was done by then).
func (h *harness) noRun() {
	h.t.Helper()
	select {
	case r := <-h.runs:
		h.t.Fatalf("unexpected run for %s (%s)", r.Scheduled, r.Kind)
	default:
	}
}

// save returns the next save, checking its outcome and time.
func (h *harness) save(outcome schedule.Outcome, scheduled time.Time) schedule.State {
	h.t.Helper()
	st := h.state.nextSave(h.t)
	if st.Outcome != outcome || !st.Scheduled.Equal(scheduled) {
		h.t.Fatalf("saved %s for %s (%s), want %s for %s", st.Outcome, st.Scheduled, st.Detail, outcome, scheduled)
	}
	return st
}

// next waits until the loop waits, and checks the next scheduled time.
func (h *harness) next(want time.Time) {
	h.t.Helper()
	h.clock.WaitTimer(h.t, hang)
	if got := h.loop.Status().Next; !got.Equal(want) {
		h.t.Fatalf("next run %s, want %s", got, want)
	}
}

func at(hour, min int) time.Time { return time.Date(2026, 5, 4, hour, min, 0, 0, time.UTC) }

func TestOnTime(t *testing.T) {
	h := start(t, setup{spec: "0 * * * *", now: at(9, 30)})
	h.save(schedule.OutcomeStarted, at(9, 30))
	h.next(at(10, 0))
	h.noRun()

	h.clock.Set(at(10, 0))
	if r := h.run(); !r.Scheduled.Equal(at(10, 0)) || r.Kind != schedule.OnTime {
		t.Errorf("run %+v, want on time at 10:00", r)
	}
	h.save(schedule.OutcomeRunning, at(10, 0))
	h.save(schedule.OutcomeOK, at(10, 0))
	h.next(at(11, 0))
	if st := h.loop.Status(); st.Running || st.Last.Outcome != schedule.OutcomeOK {
		t.Errorf("status %+v", st)
	}
}

// A first start has missed nothing: it waits for the first time to come.
func TestFirstStartCatchesNothingUp(t *testing.T) {
	h := start(t, setup{spec: "0 8 * * *", now: at(8, 5)})
	h.save(schedule.OutcomeStarted, at(8, 5))
	h.next(time.Date(2026, 5, 5, 8, 0, 0, 0, time.UTC))
	h.noRun()
}

func TestCatchUp(t *testing.T) {
	for _, tt := range []struct {
		name     string
		spec     string
		last     time.Time
		now      time.Time
		want     time.Time // the run caught up
		missed   int       // earlier times passed over
		wantNext time.Time
	}{
		{
			name: "one missed", spec: "0 * * * *", last: at(9, 0), now: at(10, 30),
			want: at(10, 0), wantNext: at(11, 0),
		},
		{
			name: "down for days: only the latest runs", spec: "0 8 * * *",
			last: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC), now: at(19, 59),
			want: at(8, 0), missed: 2, wantNext: time.Date(2026, 5, 5, 8, 0, 0, 0, time.UTC),
		},
		{
			name: "every minute, down for a week", spec: "* * * * *",
			last: at(10, 0).AddDate(0, 0, -7), now: at(10, 0),
			want: at(10, 0), missed: 7*24*60 - 1, wantNext: at(10, 1),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, setup{spec: tt.spec, now: tt.now, state: &schedule.State{Scheduled: tt.last, Outcome: schedule.OutcomeOK}})
			r := h.run()
			if !r.Scheduled.Equal(tt.want) || r.Kind != schedule.CatchUp || r.Late != tt.now.Sub(tt.want) {
				t.Errorf("run %+v, want a catch-up of %s", r, tt.want)
			}
			h.save(schedule.OutcomeRunning, tt.want)
			h.save(schedule.OutcomeOK, tt.want)
			h.next(tt.wantNext)
			h.noRun()
			skipped, caught := h.obs.get()
			if caught != 1 || skipped["missed"] != tt.missed {
				t.Errorf("caught up %d, skipped %v; want 1 and %d missed", caught, skipped, tt.missed)
			}
		})
	}
}

func TestBeyondGraceSkipped(t *testing.T) {
	yesterday := time.Date(2026, 5, 3, 8, 0, 0, 0, time.UTC)
	h := start(t, setup{spec: "0 8 * * *", now: at(20, 0).Add(time.Second),
		state: &schedule.State{Scheduled: yesterday, Outcome: schedule.OutcomeOK}})
	st := h.save(schedule.OutcomeSkipped, at(8, 0))
	t.Logf("skipped: %s", st.Detail)
	tomorrow := time.Date(2026, 5, 5, 8, 0, 0, 0, time.UTC)
	h.next(tomorrow)
	h.noRun()
	if skipped, _ := h.obs.get(); skipped["late"] != 1 {
		t.Errorf("skipped %v, want 1 late", skipped)
	}

	// A restart a minute later does not reconsider it.
	h.stop()
	h2 := start(t, setup{spec: "0 8 * * *", now: at(20, 1), reuse: h})
	h2.next(tomorrow)
	h2.noRun()

	// Tomorrow's runs on time.
	h2.clock.Set(tomorrow)
	if r := h2.run(); !r.Scheduled.Equal(tomorrow) || r.Kind != schedule.OnTime {
		t.Errorf("run %+v", r)
	}
}

// A time is run once, however often the daemon restarts around it.
func TestNeverTwice(t *testing.T) {
	h := start(t, setup{spec: "0 * * * *", now: at(9, 59)})
	h.save(schedule.OutcomeStarted, at(9, 59))
	h.next(at(10, 0))
	h.clock.Set(at(10, 0))
	h.run()
	h.save(schedule.OutcomeRunning, at(10, 0))
	h.save(schedule.OutcomeOK, at(10, 0))
	h.next(at(11, 0))
	h.stop()

	for _, now := range []time.Time{at(10, 0), at(10, 20), at(10, 59)} {
		h2 := start(t, setup{spec: "0 * * * *", now: now, reuse: h})
		h2.next(at(11, 0))
		h2.noRun()
		h2.stop()
	}
}

// Europe/Berlin skips 02:00-03:00 on 29 March 2026; cron/v3 would not run
// a 02:30 job that day at all.
func TestDSTGap(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	day := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, berlin) }
	last := &schedule.State{Scheduled: day(28, 2, 30), Outcome: schedule.OutcomeOK}
	gapRun := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC) // 03:30 CEST, right after the gap

	t.Run("running through the gap", func(t *testing.T) {
		h := start(t, setup{spec: "30 2 * * *", loc: berlin, now: day(29, 1, 0), state: last})
		h.next(gapRun)
		h.clock.Set(gapRun)
		if r := h.run(); !r.Scheduled.Equal(gapRun) || r.Kind != schedule.OnTime {
			t.Errorf("run %+v, want on time at %s", r, gapRun)
		}
		h.save(schedule.OutcomeRunning, gapRun)
		h.save(schedule.OutcomeOK, gapRun)
		h.next(day(30, 2, 30))
		h.noRun()
	})
	t.Run("down over the gap", func(t *testing.T) {
		h := start(t, setup{spec: "30 2 * * *", loc: berlin, now: day(29, 9, 0), state: last})
		if r := h.run(); !r.Scheduled.Equal(gapRun) || r.Kind != schedule.CatchUp {
			t.Errorf("run %+v, want a catch-up of %s", r, gapRun)
		}
		h.save(schedule.OutcomeRunning, gapRun)
		h.save(schedule.OutcomeOK, gapRun)
		h.next(day(30, 2, 30))
		h.noRun()
	})
}

// A tick that comes while the previous run is still going is skipped, and
// the slow run's late outcome does not move the state back.
func TestOverlapSkipped(t *testing.T) {
	h := start(t, setup{spec: "*/5 * * * *", now: at(10, 0).Add(30 * time.Second), hold: true})
	h.save(schedule.OutcomeStarted, at(10, 0).Add(30*time.Second))
	h.next(at(10, 5))
	h.clock.Set(at(10, 5))
	h.run()
	h.save(schedule.OutcomeRunning, at(10, 5))
	h.next(at(10, 10))

	h.clock.Set(at(10, 10))
	h.save(schedule.OutcomeSkipped, at(10, 10))
	h.next(at(10, 15))
	h.noRun()

	h.hold <- nil // the 10:05 run ends now
	h.save(schedule.OutcomeOK, at(10, 5))
	if st := h.state.get(name); st.Outcome != schedule.OutcomeSkipped || !st.Scheduled.Equal(at(10, 10)) {
		t.Errorf("state %+v: the late outcome of 10:05 moved it back", st)
	}
	h.next(at(10, 15))

	h.clock.Set(at(10, 15))
	if r := h.run(); !r.Scheduled.Equal(at(10, 15)) {
		t.Errorf("run %+v, want 10:15", r)
	}
	h.hold <- errors.New("relay down")
	h.save(schedule.OutcomeRunning, at(10, 15))
	if st := h.save(schedule.OutcomeFailed, at(10, 15)); st.Detail != "relay down" {
		t.Errorf("detail %q", st.Detail)
	}
	if skipped, _ := h.obs.get(); skipped["overlap"] != 1 {
		t.Errorf("skipped %v, want 1 overlap", skipped)
	}
}

// The wall clock jumps (the machine slept, NTP stepped the clock): the loop
// notices within MaxWait and treats the time as missed.
func TestClockJump(t *testing.T) {
	for _, tt := range []struct {
		name string
		to   time.Time
		run  bool
	}{
		{"within the grace", at(10, 0).Add(3 * time.Hour), true},
		{"beyond the grace", at(10, 0).Add(13 * time.Hour), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, setup{spec: "0 10 * * *", now: at(9, 0)})
			h.save(schedule.OutcomeStarted, at(9, 0))
			if fires := h.clock.WaitTimer(t, hang); !fires.Equal(at(9, 1)) {
				t.Fatalf("the loop sleeps until %s; it must look at the clock every minute", fires)
			}
			h.clock.Set(tt.to)
			if tt.run {
				if r := h.run(); !r.Scheduled.Equal(at(10, 0)) || r.Kind != schedule.CatchUp {
					t.Errorf("run %+v, want a catch-up of 10:00", r)
				}
				h.save(schedule.OutcomeRunning, at(10, 0))
			} else {
				h.save(schedule.OutcomeSkipped, at(10, 0))
			}
			h.clock.WaitTimer(t, hang)
		})
	}
}

func TestInterruptedRunResumed(t *testing.T) {
	for _, tt := range []struct {
		name    string
		outcome schedule.Outcome
		now     time.Time
		resume  bool
	}{
		{"crashed during the run", schedule.OutcomeRunning, at(10, 10), true},
		{"stopped during the run", schedule.OutcomeInterrupted, at(18, 0), true},
		{"crashed long ago", schedule.OutcomeRunning, at(22, 1), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, setup{spec: "0 10 * * *", now: tt.now,
				state: &schedule.State{Scheduled: at(10, 0), Outcome: tt.outcome}})
			if tt.resume {
				if r := h.run(); !r.Scheduled.Equal(at(10, 0)) || r.Kind != schedule.Resume {
					t.Errorf("run %+v, want a resume of 10:00", r)
				}
				h.save(schedule.OutcomeRunning, at(10, 0))
				h.save(schedule.OutcomeOK, at(10, 0))
			} else {
				h.save(schedule.OutcomeSkipped, at(10, 0))
			}
			h.next(time.Date(2026, 5, 5, 10, 0, 0, 0, time.UTC))
			h.noRun()
		})
	}
}

// Cancelling stops the loop: a run in progress sees its context cancelled,
// and its outcome is recorded as interrupted before Run returns.
func TestCancelStopsCleanly(t *testing.T) {
	t.Run("during a run", func(t *testing.T) {
		h := start(t, setup{spec: "0 * * * *", now: at(9, 59), hold: true})
		h.save(schedule.OutcomeStarted, at(9, 59))
		h.next(at(10, 0))
		h.clock.Set(at(10, 0))
		h.run()
		h.save(schedule.OutcomeRunning, at(10, 0))
		h.stop()
		if st := h.state.get(name); st.Outcome != schedule.OutcomeInterrupted || !st.Scheduled.Equal(at(10, 0)) {
			t.Errorf("state after stop: %+v", st)
		}
		if n := h.loop.Status().Next; !n.IsZero() {
			t.Errorf("a stopped loop still announces a next run at %s", n)
		}
		// The next start resumes it.
		h2 := start(t, setup{spec: "0 * * * *", now: at(10, 2), reuse: h})
		if r := h2.run(); r.Kind != schedule.Resume || !r.Scheduled.Equal(at(10, 0)) {
			t.Errorf("run %+v, want a resume", r)
		}
	})
	t.Run("while waiting", func(t *testing.T) {
		h := start(t, setup{spec: "0 * * * *", now: at(9, 30)})
		h.next(at(10, 0))
		h.stop()
		h.noRun()
	})
}

func TestReschedule(t *testing.T) {
	h := start(t, setup{spec: "0 8 * * MON", now: at(9, 0)}) // a Monday
	h.save(schedule.OutcomeStarted, at(9, 0))
	h.next(time.Date(2026, 5, 11, 8, 0, 0, 0, time.UTC))
	hourly, err := schedule.Parse("30 * * * *", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	h.loop.Reschedule(hourly)
	h.clock.WaitTimer(t, hang) // the old timer, or the new one
	deadline := time.After(hang)
	for !h.loop.Status().Next.Equal(at(9, 30)) {
		select {
		case <-deadline:
			t.Fatalf("next run %s after rescheduling, want 9:30", h.loop.Status().Next)
		case <-time.After(time.Millisecond):
		}
	}
	if s := h.loop.Status().Schedule; s != "30 * * * *" {
		t.Errorf("status schedule %q", s)
	}
	h.clock.Set(at(9, 30))
	if r := h.run(); !r.Scheduled.Equal(at(9, 30)) {
		t.Errorf("run %+v", r)
	}
}

func TestJobPanicIsAFailedRun(t *testing.T) {
	clock := clocktest.New(at(9, 59))
	state := newMemState()
	sched, err := schedule.Parse("0 * * * *", nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	loop := schedule.New(schedule.Options{Name: name, Schedule: sched, Store: state, Grace: time.Hour, Clock: clock,
		Job: func(context.Context, schedule.Tick) error {
			calls++
			panic(fmt.Sprintf("call %d", calls))
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- loop.Run(ctx) }()
	defer func() { cancel(); <-done }()
	state.nextSave(t) // started
	for _, hour := range []int{10, 11} {
		clock.WaitTimer(t, hang)
		clock.Set(at(hour, 0))
		state.nextSave(t) // running
		if st := state.nextSave(t); st.Outcome != schedule.OutcomeFailed || st.Detail == "" {
			t.Errorf("%d:00: saved %+v, want failed with the panic", hour, st)
		}
	}
}

func TestOptionsRequired(t *testing.T) {
	err := schedule.New(schedule.Options{Name: name}).Run(context.Background())
	if err == nil {
		t.Fatal("a loop without schedule, store and job ran")
	}
}
