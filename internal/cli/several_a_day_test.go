package cli_test

import (
	"strings"
	"testing"
)

// With a schedule of two times a day, `send` names the issue by its own
// time to the minute, `--issue` takes that form, and the messages' header
// shows the time after the date.
func TestSendSeveralADay(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3, `schedule: "0 7,19 * * *"`)
	code, out, errOut := w.run("send", "--now", "2026-11-30T07:00:20Z")
	if code != 0 || !strings.Contains(out, "Issue 2026-11-30-0700 (#1) built") {
		t.Fatalf("send at 07:00: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := w.smtp.Total(); n != 3 {
		t.Fatalf("%d messages, want 3", n)
	}
	msg := strings.ReplaceAll(string(w.smtp.Received("reader00@example.org")[0]), "=\r\n", "")
	if !strings.Contains(msg, "Monday, 30 November 2026, 07:00") {
		t.Errorf("the message's header lacks the issue's date and time:\n%.2000s", msg)
	}

	// The same minute: the same issue, already delivered.
	if code, out, _ := w.run("send", "--now", "2026-11-30T07:00:50Z"); code != 0 || !strings.Contains(out, "already delivered") {
		t.Errorf("second send in the minute: exit %d\n%s", code, out)
	}
	// Later by hand: an issue of its own time, empty here (nothing new).
	if code, out, _ := w.run("send", "--now", "2026-11-30T14:23:00Z"); code != 0 || !strings.Contains(out, "Issue 2026-11-30-1423: no new articles") {
		t.Errorf("send at 14:23: exit %d\n%s", code, out)
	}
	if code, out, _ := w.run("send", "--issue", "2026-11-30-0700"); code != 0 || !strings.Contains(out, "already delivered") {
		t.Errorf("send --issue 2026-11-30-0700: exit %d\n%s", code, out)
	}
	if n := w.smtp.Total(); n != 3 {
		t.Errorf("%d messages after the reruns, want still 3", n)
	}
	if code, out, _ := w.run("status", "2026-11-30-0700"); code != 0 || !strings.Contains(out, "Issue 2026-11-30-0700 (#1)") {
		t.Errorf("status 2026-11-30-0700: exit %d\n%s", code, out)
	}
}
