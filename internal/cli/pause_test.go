package cli_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/digest/digest/internal/smtptest"
)

// TestPauseOnBounceRate: a list where one address in five does not exist
// is paused once 500 messages are done, says so and how to continue, and
// continues once the operator turned the check off.
func TestPauseOnBounceRate(t *testing.T) {
	w := newWorld(t, 1200, "")
	srv := smtptest.New(t, smtptest.WithDiscard(), smtptest.WithFaults(func(rcpt string, _ int) smtptest.Fault {
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rcpt, "reader"), "@example.org"))
		if n%5 == 0 {
			return smtptest.Fault{Rcpt: smtptest.Reply(550, 5, 1, 1, "no such user")}
		}
		return smtptest.Fault{}
	}))
	cfg, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(cfg), fmt.Sprintf("port: %d,", w.smtp.Port()), fmt.Sprintf("port: %d,", srv.Port()), 1)
	write(t, w.config, conf)

	code, out, errOut := w.run("send", "--now", issueNow)
	all := out + errOut
	t.Logf("paused after %d accepted: %s", srv.Total(), lastLine(all, "delivery paused"))
	if code != 1 || !strings.Contains(all, "delivery paused") || !strings.Contains(all, "delivery.pause_on_bounce_rate") ||
		!strings.Contains(all, "digest send --issue 2026-11-30") {
		t.Fatalf("send: exit %d, want 1 and the pause explained\n%s", code, all)
	}
	if n := srv.Total(); n >= 960 {
		t.Errorf("%d messages accepted before the pause; want it to stop soon after 500 done", n)
	}
	_, status, _ := w.run("status", "2026-11-30")
	if !strings.Contains(status, "pending") || strings.Contains(status, "pending 0,") {
		t.Errorf("nothing left pending:\n%s", status)
	}

	write(t, w.config, strings.Replace(conf, "delivery: {transport: smtp}", "delivery: {transport: smtp, pause_on_bounce_rate: 0}", 1))
	code, out, errOut = w.run("send", "--now", issueNow)
	if code != 0 || srv.Total() != 960 {
		t.Fatalf("continued send: exit %d, %d accepted (want 960)\n%s\n%s", code, srv.Total(), out, errOut)
	}
}

// lastLine is the last line of s that contains sub.
func lastLine(s, sub string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}
