package cli_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/smtptest"
)

// waitFor polls cond every few milliseconds for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A one-shot send started while the relay refuses sessions with 421 waits
// for it (outage_wait), says so on its progress line, and delivers everyone
// once the relay answers again.
func TestSendWaitsOutA421Outage(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 4, "")
	w.smtp.Refuse(smtptest.Reply(421, 4, 3, 2, "shutting down for maintenance"))
	type result struct {
		code        int
		out, errOut string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := w.run("send", "--now", issueNow)
		done <- result{code, out, errOut}
	}()
	waitFor(t, "a refused session", func() bool { return w.smtp.Refused() > 0 })
	// Meanwhile digest status, another process, says what the run waits for.
	waitFor(t, "status to name the outage", func() bool {
		return strings.Contains(w.status(t), "Waiting for the relay since")
	})
	back := time.Now()
	w.smtp.Refuse(nil)
	r := <-done
	t.Logf("send finished %s after the relay accepted sessions again", time.Since(back).Round(time.Millisecond))
	if r.code != 0 {
		t.Fatalf("send: exit %d\n%s\n%s", r.code, r.out, r.errOut)
	}
	if w.smtp.Total() != 4 {
		t.Errorf("server has %d messages, want 4", w.smtp.Total())
	}
	if !strings.Contains(r.errOut, "relay unavailable") || !strings.Contains(r.errOut, "421") {
		t.Errorf("stderr does not tell of the outage:\n%s", r.errOut)
	}
	if s := w.status(t); strings.Contains(s, "relay") {
		t.Errorf("status still names an outage after the relay came back:\n%s", s)
	}
}

// The relay answers 451 to every recipient (its queue is full), then
// recovers: a send pauses instead of spending attempts, and delivers all.
func TestSendWaitsOutA451ToEveryone(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	down.Store(true)
	var refusals atomic.Int32
	w := newWorldSMTP(t, 8, "", smtptest.WithFaults(func(string, int) smtptest.Fault {
		if down.Load() {
			refusals.Add(1)
			return smtptest.Fault{Rcpt: smtptest.Reply(451, 4, 3, 0, "queue file write error")}
		}
		return smtptest.Fault{}
	}))
	done := make(chan int, 1)
	var out, errOut string
	go func() {
		var code int
		code, out, errOut = w.run("send", "--now", issueNow)
		done <- code
	}()
	waitFor(t, "five refusals", func() bool { return refusals.Load() >= 5 })
	down.Store(false)
	if code := <-done; code != 0 {
		t.Fatalf("send: exit %d\n%s\n%s", code, out, errOut)
	}
	if w.smtp.Total() != 8 {
		t.Errorf("server has %d messages, want 8", w.smtp.Total())
	}
	// Recipients of the streak were handed back uncounted: nobody waits
	// for a retry of their own.
	if strings.Contains(out, "wait for a retry") {
		t.Errorf("readers were charged for the relay's outage:\n%s", out)
	}
	status := w.status(t)
	if !strings.Contains(status, "sent 8, failed 0") {
		t.Errorf("status:\n%s", status)
	}
}

func (w *world) status(t *testing.T) string {
	t.Helper()
	_, out, _ := w.run("status")
	return out
}

// A reader greylisted by their own server is not failed and does not stop
// the others: send says when the retry is due, exits 1 (the issue is not
// complete), and status counts the reader as waiting for a retry.
func TestSendLeavesAGreylistedReaderForLater(t *testing.T) {
	t.Parallel()
	w := newWorldSMTP(t, 4, "", smtptest.WithFaults(func(rcpt string, _ int) smtptest.Fault {
		if rcpt == "reader01@example.org" {
			return smtptest.Fault{Rcpt: smtptest.Reply(451, 4, 7, 1, "greylisted, come back in 5 minutes")}
		}
		return smtptest.Fault{}
	}))
	code, out, errOut := w.run("send", "--now", issueNow)
	if code != 1 {
		t.Fatalf("send: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	if w.smtp.Total() != 3 {
		t.Errorf("server has %d messages, want the 3 others", w.smtp.Total())
	}
	if !strings.Contains(out, "1 recipient waits for a retry after a temporary failure of their own; the first is due at") {
		t.Errorf("send does not say who waits for a retry:\n%s", out)
	}
	st := w.status(t)
	if !strings.Contains(st, "1 reader waits for a retry") || !strings.Contains(st, "in progress") || strings.Contains(st, "failed 1") {
		t.Errorf("status:\n%s", st)
	}
}
