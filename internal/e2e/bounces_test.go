package e2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/digest/digest/internal/smtptest"
)

// TestBouncesReceiveStdin pipes returned mail into the real binary, as an
// MTA's pipe transport does: a DSN bounces its reader; a 50 MB message is
// read in bounded memory, recorded as unmatched, changes no one, and the
// pipe is drained (exit 0, so the MTA does not retry it for days).
func TestBouncesReceiveStdin(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	srv := smtptest.New(t)
	config, emails := newSite(t, srv, 3, 1)
	data, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	write(t, config, string(data)+"bounces: {address: bounces@example.org}\n")
	if out, err := exec.Command(bin, "send", "--config", config, "--now", now).CombinedOutput(); err != nil {
		t.Fatalf("send: %v\n%s", err, out)
	}
	verp := srv.EnvelopeFrom(emails[1])
	if len(verp) != 1 || !strings.HasPrefix(verp[0], "bounces+") {
		t.Fatalf("envelope sender %q", verp)
	}
	receive := func(stdin io.Reader, args ...string) (string, *os.ProcessState) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"bounces", "receive", "--config", config}, args...)...)
		cmd.Stdin = stdin
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("bounces receive: %v\n%s", err, out.String())
		}
		return out.String(), cmd.ProcessState
	}
	dsn := "From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B\r\n" +
		"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n" +
		"Final-Recipient: rfc822; " + emails[1] + "\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B--\r\n"
	if out, _ := receive(strings.NewReader(dsn), "--to", verp[0]); !strings.Contains(out, ": bounced") {
		t.Errorf("DSN on stdin: %s", out)
	}
	start := time.Now()
	big := io.MultiReader(strings.NewReader(dsn), io.LimitReader(xs{}, 50<<20))
	out, st := receive(big, "--to", verp[0])
	rss := st.SysUsage().(*syscall.Rusage).Maxrss
	t.Logf("50 MB on stdin: %s, peak RSS %d MB", time.Since(start).Round(time.Millisecond), rss/1024)
	if !strings.Contains(out, "unmatched") || !strings.Contains(out, "larger than") {
		t.Errorf("50 MB on stdin: %s", out)
	}
	if rss > 200<<10 {
		t.Errorf("peak RSS %d MB for a 50 MB message", rss/1024)
	}
	list, err := exec.Command(bin, "subscribers", "list", "--config", config, "--status", "bounced").CombinedOutput()
	if err != nil || strings.Count(string(list), "@") != 1 || !strings.Contains(string(list), emails[1]) {
		t.Errorf("bounced: %v\n%s", err, list)
	}
}

// xs reads as an endless run of 'x'.
type xs struct{}

func (xs) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}
