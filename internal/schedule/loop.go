package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// Clock is the time source of a Loop. The system clock is the default; tests
// pass a fake one that they advance by hand.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// SystemClock returns the real clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time                 { return time.Now() }
func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }

// Outcome is what became of a scheduled time.
type Outcome string

// Outcomes of a scheduled time.
const (
	// OutcomeStarted: no scheduled time has come since the schedule was
	// first started; State.Scheduled holds when that was, and the first
	// run is the first scheduled time after it.
	OutcomeStarted Outcome = "started"
	// OutcomeRunning: the run began and has not finished. Found at
	// start-up, it means the process died during the run.
	OutcomeRunning Outcome = "running"
	// OutcomeOK: the job returned no error.
	OutcomeOK Outcome = "ok"
	// OutcomeFailed: the job returned an error.
	OutcomeFailed Outcome = "failed"
	// OutcomeInterrupted: the loop was stopped (shutdown, a lost lease)
	// before the job finished.
	OutcomeInterrupted Outcome = "interrupted"
	// OutcomeSkipped: not run, because it was more than the grace late or
	// the previous run was still going.
	OutcomeSkipped Outcome = "skipped"
)

// State is the schedule's record, kept in the store.
type State struct {
	// Scheduled is the latest scheduled time handled (run, running or
	// skipped), or when the schedule was first started.
	Scheduled time.Time
	Outcome   Outcome
	At        time.Time // when the outcome was recorded
	Detail    string    // the job's error, or why the time was skipped
}

// StateStore keeps a schedule's State under its name.
type StateStore interface {
	// LoadState returns the state saved under name; found is false when
	// none was ever saved.
	LoadState(ctx context.Context, name string) (st State, found bool, err error)
	// SaveState saves st under name, unless the state saved already has a
	// later Scheduled time: a slow run that finishes after a later time
	// was skipped must not move the schedule back (a restart would then
	// run the skipped time after all).
	SaveState(ctx context.Context, name string, st State) error
}

// Observer is told what the loop does, for metrics. Its methods are called
// from the loop's goroutine and must not block.
type Observer interface {
	// NextRun is the next scheduled time (zero when there is none).
	NextRun(t time.Time)
	// Skipped counts n scheduled times not run: reason is "late" (more
	// than the grace), "overlap" (the previous run was still going) or
	// "missed" (an earlier time passed over for a later one while the
	// process was down or the clock jumped).
	Skipped(reason string, n int)
	// CaughtUp counts a run started after its time had passed unnoticed.
	CaughtUp()
}

// Kind says why a run happens.
type Kind int

// Kinds of run.
const (
	// OnTime: the loop was waiting for the time and it came.
	OnTime Kind = iota
	// CatchUp: the time passed while the process was down, the machine
	// slept or the clock jumped, less than the grace ago.
	CatchUp
	// Resume: the run of this time was interrupted (the process died or
	// was stopped during it), and the new loop runs it again.
	Resume
)

// String names the kind for logs: "on time", "catch-up" or "resume".
func (k Kind) String() string {
	switch k {
	case CatchUp:
		return "catch-up"
	case Resume:
		return "resume"
	}
	return "on time"
}

// Tick is one run of the job at a scheduled time (or a resumed one).
type Tick struct {
	Scheduled time.Time     // the scheduled time it is for
	Kind      Kind          // why it runs
	Late      time.Duration // how long after Scheduled it started
}

// Job is the work done at each scheduled time. ctx is cancelled when the
// loop stops; the job should then finish what is in flight and return.
type Job func(ctx context.Context, r Tick) error

// Options configure a Loop. Name, Schedule, Store, Job and Grace are required.
type Options struct {
	Name     string // key of the state in the store
	Schedule *Schedule
	Store    StateStore
	Job      Job
	// Grace is how late a run may start: a scheduled time that passed
	// longer ago than this is skipped and logged, never run.
	Grace    time.Duration
	Clock    Clock        // nil: SystemClock()
	Logger   *slog.Logger // nil: discard
	Observer Observer     // nil: none
	// MaxWait is the longest single wait before the loop reads the clock
	// again, so that a jump of the wall clock (or a machine that slept) is
	// noticed; 0 means one minute.
	MaxWait time.Duration
}

// Loop runs a job on a schedule; see the package comment. Create it with
// New; Status and Reschedule may be called from any goroutine.
type Loop struct {
	name    string
	store   StateStore
	job     Job
	grace   time.Duration
	clock   Clock
	log     *slog.Logger
	obs     Observer
	maxWait time.Duration

	done    chan result    // the running job's result
	resched chan *Schedule // a new schedule, latest wins
	running bool           // owned by Run's goroutine

	mu     sync.Mutex
	sched  *Schedule
	status Status
	ran    bool // Run was called
}

// Status is what a Loop is doing, for health checks.
type Status struct {
	Schedule string    // the spec
	Next     time.Time // the next scheduled time; zero when none
	Last     State     // the state as last recorded
	Running  bool      // a run is in progress
	Current  Tick      // the run in progress, when Running
}

type result struct {
	run  Tick
	err  error
	took time.Duration
}

// maxWalk bounds the scheduled times walked over after a long gap; see walk.
const maxWalk = 100_000

// New returns a loop; call Run to start it.
func New(o Options) *Loop {
	l := &Loop{
		name: o.Name, store: o.Store, job: o.Job, grace: o.Grace, clock: o.Clock, log: o.Logger,
		obs: o.Observer, maxWait: o.MaxWait, sched: o.Schedule,
		done: make(chan result, 1), resched: make(chan *Schedule, 1),
	}
	if l.clock == nil {
		l.clock = SystemClock()
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.log = l.log.With("schedule", o.Name)
	if l.obs == nil {
		l.obs = nopObserver{}
	}
	if l.maxWait <= 0 {
		l.maxWait = time.Minute
	}
	if o.Schedule != nil {
		l.status.Schedule = o.Schedule.String()
	}
	return l
}

type nopObserver struct{}

func (nopObserver) NextRun(time.Time)   {}
func (nopObserver) Skipped(string, int) {}
func (nopObserver) CaughtUp()           {}

// Status returns what the loop is doing.
func (l *Loop) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

// Reschedule replaces the schedule (after a configuration reload). The next
// time is computed from the last time handled, as at a restart, so a time of
// the new schedule that passed less than the grace ago is caught up. A run
// in progress is not disturbed.
func (l *Loop) Reschedule(s *Schedule) {
	for {
		select {
		case l.resched <- s:
			return
		default:
			select {
			case <-l.resched: // drop the older pending one
			default:
			}
		}
	}
}

// Run runs the loop until ctx is cancelled, then waits for a run in progress
// to return (its ctx is cancelled too) and records its outcome. At start it
// reads the state: a run that was interrupted is resumed, and the latest
// scheduled time missed since the last one handled is caught up, each only
// when less than the grace late. It returns an error only when the state
// cannot be read at start, or when called twice.
func (l *Loop) Run(ctx context.Context) error {
	sched, err := l.begin()
	if err != nil {
		return err
	}
	last, err := l.resume(ctx)
	if err != nil {
		return err
	}
	for {
		var waited, stopped bool
		if sched, waited, stopped = l.wait(ctx, sched, last); stopped {
			return nil
		}
		last = l.fire(ctx, sched, last, waited)
	}
}

// begin checks that Run is called once, on a loop that has what it needs,
// and returns the schedule.
func (l *Loop) begin() (*Schedule, error) {
	l.mu.Lock()
	if l.ran {
		l.mu.Unlock()
		return nil, errors.New("schedule: Run called twice")
	}
	l.ran = true
	sched := l.sched
	l.mu.Unlock()
	if sched == nil || l.store == nil || l.job == nil || l.grace <= 0 {
		return nil, fmt.Errorf("schedule %s: Schedule, Store, Job and a positive Grace are required", l.name)
	}
	return sched, nil
}

// resume reads the state, resumes a run that was interrupted less than the
// grace ago (or records it skipped), and returns the last scheduled time
// handled.
func (l *Loop) resume(ctx context.Context) (time.Time, error) {
	st, found, err := l.store.LoadState(ctx, l.name)
	if err != nil {
		return time.Time{}, fmt.Errorf("schedule %s: load state: %w", l.name, err)
	}
	now := l.clock.Now()
	if !found {
		st = State{Scheduled: now, Outcome: OutcomeStarted, At: now}
		l.save(ctx, st)
	}
	l.setLast(st)
	if st.Outcome == OutcomeRunning || st.Outcome == OutcomeInterrupted {
		late := now.Sub(st.Scheduled)
		if late < l.grace {
			l.log.Info("resuming an interrupted run", "scheduled", st.Scheduled, "late", late.Round(time.Second))
			l.start(ctx, Tick{Scheduled: st.Scheduled, Kind: Resume, Late: late})
		} else {
			l.skip(ctx, st.Scheduled, "late", fmt.Sprintf("interrupted run is %s late, more than the grace of %s: nothing new is built for it (an issue whose delivery started is still finished)", late.Round(time.Second), l.grace))
		}
	}
	return st.Scheduled, nil
}

// wait waits until the next scheduled time after last, meanwhile recording
// runs that finish and taking up a changed schedule, which it returns.
// waited says whether it had to wait at all; stopped, that ctx ended (the
// run in progress has then been waited for).
func (l *Loop) wait(ctx context.Context, sched *Schedule, last time.Time) (_ *Schedule, waited, stopped bool) {
	next := sched.Next(last)
	l.setNext(next)
	for next.IsZero() || l.clock.Now().Before(next) {
		d := l.maxWait
		if !next.IsZero() {
			d = min(d, next.Sub(l.clock.Now()))
		}
		t := l.clock.NewTimer(d)
		waited = true
		select {
		case <-ctx.Done():
			t.Stop()
			l.stop(ctx)
			return sched, waited, true
		case <-t.C():
		case res := <-l.done:
			t.Stop()
			l.finish(ctx, res)
		case s := <-l.resched:
			t.Stop()
			l.log.Info("schedule changed", "from", sched.String(), "to", s.String())
			sched = s
			l.mu.Lock()
			l.sched, l.status.Schedule = s, s.String()
			l.mu.Unlock()
			next = sched.Next(last)
			l.setNext(next)
		}
	}
	return sched, waited, false
}

// fire handles the scheduled time that has come (the latest one, when
// several passed unnoticed): it starts the run, as a catch-up when it is
// late, or records it skipped when it is too late or the previous run is
// still going. It returns that time.
func (l *Loop) fire(ctx context.Context, sched *Schedule, last time.Time, waited bool) time.Time {
	now := l.clock.Now()
	due, missed := l.walk(sched, last, now)
	if missed > 0 {
		l.log.Warn("scheduled times passed unnoticed (process down, machine asleep or clock jump): only the latest may run",
			"missed", missed, "after", last, "latest", due)
		l.obs.Skipped("missed", missed)
	}
	select { // a run that has just finished is not an overlap
	case res := <-l.done:
		l.finish(ctx, res)
	default:
	}
	late := now.Sub(due)
	switch {
	case late >= l.grace:
		l.skip(ctx, due, "late", fmt.Sprintf("%s late, more than the grace of %s", late.Round(time.Second), l.grace))
	case l.running:
		l.skip(ctx, due, "overlap", "the previous run is still going")
	default:
		kind := OnTime
		if missed > 0 || !waited || late > l.maxWait {
			kind = CatchUp
			l.obs.CaughtUp()
			l.log.Info("catching up a missed run", "scheduled", due, "late", late.Round(time.Second))
		}
		l.start(ctx, Tick{Scheduled: due, Kind: kind, Late: late})
	}
	return due
}

// walk returns the latest scheduled time after last and not after now, and
// how many earlier ones it passed over. A very long gap in a very frequent
// schedule is not walked in full: after maxWalk steps it jumps to the start
// of the grace window (what lies before is skipped either way), and missed
// then counts fewer than were passed over.
func (l *Loop) walk(s *Schedule, last, now time.Time) (due time.Time, missed int) {
	steps := 0
	for t := s.Next(last); !t.IsZero() && !t.After(now); t = s.Next(t) {
		if !due.IsZero() {
			missed++
		}
		due = t
		if steps++; steps == maxWalk {
			if edge := now.Add(-l.grace); edge.After(t) {
				t = edge
			}
		}
	}
	return due, missed
}

// start records the run as running and starts the job.
func (l *Loop) start(ctx context.Context, r Tick) {
	begun := l.clock.Now()
	l.running = true
	st := State{Scheduled: r.Scheduled, Outcome: OutcomeRunning, At: begun}
	l.save(ctx, st)
	l.mu.Lock()
	l.status.Running, l.status.Current = true, r
	if !st.Scheduled.Before(l.status.Last.Scheduled) {
		l.status.Last = st
	}
	l.mu.Unlock()
	go func() {
		err := l.call(ctx, r)
		l.done <- result{run: r, err: err, took: l.clock.Now().Sub(begun)}
	}()
}

// call runs the job; a panic is a failed run, not a dead daemon.
func (l *Loop) call(ctx context.Context, r Tick) (err error) {
	defer func() {
		if p := recover(); p != nil {
			l.log.Error("scheduled job panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return l.job(ctx, r)
}

// finish records a run's outcome.
func (l *Loop) finish(ctx context.Context, res result) {
	l.running = false
	st := State{Scheduled: res.run.Scheduled, Outcome: OutcomeOK, At: l.clock.Now()}
	switch {
	case res.err != nil && ctx.Err() != nil:
		st.Outcome, st.Detail = OutcomeInterrupted, res.err.Error()
	case res.err != nil:
		st.Outcome, st.Detail = OutcomeFailed, res.err.Error()
	}
	l.save(context.WithoutCancel(ctx), st)
	l.mu.Lock()
	l.status.Running, l.status.Current = false, Tick{}
	if !st.Scheduled.Before(l.status.Last.Scheduled) {
		l.status.Last = st
	}
	l.mu.Unlock()
	// The job reports its own result (with what it did); this line is for
	// debugging the schedule.
	l.log.Debug("scheduled run finished", "scheduled", res.run.Scheduled, "kind", res.run.Kind.String(),
		"outcome", string(st.Outcome), "duration", res.took.Round(time.Millisecond), "err", res.err)
}

// skip records a scheduled time that is not run.
func (l *Loop) skip(ctx context.Context, at time.Time, reason, detail string) {
	l.log.Warn("scheduled run skipped", "scheduled", at, "reason", reason, "detail", detail)
	l.obs.Skipped(reason, 1)
	st := State{Scheduled: at, Outcome: OutcomeSkipped, At: l.clock.Now(), Detail: detail}
	l.save(ctx, st)
	l.setLast(st)
}

// stop waits for a run in progress and records it.
func (l *Loop) stop(ctx context.Context) {
	if l.running {
		l.log.Info("stopping: waiting for the run in progress")
		l.finish(ctx, <-l.done)
	}
	l.setNext(time.Time{})
}

// save writes the state. A store that fails is logged, not fatal: the job's
// own records (the ledger) keep a repeated run from sending twice.
func (l *Loop) save(ctx context.Context, st State) {
	if err := l.store.SaveState(ctx, l.name, st); err != nil {
		l.log.Error("saving the schedule's state", "scheduled", st.Scheduled, "outcome", string(st.Outcome), "err", err)
	}
}

func (l *Loop) setLast(st State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !st.Scheduled.Before(l.status.Last.Scheduled) {
		l.status.Last = st
	}
}

func (l *Loop) setNext(t time.Time) {
	l.mu.Lock()
	l.status.Next = t
	l.mu.Unlock()
	l.obs.NextRun(t)
}
