package deliver

import (
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
)

// job is a recipient taken by a worker, with its message built.
type job struct {
	rc ledger.Recipient
	m  mail.Message
}

// lookAhead takes and builds the worker's next recipient when one is at
// hand without waiting (handed back by a streak first, as take does), so
// that its transaction can start in the same write as the current
// message's end of DATA. It runs while the previous outcome commits. A
// recipient it takes is the worker's: delivered next, or released with
// the rest of the held rows when the run stops first (rule 5). Rows with
// nothing to send (skipped, or that cannot be built) are settled on the
// way, up to lookAheadTries of them, so that a list of mostly skipped
// readers does not keep the relay's DATA phase open.
func (e *engine) lookAhead(w *worker) {
	for range lookAheadTries {
		if w.ahead != nil || e.ctx.Err() != nil {
			return
		}
		rc, ok := e.gate.again()
		if !ok {
			select {
			case rc, ok = <-e.jobs:
			default:
			}
			if !ok {
				return
			}
		}
		w.ahead = e.build(rc, w)
	}
}

// lookAheadTries bounds the rows one lookAhead takes.
const lookAheadTries = 8

// offer returns the message of the worker's next recipient when it may go
// at once, for its transaction to start with the current end of DATA: the
// run goes on, the recipient has an attempt left, the relay is up, and
// neither a cap nor the rate limit would make it wait. It takes the
// message's slot under the caps and its token of the rate limit, as the
// wait before a message (await) would; settleOffer keeps or refunds the
// slot. nil: the next message waits its turn after this one's verdict.
func (e *engine) offer(w *worker) *mail.Message {
	j := w.ahead
	if j == nil || e.ctx.Err() != nil || j.rc.Attempts >= e.o.MaxAttempts || !e.gate.up() {
		return nil
	}
	var slot time.Time
	if e.quota != nil {
		var err error
		if slot, err = e.quota.take(e.ctx, e.o.Now(), e.peerCount()); err != nil {
			return nil // the wait before the message reports it
		}
	}
	if e.limiter != nil {
		e.shareRate()
		if !e.limiter.Allow() {
			e.refund(slot)
			return nil
		}
	}
	w.offered, w.openSlot = true, slot
	return &j.m
}

// settleOffer follows a Send: when the connection started the offered
// message's transaction (opened), that message is sent next on it without
// waiting again; otherwise its slot is refunded (its token of the rate
// limit is spent: the rate is only ever lower).
func (e *engine) settleOffer(w *worker, opened bool) {
	if !w.offered {
		return
	}
	w.offered = false
	if opened {
		w.opened = true
		return
	}
	e.refund(w.openSlot)
}

// begin readies the worker to send t's message: when its transaction is
// already open on the connection (started with the last end of DATA), at
// once, with the slot taken then; otherwise after the waits of await.
func (e *engine) begin(w *worker, t *try) (time.Time, next) {
	if w.opened {
		w.opened = false
		return w.openSlot, proceed
	}
	return e.await(w, t)
}
