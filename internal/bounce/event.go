package bounce

import "time"

// What the policy did about an event (Event.Action).
const (
	ActionDuplicate  = "duplicate"  // seen before: nothing done again
	ActionBounced    = "bounced"    // the reader is now bounced
	ActionComplained = "complained" // the reader is now complained
	ActionScored     = "scored"     // a soft bounce counted
	ActionReset      = "reset"      // a delivery reset the soft score
	ActionNone       = "none"       // no reader, or nothing to change
)

// Event is one returned message or ESP event, as it is kept.
type Event struct {
	ID int64
	// Fingerprint identifies the event across replays: the hash of the
	// message, or the provider's event id. Empty: the hash of Raw.
	Fingerprint string
	At          time.Time // when it arrived; zero: now
	// Source is the way it came in: receive, smtp, imap, or a provider.
	Source string
	Verdict
	// Reader is who the event is about; SubscriberID 0 when nobody.
	Reader Reader
	// Action is what the policy did (Action* constants).
	Action string
	// Raw is the message; it is kept only when no reader was found.
	Raw []byte
	// Authenticated marks an event from an authenticated source (an ESP
	// webhook whose signature was checked): its Recipient may name the
	// reader when no token does. An address in a mailed report never does.
	Authenticated bool
}
