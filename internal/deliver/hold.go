package deliver

import (
	"errors"
	"fmt"
	"time"
)

// defaultHoldMax is Options.HoldMax when unset: far below a relay's DATA
// timeout (minutes, RFC 5321 §4.5.3.2), far above a healthy commit
// (milliseconds).
const defaultHoldMax = 5 * time.Second

// errHeldTooLong aborts a message whose final "." waited longer than
// Options.HoldMax for its predecessor's outcome to be recorded.
var errHeldTooLong = errors.New("previous outcome not recorded in time; end of DATA not sent")

// holdAck is waitAck bounded by d: while the worker holds a message's
// final "." back, the relay keeps the DATA phase open, and a commit that
// hangs must not keep it open for minutes. On timeout the answer stays
// due (a later waitAck takes it) and the error wraps ErrConnBroken and
// errHeldTooLong: the connection is given up without the final ".", so
// the relay cannot accept the message.
func (w *worker) holdAck(d time.Duration) error {
	if w.waiting && w.ackErr == nil {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case err := <-w.ack:
			w.waiting = false
			if err != nil {
				w.ackErr = err
			}
		case <-t.C:
			return fmt.Errorf("%w: %w (after %s)", ErrConnBroken, errHeldTooLong, d)
		}
	}
	return w.waitAck()
}

// afterHold follows a message given up by holdAck: its connection is
// dropped (it was closed before the final "."), and the worker waits,
// with no connection open, for the outcome it was holding for. It reports
// false when that outcome could not be recorded (the run is stopping);
// otherwise the message is sent again on a new connection, with no
// attempt counted: the relay never had it whole.
func (e *engine) afterHold(w *worker, err error) bool {
	e.log.Warn("ledger commit slow: connection dropped before the end of DATA", "err", err)
	e.drop(w)
	return w.waitAck() == nil
}
