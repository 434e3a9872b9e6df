package deliver

import (
	"errors"
	"regexp"
	"strings"

	"github.com/digest/digest/internal/ledger"
)

// outcomeKind is what one attempt to send a message came to, from the
// engine's point of view: what to do next.
type outcomeKind int

const (
	// sent: the relay accepted the message.
	sent outcomeKind = iota
	// stale: the connection was found dead before anything of the message
	// was sent (MAIL FROM got no reply), typically an idle connection the
	// server closed. Not the recipient's fault: retried at once, uncounted
	// (once per recipient; a second time it is temporary).
	stale
	// temporary: retry later (a 4xx reply, a timeout, a dropped
	// connection).
	temporary
	// permanent: a 5xx reply about the recipient or the message: failed
	// for good (bounced when the address itself was refused).
	permanent
	// relay: the relay refused the sender (5xx to MAIL FROM): every
	// recipient would fail the same way, so the run stops.
	relay
	// unconfirmed: the whole message went out and its reply never came;
	// the relay may have accepted it. Not retried in the same run.
	unconfirmed
	// local: this side failed (the ledger could not record the previous
	// outcome, or the run's lease lapsed): the message was not accepted,
	// the attempt does not count and the worker stops.
	local
)

// verdict is a classified result of one Send.
type verdict struct {
	kind      outcomeKind
	code      int    // SMTP reply code, 0 when there was none
	enhanced  string // enhanced status code such as "5.1.1"
	reply     string
	bounced   bool // permanent: the address itself was refused for good
	reconnect bool // the connection cannot be trusted any more
}

var enhancedRE = regexp.MustCompile(`\b[245]\.\d{1,3}\.\d{1,3}\b`)

// classify sorts the result of a Send, once:
//   - nil: sent;
//   - the ledger or the lease failed on this side: local;
//   - no reply code (timeout, dropped connection, I/O error): temporary, and
//     the connection is re-opened; stale when the connection was dead from
//     its first command; unconfirmed when it was the reply to the end of
//     DATA that never came;
//   - 4xx: temporary (421 also re-opens the connection);
//   - 5xx to MAIL FROM: the relay refuses us, not the recipient: relay;
//   - 5xx to RCPT TO: permanent, and bounced when the address is the
//     problem (enhanced 5.1.x, or 550/551/553 without an enhanced code);
//   - other 5xx (DATA, content, size): permanent, not bounced.
func classify(err error) verdict {
	if err == nil {
		return verdict{kind: sent}
	}
	if errors.Is(err, errNotRecorded) || errors.Is(err, ledger.ErrLeaseLost) {
		return verdict{kind: local, reply: replyText(err), reconnect: true}
	}
	v := verdict{kind: temporary, reply: replyText(err)}
	var re *ReplyError
	if errors.As(err, &re) {
		v.code = re.Code
		v.enhanced = re.Enhanced
	}
	var ce *connError
	switch {
	case v.code == 0:
		v.reconnect = true
		switch {
		case errors.Is(err, ErrUnconfirmed):
			v.kind = unconfirmed
		case errors.As(err, &ce) && ce.stale:
			v.kind = stale
		}
	case v.code < 500:
		v.reconnect = v.code == 421
	case re.Command == "MAIL FROM":
		v.kind = relay
	case re.Command == "RCPT TO":
		v.kind = permanent
		if v.enhanced != "" {
			v.bounced = strings.HasPrefix(v.enhanced, "5.1.")
		} else {
			v.bounced = v.code == 550 || v.code == 551 || v.code == 553
		}
	default:
		v.kind = permanent
	}
	if errors.Is(err, ErrConnBroken) {
		v.reconnect = true
	}
	return v
}

// replyText is the error text kept in the ledger, on one line and bounded.
func replyText(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}
