package pipeline

import (
	"errors"

	"github.com/digest/digest/internal/plural"
)

// Outcome is what a Deliver call came to, in one word or two: the same for
// `digest send`, the daemon's log and its health.
type Outcome string

// The outcomes of a Deliver call.
const (
	OutcomeDelivered   Outcome = "delivered"         // every recipient is settled
	OutcomePendingLeft Outcome = "pending left"      // the run did its part; recipients remain for a later one
	OutcomeBusy        Outcome = "busy"              // another live process delivers; nothing sent
	OutcomeNothingNew  Outcome = "nothing new"       // no article for a new issue
	OutcomeAlready     Outcome = "already delivered" // nothing left to send
	OutcomeNone        Outcome = "nothing to resume" // no issue chosen (a resume with nothing unfinished, or an error first)
	OutcomeTestCopy    Outcome = "test copy"
	OutcomeDryRun      Outcome = "dry run"
	OutcomeNotStarted  Outcome = "not started" // failed before a run was registered
)

// Outcome says what the call came to, whatever its error.
func (r Result) Outcome() Outcome {
	switch {
	case r.Busy != nil:
		return OutcomeBusy
	case r.Built == nil:
		return OutcomeNone
	case r.Built.Empty():
		return OutcomeNothingNew
	case r.TestTo != "":
		return OutcomeTestCopy
	case r.DryRun != nil:
		return OutcomeDryRun
	case r.Already:
		return OutcomeAlready
	case r.Run.ID == "":
		return OutcomeNotStarted
	case !r.Counts.Done():
		return OutcomePendingLeft
	}
	return OutcomeDelivered
}

// ErrEverySourceFailed says a build found nothing because every source
// failed (not because nothing was new).
var ErrEverySourceFailed = errors.New("every source failed")

// Err is why a call that Deliver returned no error for still counts as not
// done, for an exit status or a scheduled run's record: every source
// failed, another process delivers (a *ledger.BusyError), or recipients are
// left pending. It is nil when the call did all there was to do.
func (r Result) Err() error {
	switch r.Outcome() {
	case OutcomeBusy:
		return r.Busy
	case OutcomeNothingNew:
		if r.Built.AllSourcesFailed() {
			return ErrEverySourceFailed
		}
	case OutcomePendingLeft:
		return errors.New(plural.N(r.Counts.Unfinished(), "recipient is", "recipients are") + " still pending")
	}
	return nil
}

// AllSourcesFailed reports whether the build gathered sources and every one
// failed. A source that yielded some items and skipped others (partial) did
// not fail; an issue loaded from the store gathered nothing.
func (b *Built) AllSourcesFailed() bool {
	if b == nil || len(b.Sources) == 0 {
		return false
	}
	for _, s := range b.Sources {
		if !s.Failed() {
			return false
		}
	}
	return true
}
