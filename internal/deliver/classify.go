package deliver

import (
	"errors"
	"regexp"
	"strings"
)

// failure is a classified delivery error.
type failure struct {
	code      int    // SMTP reply code, 0 when there was none
	enhanced  string // enhanced status code such as "5.1.1"
	reply     string
	temp      bool // retry later
	bounced   bool // the address itself was refused for good
	reconnect bool // the connection cannot be trusted any more
	relay     bool // the relay refused the sender: stop the run
	// stale: the connection was found dead before anything of the message
	// was sent (MAIL FROM got no reply), typically an idle connection the
	// server closed. Not the recipient's fault: retry at once, uncounted.
	stale bool
	// unconfirmed: the whole message went out and its reply never came;
	// the relay may have accepted it. Not retried in the same run.
	unconfirmed bool
}

var enhancedRE = regexp.MustCompile(`\b[245]\.\d{1,3}\.\d{1,3}\b`)

// classify sorts a Send error:
//   - no reply code (timeout, dropped connection, I/O error): temporary, and
//     the connection is re-opened; unconfirmed when it was the reply to the
//     end of DATA that never came;
//   - 4xx: temporary (421 also re-opens the connection);
//   - 5xx to MAIL FROM: the relay refuses us, not the recipient: stop;
//   - 5xx to RCPT TO: failed, and bounced when the address is the problem
//     (enhanced 5.1.x, or 550/551/553 without an enhanced code);
//   - other 5xx (DATA, content, size): failed, not bounced.
func classify(err error) failure {
	f := failure{reply: replyText(err)}
	var re *ReplyError
	if errors.As(err, &re) {
		f.code = re.Code
		f.enhanced = re.Enhanced
	}
	var ce *connError
	switch {
	case f.code == 0:
		f.temp, f.reconnect = true, true
		f.stale = errors.As(err, &ce) && ce.stale
		f.unconfirmed = errors.Is(err, ErrUnconfirmed)
	case f.code < 500:
		f.temp = true
		f.reconnect = f.code == 421
	case re.Command == "MAIL FROM":
		f.relay = true
	case re.Command == "RCPT TO":
		if f.enhanced != "" {
			f.bounced = strings.HasPrefix(f.enhanced, "5.1.")
		} else {
			f.bounced = f.code == 550 || f.code == 551 || f.code == 553
		}
	}
	if errors.Is(err, ErrConnBroken) {
		f.reconnect = true
	}
	return f
}

// replyText is the error text kept in the ledger, on one line and bounded.
func replyText(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}
