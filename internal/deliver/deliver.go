// Package deliver sends a rendered issue to every recipient of its ledger:
// a claimer takes batches of pending rows, a pool of workers each holding
// one connection sends them under a shared rate limit, and outcomes are
// written back in batches.
//
// The ordering rule that keeps a crash from skipping anyone: a recipient is
// recorded sent only after the server accepted its message, and a claimed
// row that was not attempted is released back to pending. A crash repeats at
// most the messages in flight. 4xx replies, timeouts and dropped connections
// are retried with backoff; a 5xx reply fails the recipient at once (and
// marks it bounced when the address itself was refused).
package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"
	"golang.org/x/time/rate"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/render"
)

// Ledger is the per-recipient delivery record, implemented by package store.
type Ledger interface {
	// Claim moves up to limit pending rows of the issue to sending and
	// returns them; an empty result means nothing is left to claim.
	Claim(ctx context.Context, issueID string, limit int) ([]ledger.Recipient, error)
	// Record stores outcomes: Sent and Failed are final, Pending puts the
	// row back with its attempts counted.
	Record(ctx context.Context, issueID string, outs []ledger.Outcome) error
	// Release puts claimed rows that were not attempted back to pending.
	Release(ctx context.Context, issueID string, ids []int64) error
}

// Transport opens connections to wherever messages go.
type Transport interface {
	// Open returns a new connection. ctx bounds the dial.
	Open(ctx context.Context) (Conn, error)
}

// Conn is one connection, used by one worker at a time.
type Conn interface {
	// Send transmits one message to rc. An error that wraps ErrConnBroken,
	// or that carries no SMTP reply code, makes the engine re-open the
	// connection. Implementations may ignore ctx once transmission started.
	Send(ctx context.Context, m *gomail.Msg, rc ledger.Recipient) error
	// Close releases the connection.
	Close() error
}

// Composer builds one recipient's message; *mail.Composer implements it.
type Composer interface {
	Compose(r *render.Rendered, rc ledger.Recipient) (*gomail.Msg, error)
}

// Options tunes a run. The zero value works: one connection, no rate limit,
// 5 attempts, batches of 100.
type Options struct {
	Connections int     // parallel connections; 0 means 1
	Rate        float64 // messages per second over all connections; 0 = unlimited
	Burst       int     // messages allowed at once above Rate; 0 means 1
	MaxAttempts int     // attempts per recipient across runs; 0 means 5
	BatchSize   int     // rows per Claim and per Record; 0 means 100
	// OpenAttempts is how many times a worker tries to open a connection
	// before it gives up; 0 means 3. When every worker gave up, the run
	// stops with the relay's error and leaves the rest pending.
	OpenAttempts int
	// Backoff is the wait before retry n (1, 2, ...) of a message or of a
	// connection; nil means exponential from 1s with jitter, capped at 30s.
	Backoff func(attempt int) time.Duration
	// Total is the number of recipients of the issue, for progress reports;
	// 0 means "as claimed so far".
	Total int
	// Progress, when set, is called every ProgressEvery (default 1s) and
	// once at the end, from a single goroutine.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Now stamps outcomes; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger // nil discards
}

// Progress is a snapshot of a run.
type Progress struct {
	Sent, Failed, Pending, Total int
	Rate                         float64 // messages accepted per second since the start
}

// Summary is what a run did. Pending counts recipients this run claimed but
// left pending (to be continued by a later run).
type Summary struct {
	Sent, Failed, Pending int
	Attempts              int // messages handed to the transport in this run, retries included
	Duration              time.Duration
}

// DefaultBackoff waits 1s, 2s, 4s ... (capped at 30s), each with up to 25%
// jitter so that parallel workers do not retry in lockstep.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Second << min(max(attempt-1, 0), 5)
	d = min(d, 30*time.Second)
	return d - time.Duration(rand.Int64N(int64(d/4)+1))
}

func (o *Options) defaults() {
	if o.Connections <= 0 {
		o.Connections = 1
	}
	if o.Burst <= 0 {
		o.Burst = 1
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.OpenAttempts <= 0 {
		o.OpenAttempts = 3
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// row states within a run.
const (
	stHeld     = iota // claimed, no outcome yet
	stSent            // recorded (or being recorded) sent
	stFailed          // failed
	stPending         // recorded pending, or released
	stUnstored        // has an outcome that could not be recorded
)

type engine struct {
	issueID string
	r       *render.Rendered
	comp    Composer
	l       Ledger
	t       Transport
	o       Options
	log     *slog.Logger
	limiter *rate.Limiter
	start   time.Time

	ctx    context.Context // the run: cancelled by the caller or on a fatal error
	cancel context.CancelCauseFunc
	bg     context.Context // for ledger writes after ctx is cancelled

	jobs chan ledger.Recipient
	outs chan ledger.Outcome

	mu      sync.Mutex
	state   map[int64]int
	claimed int
	sent    int
	failed  int

	attempts     atomic.Int64
	recordFailed bool // owned by the recorder goroutine
	relayMu      sync.Mutex
	relayErr     error
}

// Run delivers issue r to the recipients it claims from l until none is left,
// the relay is unreachable, or ctx is cancelled. On cancellation it stops
// claiming, lets messages in flight finish (bounded by the transport's
// timeout), records what is known, releases the rest and returns ctx.Err().
// If no connection can be opened it returns an error naming the relay
// failure, with the recipients left pending.
func Run(ctx context.Context, issueID string, r *render.Rendered, comp Composer, l Ledger, t Transport, opts Options) (Summary, error) {
	opts.defaults()
	e := &engine{
		issueID: issueID, r: r, comp: comp, l: l, t: t, o: opts, log: opts.Logger.With("issue", issueID),
		start: time.Now(),
		bg:    context.WithoutCancel(ctx),
		jobs:  make(chan ledger.Recipient, opts.BatchSize),
		outs:  make(chan ledger.Outcome, opts.BatchSize),
		state: make(map[int64]int),
	}
	if opts.Rate > 0 {
		e.limiter = rate.NewLimiter(rate.Limit(opts.Rate), opts.Burst)
	}
	e.ctx, e.cancel = context.WithCancelCause(ctx)
	defer e.cancel(nil)

	var recWG, claimWG, workWG sync.WaitGroup
	recWG.Go(e.recorder)
	claimWG.Go(e.claimer)
	for range opts.Connections {
		workWG.Go(e.worker)
	}
	progressDone := make(chan struct{})
	var progWG sync.WaitGroup
	if opts.Progress != nil {
		progWG.Go(func() { e.progressLoop(progressDone) })
	}

	workWG.Wait()
	// Workers are gone (done, or none could connect): stop the claimer. A
	// no-op when the run already stopped with a cause.
	e.cancel(nil)
	claimWG.Wait()
	close(e.outs)
	recWG.Wait()
	e.releaseHeld()
	close(progressDone)
	progWG.Wait()

	s := e.summary()
	if opts.Progress != nil {
		opts.Progress(e.progress())
	}
	e.log.Info("delivery run finished", "sent", s.Sent, "failed", s.Failed, "pending", s.Pending,
		"attempts", s.Attempts, "duration", s.Duration.Round(time.Millisecond))

	if err := ctx.Err(); err != nil {
		return s, err
	}
	if cause := context.Cause(e.ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return s, cause
	}
	if s.Pending > 0 {
		if err := e.relayError(); err != nil {
			return s, fmt.Errorf("deliver %s: %d recipients left pending: %w", issueID, s.Pending, err)
		}
	}
	return s, nil
}

// claimer feeds claimed rows to the workers until the ledger is drained or
// the run stops.
func (e *engine) claimer() {
	defer close(e.jobs)
	for e.ctx.Err() == nil {
		batch, err := e.l.Claim(e.ctx, e.issueID, e.o.BatchSize)
		if err != nil {
			if e.ctx.Err() == nil {
				e.cancel(fmt.Errorf("deliver %s: claim: %w", e.issueID, err))
			}
			return
		}
		if len(batch) == 0 {
			return
		}
		e.mu.Lock()
		for _, rc := range batch {
			if _, seen := e.state[rc.SubscriberID]; !seen {
				e.claimed++
			}
			e.state[rc.SubscriberID] = stHeld
		}
		e.mu.Unlock()
		for _, rc := range batch {
			select {
			case e.jobs <- rc:
			case <-e.ctx.Done():
				return // the rest stays held and is released at the end
			}
		}
	}
}

// worker owns at most one connection and delivers jobs one at a time.
func (e *engine) worker() {
	var conn Conn
	defer func() {
		if conn != nil {
			if err := conn.Close(); err != nil {
				e.log.Debug("close connection", "err", err)
			}
		}
	}()
	for {
		var rc ledger.Recipient
		var ok bool
		select {
		case <-e.ctx.Done():
			return
		case rc, ok = <-e.jobs:
			if !ok {
				return
			}
		}
		if !e.deliver(rc, &conn) {
			return
		}
	}
}

// deliver tries one recipient until it is sent, failed for good, or must
// wait for a later run. It reports false when the worker should stop
// because no connection could be opened.
func (e *engine) deliver(rc ledger.Recipient, conn *Conn) bool {
	attempts := rc.Attempts
	var last failure
	staleRetried := false // one free retry when a reused connection was dead
	emit := func(status string, f failure) bool {
		e.emit(rc, status, attempts, f)
		return true
	}
	for {
		if attempts >= e.o.MaxAttempts {
			f := last
			f.reply = fmt.Sprintf("gave up after %d attempts", attempts)
			if last.reply != "" {
				f.reply += ": " + last.reply
			}
			return emit(ledger.Failed, f)
		}
		if e.ctx.Err() != nil {
			return e.leave(rc, attempts, last)
		}
		m, err := e.comp.Compose(e.r, rc)
		if err != nil {
			// No retry can fix a message that cannot be built.
			return emit(ledger.Failed, failure{reply: "compose: " + err.Error()})
		}
		if e.limiter != nil {
			if err := e.limiter.Wait(e.ctx); err != nil {
				return e.leave(rc, attempts, last)
			}
		}
		if *conn == nil {
			c, err := e.open()
			if err != nil {
				// Hand the recipient back now, so that a worker that can
				// still connect may take it in this run.
				if attempts > rc.Attempts {
					e.leave(rc, attempts, last)
				} else if e.ctx.Err() == nil {
					_ = e.release([]int64{rc.SubscriberID})
				}
				return false
			}
			*conn = c
		}
		err = (*conn).Send(e.ctx, m, rc)
		e.attempts.Add(1)
		if err != nil && !m.IsDelivered() && !staleRetried {
			if f := classify(err); f.stale {
				staleRetried = true
				e.log.Debug("connection went stale, re-opening", "err", err)
				e.drop(conn)
				continue
			}
		}
		attempts++
		if err == nil || m.IsDelivered() {
			if err != nil {
				// Accepted, then the connection failed (e.g. during RSET):
				// sent once, and the connection is not trusted again.
				e.log.Warn("message accepted but connection failed afterwards", "subscriber", rc.SubscriberID, "err", err)
				e.drop(conn)
			}
			return emit(ledger.Sent, failure{})
		}
		f := classify(err)
		if f.reconnect {
			e.drop(conn)
		}
		if f.relay {
			// The relay refused the sender: every recipient would fail the
			// same way. Stop the run instead of failing the whole list.
			e.setRelayError(fmt.Errorf("relay refused the sender: %w", err))
			e.cancel(e.relayError())
			return e.leave(rc, attempts, f)
		}
		if !f.temp {
			e.log.Info("recipient failed", "subscriber", rc.SubscriberID, "code", f.code, "enhanced", f.enhanced, "bounced", f.bounced)
			return emit(ledger.Failed, f)
		}
		last = f
		e.log.Debug("temporary failure", "subscriber", rc.SubscriberID, "attempt", attempts, "err", err)
		if attempts >= e.o.MaxAttempts {
			continue
		}
		if !sleep(e.ctx, e.o.Backoff(attempts-rc.Attempts)) {
			return e.leave(rc, attempts, last)
		}
	}
}

// leave gives a recipient back for a later run: recorded pending with its
// attempts when this run tried it, released untouched otherwise.
func (e *engine) leave(rc ledger.Recipient, attempts int, last failure) bool {
	if attempts > rc.Attempts {
		e.emit(rc, ledger.Pending, attempts, last)
	}
	// else: still held, released at the end of the run.
	return true
}

func (e *engine) emit(rc ledger.Recipient, status string, attempts int, f failure) {
	e.outs <- ledger.Outcome{
		SubscriberID: rc.SubscriberID,
		Status:       status,
		Attempts:     attempts,
		Code:         f.code,
		Enhanced:     f.enhanced,
		Reply:        f.reply,
		Bounced:      status == ledger.Failed && f.bounced,
		At:           e.o.Now(),
	}
}

// open opens a connection, retrying with backoff. After OpenAttempts
// failures it records the relay error and gives up.
func (e *engine) open() (Conn, error) {
	for i := 1; ; i++ {
		c, err := e.t.Open(e.ctx)
		if err == nil {
			return c, nil
		}
		if e.ctx.Err() != nil {
			return nil, err
		}
		e.log.Warn("cannot open connection", "try", i, "err", err)
		if i >= e.o.OpenAttempts {
			e.setRelayError(fmt.Errorf("cannot connect after %d tries: %w", i, err))
			return nil, err
		}
		if !sleep(e.ctx, e.o.Backoff(i)) {
			return nil, e.ctx.Err()
		}
	}
}

func (e *engine) drop(conn *Conn) {
	if *conn != nil {
		_ = (*conn).Close()
		*conn = nil
	}
}

func (e *engine) setRelayError(err error) {
	e.relayMu.Lock()
	defer e.relayMu.Unlock()
	if e.relayErr == nil {
		e.relayErr = err
	}
}

func (e *engine) relayError() error {
	e.relayMu.Lock()
	defer e.relayMu.Unlock()
	return e.relayErr
}

// recorder writes outcomes to the ledger in batches (and at least every
// 250ms), with a context that outlives cancellation so that what was sent
// is always recorded.
func (e *engine) recorder() {
	batch := make([]ledger.Outcome, 0, e.o.BatchSize)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		err := e.record(batch)
		e.mu.Lock()
		for _, o := range batch {
			switch {
			case err != nil:
				e.state[o.SubscriberID] = stUnstored
			case o.Status == ledger.Sent:
				e.state[o.SubscriberID] = stSent
			case o.Status == ledger.Failed:
				e.state[o.SubscriberID] = stFailed
			default:
				e.state[o.SubscriberID] = stPending
			}
			switch o.Status {
			case ledger.Sent:
				e.sent++
			case ledger.Failed:
				e.failed++
			}
		}
		e.mu.Unlock()
		if err != nil {
			// Rows stay "sending": the next run puts them back to pending,
			// so at most these are repeated. Stop before it grows.
			e.cancel(fmt.Errorf("deliver %s: record %d outcomes: %w", e.issueID, len(batch), err))
		}
		batch = batch[:0]
	}
	for {
		select {
		case o, ok := <-e.outs:
			if !ok {
				flush()
				return
			}
			batch = append(batch, o)
			if len(batch) >= e.o.BatchSize {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

func (e *engine) record(batch []ledger.Outcome) error {
	tries := 3
	if e.recordFailed {
		tries = 1 // the ledger already failed us: do not linger
	}
	var err error
	for try := range tries {
		ctx, cancel := context.WithTimeout(e.bg, 30*time.Second)
		err = e.l.Record(ctx, e.issueID, batch)
		cancel()
		if err == nil {
			return nil
		}
		e.log.Warn("record outcomes", "try", try+1, "err", err)
		if try+1 < tries {
			time.Sleep(time.Duration(try+1) * 100 * time.Millisecond)
		}
	}
	e.recordFailed = true
	return err
}

// releaseHeld puts back every claimed row that has no outcome.
func (e *engine) releaseHeld() {
	e.mu.Lock()
	var ids []int64
	for id, st := range e.state {
		if st == stHeld {
			ids = append(ids, id)
		}
	}
	e.mu.Unlock()
	_ = e.release(ids)
}

// release puts claimed rows back to pending. On failure they stay
// "sending" (the next run puts them back) and the run stops.
func (e *engine) release(ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	// Mark first: once released, the claimer may claim a row again and
	// mark it held.
	e.mu.Lock()
	for _, id := range ids {
		e.state[id] = stPending
	}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(e.bg, 30*time.Second)
	defer cancel()
	if err := e.l.Release(ctx, e.issueID, ids); err != nil {
		e.log.Error("release claimed recipients", "count", len(ids), "err", err)
		e.cancel(fmt.Errorf("deliver %s: release %d recipients: %w", e.issueID, len(ids), err))
		return err
	}
	return nil
}

func (e *engine) summary() Summary {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Summary{Sent: e.sent, Failed: e.failed, Attempts: int(e.attempts.Load()), Duration: time.Since(e.start)}
	for _, st := range e.state {
		if st == stPending || st == stHeld {
			s.Pending++
		}
	}
	return s
}

func (e *engine) progress() Progress {
	e.mu.Lock()
	p := Progress{Sent: e.sent, Failed: e.failed, Total: e.o.Total}
	claimed := e.claimed
	e.mu.Unlock()
	if p.Total < claimed {
		p.Total = claimed
	}
	p.Pending = p.Total - p.Sent - p.Failed
	if secs := time.Since(e.start).Seconds(); secs > 0 {
		p.Rate = float64(p.Sent) / secs
	}
	return p
}

func (e *engine) progressLoop(done <-chan struct{}) {
	tick := time.NewTicker(e.o.ProgressEvery)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			e.o.Progress(e.progress())
		}
	}
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
