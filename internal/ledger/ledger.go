// Package ledger defines the per-recipient delivery record shared by the
// store (which keeps it) and the delivery engine (which drives it).
//
// A row moves pending → sending → sent | failed. A row is sent only after the
// SMTP server accepted the message; a row left in sending by a crash is put
// back to pending by the next run, so a crash can repeat at most the messages
// that were in flight and never skips one.
package ledger

import "time"

// Status of one (issue, subscriber) delivery.
const (
	Pending = "pending"
	Sending = "sending"
	Sent    = "sent"
	Failed  = "failed"
)

// Recipient is one claimed ledger row, with what is needed to address it.
type Recipient struct {
	IssueID      string
	SubscriberID int64
	Email        string
	Name         string
	Attempts     int // attempts made before this claim
}

// Outcome is the result of one delivery attempt.
type Outcome struct {
	SubscriberID int64
	Status       string // Sent, Failed, or Pending (temporary failure: retry later)
	Attempts     int    // total attempts including this one
	Code         int    // SMTP reply code, 0 when there was no reply
	Enhanced     string // enhanced status code such as "5.1.1", when given
	Reply        string // last reply or error text; empty when sent
	Bounced      bool   // a permanent rejection of the address: mark the subscriber bounced
	At           time.Time
}

// Counts of an issue's ledger rows by status.
type Counts struct {
	Pending, Sending, Sent, Failed int
}

// Total is the number of rows.
func (c Counts) Total() int { return c.Pending + c.Sending + c.Sent + c.Failed }

// Failure is one failed recipient with the reason, for reports.
type Failure struct {
	Email    string
	Attempts int
	Code     int
	Enhanced string
	Reply    string
}
