// Package ledger defines the delivery records shared by the store (which
// keeps them), the delivery engine (which drives them) and the use cases
// (which report them): built issues, the per-recipient ledger rows, and the
// runs that deliver.
//
// A row moves pending → sending → sent | failed | skipped. A row is sent
// only after the SMTP server accepted the message. A row in sending belongs
// to the run that claimed it (its owner) under a lease that the owner
// renews while it works; only a row whose lease expired (its owner died or
// stalled) goes back to pending, so a crash can repeat at most the messages
// that were in flight, never skips one, and two live runs never send the
// same row.
package ledger

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned when the subscriber, issue or row asked for does
// not exist.
var ErrNotFound = errors.New("not found")

// ErrLeaseLost says a lease is no longer its holder's: it expired before it
// was renewed, or another process took it. A delivery run must stop
// sending (other runs may take over its rows); a daemon steps down. It is
// the one error for a lost lease, whatever keeps it (package lease, the
// store's runs and named leases).
var ErrLeaseLost = errors.New("the lease lapsed or was taken; another process may carry on")

// BusyError says other live runs are delivering, and the run that asked
// did not offer to help (send --worker).
type BusyError struct {
	Runs   []RunInfo // the live runs, oldest first, with their progress
	Counts Counts    // the ledger of the first run's issue
}

func (e *BusyError) Error() string {
	r := e.Runs[0]
	return fmt.Sprintf("issue %s is being delivered by pid %d on %s since %s (run %s)",
		r.IssueID, r.PID, r.Host, r.StartedAt.Format(time.RFC3339), r.ID)
}

// Status of one (issue, subscriber) delivery.
const (
	Pending = "pending"
	Sending = "sending"
	Sent    = "sent"
	Failed  = "failed"
	// Skipped: the reader was not sent this issue because nothing in it
	// matched their topics. Final, like sent and failed.
	Skipped = "skipped"
)

// Recipient is one claimed ledger row, with what is needed to address it.
type Recipient struct {
	IssueID      string
	SubscriberID int64
	Email        string
	Name         string
	// Topics the reader chose; empty means everything.
	Topics   []string
	Attempts int // attempts made before this claim
	// Gone is the subscriber's status when it is no longer active (it
	// unsubscribed or bounced after the issue was enqueued): the claim has
	// already settled the row as skipped, and nothing is to be sent.
	Gone string
	// Test marks a test copy (send --to, the preview's test send): it has no
	// ledger row, and transports keep it apart from delivered messages.
	Test bool
}

// Outcome is the result of one delivery attempt.
type Outcome struct {
	SubscriberID int64
	Status       string // Sent, Failed, Skipped, or Pending (temporary failure: retry later)
	Attempts     int    // total attempts including this one
	Code         int    // SMTP reply code, 0 when there was no reply
	Enhanced     string // enhanced status code such as "5.1.1", when given
	Reply        string // last reply or error text; empty when sent
	Bounced      bool   // a permanent rejection of the address: mark the subscriber bounced
	At           time.Time
	// RetryAfter, for a Pending outcome, is how long from now (the store's
	// real-time clock) the row waits before a claim may take it again; 0
	// means at once.
	RetryAfter time.Duration
}

// Counts of an issue's ledger rows by status.
type Counts struct {
	Pending, Sending, Sent, Failed, Skipped int
}

// Total is the number of rows.
func (c Counts) Total() int { return c.Pending + c.Sending + c.Sent + c.Failed + c.Skipped }

// Unfinished is the number of rows still to deliver: pending, or in flight.
func (c Counts) Unfinished() int { return c.Pending + c.Sending }

// Done reports whether every row is settled (sent, failed or skipped).
func (c Counts) Done() bool { return c.Unfinished() == 0 }

// Delivered reports whether the issue was enqueued and every row is
// settled: there is nothing left to send.
func (c Counts) Delivered() bool { return c.Total() > 0 && c.Done() }

// Failure is one failed recipient with the reason, for reports.
type Failure struct {
	Email    string
	Attempts int
	Code     int
	Enhanced string
	Reply    string
}

// Issue is the record of one built issue.
type Issue struct {
	ID          string
	Number      int // 1, 2, …: assigned by the store when 0
	BuiltAt     time.Time
	Articles    int
	CompletedAt time.Time // zero until delivery has finished
}

// IssueOutcome is what became of an issue's readers after it was sent.
type IssueOutcome struct {
	// Readers with each kind of event about this issue (distinct readers).
	Hard, Soft, Complaints int
	// Of the readers the issue was sent to, those no longer active now.
	Unsubscribed, Bounced, Complained int
}

// RunInfo is one process delivering an issue, as others see it: it names the
// owner of the rows it claims.
type RunInfo struct {
	ID   string // host:pid:start, the owner written on claimed rows
	Host string
	PID  int
	// Process is the ID (Process.ID) of the program the run belongs to,
	// whose death the store can tell; empty for a run of an older version.
	Process   string
	IssueID   string
	Worker    bool      // joined another run's delivery (send --worker)
	StartedAt time.Time // when it registered
	SeenAt    time.Time // its last renewal
	Expires   time.Time // its lease: after this, it is presumed dead
	Claimed   int       // rows it holds in sending now
	Sent      int       // rows of the issue it sent
}

// Live reports whether the run's lease is still valid at now.
func (r RunInfo) Live(now time.Time) bool { return now.Before(r.Expires) }

// Rate is the run's messages sent per second from its start until now (or
// its end, when it is no longer live). Sent is counted live from the
// ledger, so the time is now's, not the last renewal's.
func (r RunInfo) Rate(now time.Time) float64 {
	end := now
	if !r.Live(now) {
		end = r.SeenAt
	}
	secs := end.Sub(r.StartedAt).Seconds()
	if secs <= 0 {
		return 0
	}
	return float64(r.Sent) / secs
}

// IssueContent is what delivery renders a built issue's messages from,
// kept in the store beside its record so that any process with the
// database and the config can deliver, resume or publish it: the issue as
// selected (JSON: its stories, sections and introduction), the templates
// it was rendered with (a started issue keeps its rendering when the
// templates change), and each source's topics at build time (which stories
// a reader with topics gets).
type IssueContent struct {
	Issue     []byte
	Templates map[string]string
	Topics    map[string][]string
}
