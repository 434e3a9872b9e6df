package deliver

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/digest/digest/internal/ledger"
)

// ErrRelayDown is wrapped by Issue's error when the run stopped because the
// relay stayed unavailable for Options.OutageWait: every recipient it had
// not sent is still pending, with no attempt counted.
var ErrRelayDown = errors.New("relay unavailable")

// Deferral reasons, as RelayObserver.Deferred and /metrics name them.
const (
	// DeferRelay: a message put off because the relay as a whole failed
	// (refused sessions, 421, the same 4xx to many recipients in a row);
	// no attempt is counted.
	DeferRelay = "relay"
	// DeferRecipient: the recipient's own temporary failure (greylisting,
	// a full mailbox): retried later, with the attempt counted.
	DeferRecipient = "recipient"
	// DeferQuota: a message held back by per_hour or per_day.
	DeferQuota = "quota"
)

// RelayStatus is what is known of the relay: up (the zero value), or down
// since a time with the last reply.
type RelayStatus struct {
	Down  bool
	Since time.Time // when it went down (zero while up)
	Reply string    // the last failure: a reply, or why no session opened
	// Retry is when the next attempt to reach it is due (zero while up).
	Retry time.Time
	// Quota is set while sending waits for a per_hour or per_day cap
	// rather than for the relay: the relay answers, the caps forbid.
	Quota bool
}

// RelayObserver is told what the relay does: metrics implement it.
type RelayObserver interface {
	// RelayUp is called when the relay goes down (up false) or answers
	// again (up true). A pause for a sending cap is reported the same way,
	// with RelayStatus.Quota set while it lasts. It is also called with
	// true at the first message each run gets accepted, so that what an
	// earlier process recorded (a run that stopped during an outage) is
	// corrected.
	RelayUp(up bool)
	// Deferred counts one message put off, by reason (DeferRelay,
	// DeferRecipient, DeferQuota).
	Deferred(reason string)
}

// RelayState is the state of the relay as a process's delivery runs see
// it, shared by the runs of a daemon so that its health check can report
// it. The zero value is not usable: use NewRelayState. Safe for concurrent
// use.
type RelayState struct {
	obs RelayObserver

	mu sync.Mutex
	st RelayStatus
}

// NewRelayState returns a relay believed up; obs (may be nil) is told of
// every change and deferral.
func NewRelayState(obs RelayObserver) *RelayState {
	return &RelayState{obs: obs}
}

// Status is the current state.
func (r *RelayState) Status() RelayStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// down records a failure at now; it reports whether the relay was up
// until then (an outage starts) and since when it is down, both read
// under one lock: a worker that sees the relay answer in between cannot
// make the outage look as old as the zero time.
func (r *RelayState) down(now time.Time, reply string, retry time.Time, quota bool) (started bool, since time.Time) {
	r.mu.Lock()
	was := !r.st.Down
	if was {
		r.st.Since = now
	}
	r.st.Down, r.st.Reply, r.st.Retry, r.st.Quota = true, reply, retry, quota
	since = r.st.Since
	r.mu.Unlock()
	if was && r.obs != nil {
		r.obs.RelayUp(false)
	}
	return was, since
}

// up records that the relay answered; it returns the status until then.
func (r *RelayState) up() RelayStatus {
	r.mu.Lock()
	was := r.st
	r.st = RelayStatus{}
	r.mu.Unlock()
	if was.Down && r.obs != nil {
		r.obs.RelayUp(true)
	}
	return was
}

// accepted tells the observer, at a run's first accepted message, that
// the relay is up (unless it is recorded down, which answered reports).
func (r *RelayState) accepted() {
	r.mu.Lock()
	down := r.st.Down
	r.mu.Unlock()
	if !down && r.obs != nil {
		r.obs.RelayUp(true)
	}
}

func (r *RelayState) deferred(reason string) {
	if r.obs != nil {
		r.obs.Deferred(reason)
	}
}

// sameReplyStreak is how many recipients in a row must get the same 4xx
// reply (word for word) for the relay, not the recipients, to be at fault.
const sameReplyStreak = 5

// gate pauses every worker of a run while the relay is down: one worker at
// a time (the prober) tries again after a shared, growing backoff; the
// others wait for the relay to answer. It also watches temporary replies
// for a streak of the same text (see sameReplyStreak), holding back the
// recipients of a streak until it is decided: a different outcome makes
// them ordinary temporary failures, a full streak hands them back
// uncounted.
type gate struct {
	e *engine

	mu          sync.Mutex
	down        bool
	probing     bool          // a worker (the prober) tries the relay
	probeID     int           // the prober's token, so that only it ends its probe
	fails       int           // failed tries since the outage began
	quotaLogged bool          // a cap's pause was logged in this run
	next        time.Time     // when the next probe is due
	upCh        chan struct{} // closed when the relay answers again
	downKey     string        // the streak's text that made the relay down, if a streak did
	streak      string        // the text of the current run of identical 4xx replies
	held        []heldTry     // recipients of that run, not yet recorded
	redo        []ledger.Recipient
}

// heldTry is a recipient whose temporary failure waits for the streak to
// be decided.
type heldTry struct {
	t try
	v verdict
}

func newGate(e *engine) *gate { return &gate{e: e, upCh: make(chan struct{})} }

// wait returns once the worker may send: at once while the relay is up;
// else after the shared backoff as the prober (probe is then its token,
// for fail and endProbe), or when the prober found it up. ok is false when
// the run stops (the outage outlasted OutageWait, or ctx ended).
func (g *gate) wait() (probe int, ok bool) {
	e := g.e
	for {
		g.mu.Lock()
		if !g.down {
			g.mu.Unlock()
			return 0, true
		}
		if !g.probing {
			g.probing = true
			g.probeID++
			probe = g.probeID
			now := e.o.Clock()
			d := g.next.Sub(now)
			if s := e.relay.Status(); e.o.OutageWait > 0 && s.Down {
				// Wake at the deadline too, for a last try.
				d = min(d, s.Since.Add(e.o.OutageWait).Sub(now))
			}
			g.mu.Unlock()
			return probe, d <= 0 || e.o.Sleep(e.ctx, d)
		}
		ch := g.upCh
		g.mu.Unlock()
		select {
		case <-ch:
		case <-e.ctx.Done():
			return 0, false
		}
	}
}

// up reports whether the relay is believed up: a worker may send without
// waiting at the gate.
func (g *gate) up() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.down
}

// endProbe ends the probe of the worker holding token probe, if it is
// still going, when its try neither failed for the relay nor got an answer
// (a timeout of its own, a stale connection, a stop): the next worker to
// wait probes, at the time already set.
func (g *gate) endProbe(probe int) {
	if probe == 0 {
		return
	}
	g.mu.Lock()
	if g.probing && g.probeID == probe {
		g.probing = false
		if g.down {
			// Wake the waiters: one of them probes next (the prober
			// itself may have no recipient left to try).
			close(g.upCh)
			g.upCh = make(chan struct{})
		}
	}
	g.mu.Unlock()
}

// fail records a relay-wide failure (reply says what) seen by a worker:
// the first of an outage, or the prober's (probe), schedules the next
// probe, and the prober's stops the run once the outage has lasted
// OutageWait. Failures of messages that were in flight when the outage
// began change nothing.
func (g *gate) fail(probe int, reply, key string, quota bool, resume time.Time) {
	e := g.e
	now := e.o.Clock()
	g.mu.Lock()
	first := !g.down
	if first {
		g.down = true
		g.fails = 0
		g.upCh = make(chan struct{})
	} else if probe == 0 || !g.probing || probe != g.probeID {
		g.mu.Unlock()
		return
	}
	g.downKey = key
	// Recipients held back by a streak of identical replies were most
	// likely failed by the relay too: hand them back uncounted.
	for _, h := range g.held {
		g.redo = append(g.redo, h.t.rc)
	}
	g.held, g.streak = nil, ""
	g.fails++
	g.probing = false
	wait := max(e.o.Backoff(g.fails), time.Millisecond)
	if quota {
		wait = max(resume.Sub(now), time.Millisecond)
	}
	g.next = now.Add(wait)
	next := g.next
	// A cap pauses the run each time it is reached again: say it once.
	logQuota := quota && !g.quotaLogged
	g.quotaLogged = g.quotaLogged || quota
	g.mu.Unlock()
	started, since := e.relay.down(now, reply, next, quota)
	if started && !quota {
		e.log.Warn("relay unavailable: pausing delivery until it answers again", "reply", reply, "retry_in", wait.Round(time.Second))
	} else if started && logQuota {
		e.log.Warn("sending cap reached: pausing delivery until "+next.Local().Format(time.DateTime), "reply", reply)
	}
	if e.o.OutageWait > 0 && now.Sub(since) >= e.o.OutageWait {
		err := fmt.Errorf("%w since %s: %s", ErrRelayDown, since.Local().Format("15:04"), reply)
		if e.o.OutageWait >= time.Second {
			err = fmt.Errorf("%w since %s (waited %s): %s", ErrRelayDown, since.Local().Format("15:04"), e.o.OutageWait, reply)
		}
		if quota {
			err = fmt.Errorf("%w: %s; sending resumes at %s", ErrQuota,
				strings.TrimPrefix(reply, ErrQuota.Error()+": "), resume.Local().Format(time.DateTime))
		}
		e.setRelayError(err)
		e.cancel(err)
	}
}

// answered records that the relay answered a message in a way that is not
// relay-wide: an outage, if any, ends.
func (g *gate) answered() {
	g.mu.Lock()
	wasDown := g.down
	g.down, g.probing, g.fails, g.downKey = false, false, 0, ""
	if wasDown {
		close(g.upCh)
	}
	g.mu.Unlock()
	if was := g.e.relay.up(); was.Down && wasDown && !was.Quota {
		g.e.log.Info("relay answers again: delivery resumes", "down_for", g.e.o.Clock().Sub(was.Since).Round(time.Second))
	}
}

// temporary takes a recipient's temporary failure. It returns true when
// the recipient is held back (or handed back) by the streak logic, so the
// caller records nothing now; false when the caller settles it as the
// recipient's own failure. relay reports that this reply completed a
// streak: the relay is down, and the caller retries the recipient
// uncounted.
func (g *gate) temporary(t *try, v verdict) (held, relay bool) {
	key := streakKey(v)
	g.mu.Lock()
	defer g.mu.Unlock()
	if key == "" {
		g.flushLocked()
		return false, false
	}
	if g.down && key == g.downKey {
		return false, true // the probe got the outage's reply again
	}
	if key != g.streak {
		g.flushLocked()
		g.streak = key
	}
	if len(g.held)+1 >= sameReplyStreak {
		for _, h := range g.held {
			g.redo = append(g.redo, h.t.rc)
		}
		g.held, g.streak = nil, ""
		return false, true
	}
	g.held = append(g.held, heldTry{t: *t, v: v})
	return true, false
}

// other records an outcome that breaks a streak of identical replies.
func (g *gate) other() {
	g.mu.Lock()
	g.flushLocked()
	g.streak = ""
	g.mu.Unlock()
}

// flushLocked settles the held recipients as their own temporary failures.
func (g *gate) flushLocked() {
	for _, h := range g.held {
		t := h.t
		g.e.later(&t, h.v)
	}
	g.held = nil
}

// flush settles whatever is held (the run ends).
func (g *gate) flush() {
	g.mu.Lock()
	g.flushLocked()
	g.mu.Unlock()
}

// again returns a recipient handed back by a streak, to send before new
// ones.
func (g *gate) again() (ledger.Recipient, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.redo) == 0 {
		return ledger.Recipient{}, false
	}
	rc := g.redo[0]
	g.redo = g.redo[1:]
	return rc, true
}

// streakKey is the text that identical relay replies share; empty for a
// reply about the mailbox itself (enhanced 4.1.x address, 4.2.x mailbox
// status), which never points at the relay, and for a failure without
// reply.
func streakKey(v verdict) string {
	if v.code == 0 || strings.HasPrefix(v.enhanced, "4.1.") || strings.HasPrefix(v.enhanced, "4.2.") {
		return ""
	}
	return v.reply
}

// openVerdict sorts a failure to open a session: a 5xx reply (wrong
// credentials, a relay that refuses this client) cannot get better by
// waiting; anything else (no answer, a 421 or other 4xx greeting, TLS)
// is the relay being unavailable.
func openVerdict(err error) outcomeKind {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return permanent
	}
	return relay
}
