// Package bounce reads what comes back after a message has left: delivery
// status notifications (RFC 3464), the plain-text notices of MTAs that send
// none (Exim, qmail, older Exchange, Yahoo), reports forwarded inside
// another message, feedback-loop complaints (RFC 5965 ARF) and auto-replies,
// into one Verdict; and it names the reader only through a token this
// program signed: the VERP envelope address first, else our Message-ID or
// List-Unsubscribe URL in the returned headers. An address printed in a
// report never names anyone: anybody can write one.
//
// Parse never fails: garbage, an oversized message or a loop is a Verdict of
// kind Unmatched with the reason, for the operator to count.
package bounce

// Kind is what a returned message means for the reader it names.
type Kind string

// The kinds of verdict.
const (
	// Hard: the address does not exist (5.1.x unknown user, no such
	// domain): the reader is bounced at once.
	Hard Kind = "hard"
	// Soft: a transient failure (4.x.x, a full mailbox even with class 5,
	// or a permanent failure of unknown cause): scored over days.
	Soft Kind = "soft"
	// Delayed: the relay is still trying (Action: delayed): counts for
	// nothing.
	Delayed Kind = "delayed"
	// Delivered: a positive DSN or an ESP's delivery event; resets the
	// reader's soft score.
	Delivered Kind = "delivered"
	// Complaint: the reader marked the message as spam (ARF abuse, an
	// ESP's spam event): the reader is never mailed again.
	Complaint Kind = "complaint"
	// SenderBlock: the receiver refused the sender (5.7.x, block lists,
	// spam policy): the sender's problem, it changes no reader.
	SenderBlock Kind = "sender-block"
	// AutoReply: an out-of-office or vacation reply: never a bounce.
	AutoReply Kind = "auto-reply"
	// Unmatched: none of the above, or not to be trusted (garbage, too
	// large, a loop): counted and kept for a while, never acted on.
	Unmatched Kind = "unmatched"
)

// Kinds lists every kind, for metrics and validation.
var Kinds = []Kind{Hard, Soft, Delayed, Delivered, Complaint, SenderBlock, AutoReply, Unmatched}

// Verdict is what one returned message (or ESP event) says.
type Verdict struct {
	Kind Kind
	// Status is the enhanced status code (RFC 3463) such as "5.1.1", or
	// empty when the report gives none.
	Status string
	// Diagnostic is the remote server's reply or the report's reason,
	// one line, at most maxDiagnostic bytes.
	Diagnostic string
	// Recipient is the address the report names. It is shown to the
	// operator, never used to find the reader.
	Recipient string
	// Format names the reader that understood the message: dsn, arf,
	// exim, qmail, exchange, yahoo, text, auto-reply, or an ESP's name.
	Format string
	// Reason says why the message is Unmatched, or why it was ignored.
	Reason string
	// Tokens are the signed tokens found in it, for Resolver.
	Tokens Tokens
}

// Tokens are the candidates that may name a reader, in the order they are
// tried: VERP tokens (from the envelope recipient or addresses in the
// message), Message-IDs, and the tokens of List-Unsubscribe URLs.
type Tokens struct {
	VERP        []string
	MessageIDs  []string
	Unsubscribe []string
}

// Empty reports whether no candidate was found.
func (t Tokens) Empty() bool {
	return len(t.VERP)+len(t.MessageIDs)+len(t.Unsubscribe) == 0
}

// maxDiagnostic bounds the stored diagnostic text.
const maxDiagnostic = 300
