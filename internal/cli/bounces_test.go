package cli_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func dsnFor(verp, rcpt, status, diag string) string {
	return fmt.Sprintf(`Return-Path: <>
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: %[1]s
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; %[2]s
Action: failed
Status: %[3]s
Diagnostic-Code: smtp; %[4]s

--B--
`, verp, rcpt, status, diag)
}

func arfFor(verp, rcpt string) string {
	return fmt.Sprintf(`From: <feedback@fbl.example.net>
To: abuse@example.org
Subject: FW: complaint
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="A"

--A
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Rcpt-To: <%[2]s>

--A
Content-Type: text/rfc822-headers

Return-Path: <%[1]s>
To: redacted

--A--
`, verp, rcpt)
}

func smtpSend(t *testing.T, addr, to, msg string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("", []string{to}, strings.NewReader(msg)); err != nil {
		t.Fatalf("SMTP to %s: %v", to, err)
	}
}

// TestBouncesEndToEnd sends an issue through the SMTP server that accepts
// everything, feeds back DSNs and a complaint through `bounces receive`
// and the inbound SMTP receiver of `serve`, with forged and unsigned ones
// among them, and checks that the next issue skips exactly the bounced and
// complained readers.
func TestBouncesEndToEnd(t *testing.T) {
	local := filepath.Join(t.TempDir(), "local")
	if err := os.MkdirAll(local, 0o755); err != nil {
		t.Fatal(err)
	}
	inbound := freeAddr(t)
	w := newWorld(t, 6, "  - {name: Local, type: markdown, path: "+local+", section: Local}\n"+
		"server: {listen: \"127.0.0.1:0\"}\nsecret: e2e-secret\n"+
		"bounces: {address: bounces@example.org, listen: \""+inbound+"\"}")
	w.startServe()
	if code, out, errOut := w.run("send", "--now", issueNow); code != 0 {
		t.Fatalf("send: exit %d\n%s\n%s", code, out, errOut)
	}
	verp := map[string]string{}
	for _, e := range w.emails {
		from := w.smtp.EnvelopeFrom(e)
		if len(from) != 1 || !strings.HasPrefix(from[0], "bounces+") || !strings.HasSuffix(from[0], "@example.org") {
			t.Fatalf("envelope sender for %s: %q", e, from)
		}
		verp[e] = from[0]
		m, _, _ := parts(t, w.smtp.Received(e)[0])
		if !strings.HasPrefix(m.Header.Get("Feedback-ID"), "2026-11-30:test-digest:example.org") || m.Header.Get("From") != `"Test Digest" <digest@example.org>` {
			t.Errorf("Feedback-ID %q, From %q", m.Header.Get("Feedback-ID"), m.Header.Get("From"))
		}
	}
	hard, complainer, soft, forged, unsigned := w.emails[0], w.emails[1], w.emails[2], w.emails[3], w.emails[4]

	receive := func(name, msg string, args ...string) string {
		path := filepath.Join(w.dir, name)
		write(t, path, msg)
		code, out, errOut := w.run(append([]string{"bounces", "receive", path}, args...)...)
		if code != 0 {
			t.Fatalf("bounces receive %s: exit %d\n%s\n%s", name, code, out, errOut)
		}
		return out
	}
	if out := receive("hard.eml", dsnFor("bounces@example.org", hard, "5.1.1", "550 5.1.1 User unknown"), "--to", verp[hard]); !strings.Contains(out, "hard 5.1.1") || !strings.Contains(out, ": bounced") {
		t.Errorf("hard bounce: %s", out)
	}
	// Replayed: nothing happens again.
	if out := receive("hard.eml", dsnFor("bounces@example.org", hard, "5.1.1", "550 5.1.1 User unknown"), "--to", verp[hard]); !strings.Contains(out, ": duplicate") {
		t.Errorf("replay: %s", out)
	}
	if out := receive("soft.eml", dsnFor(verp[soft], soft, "5.2.2", "552 5.2.2 Mailbox full")); !strings.Contains(out, ": scored") {
		t.Errorf("soft bounce: %s", out)
	}
	// A forged token and a report that names a reader by address only
	// change no one.
	bad := strings.Replace(verp[forged], "bounces+", "bounces+A", 1)
	if out := receive("forged.eml", dsnFor(bad, forged, "5.1.1", "550 5.1.1 User unknown")); !strings.Contains(out, "no known reader") {
		t.Errorf("forged: %s", out)
	}
	if out := receive("unsigned.eml", arfFor("bounces@example.org", unsigned)); !strings.Contains(out, "complaint") || !strings.Contains(out, "no known reader") {
		t.Errorf("unsigned: %s", out)
	}
	if out := receive("garbage.eml", "\x00\x01 nothing"); !strings.Contains(out, "unmatched") {
		t.Errorf("garbage: %s", out)
	}
	// The complaint comes in by SMTP, from the null sender.
	smtpSend(t, inbound, verp[complainer], arfFor("redacted@fbl.example.net", complainer))
	if err := smtpSendErr(inbound, "someone@example.net", "x"); err == nil {
		t.Error("the receiver relays")
	}

	_, list, _ := w.run("subscribers", "list", "--status", "complained")
	if !strings.Contains(list, complainer) || strings.Count(list, "@") != 1 {
		t.Errorf("complained:\n%s", list)
	}
	_, list, _ = w.run("subscribers", "list", "--status", "bounced")
	if !strings.Contains(list, hard) || strings.Count(list, "@") != 1 {
		t.Errorf("bounced:\n%s", list)
	}
	_, out, _ := w.run("bounces", "list")
	for _, want := range []string{"receive", "smtp", "hard", "complaint", "unmatched", "complained", "5.2.2"} {
		if !strings.Contains(out, want) {
			t.Errorf("bounces list lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = w.run("status", "2026-11-30")
	if !strings.Contains(out, "bounced 2 (hard 1 (16.7%), soft 1), complained 1 (16.7%)") {
		t.Errorf("status:\n%s", out)
	}

	// The next issue reaches everyone else, and neither of them.
	write(t, filepath.Join(local, "later.md"), "---\ntitle: \"Later story\"\ndate: 2026-12-05T08:00:00Z\n---\nBody.\n")
	if code, out, errOut := w.run("send", "--now", "2026-12-07T08:00:00Z"); code != 0 {
		t.Fatalf("next send: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, e := range w.emails {
		want := 2
		if e == hard || e == complainer {
			want = 1
		}
		if n := w.smtp.Count(e); n != want {
			t.Errorf("%s got %d messages, want %d", e, n, want)
		}
	}
}

func smtpSendErr(addr, to, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.SendMail("", []string{to}, strings.NewReader(msg))
}

func TestBouncesReceiveStoreUnavailable(t *testing.T) {
	w := newWorld(t, 1, "database: /proc/digest-no-such-dir/digest.db")
	path := filepath.Join(w.dir, "m.eml")
	write(t, path, dsnFor("bounces@example.org", "a@example.org", "5.1.1", "550 user unknown"))
	code, _, errOut := w.run("bounces", "receive", path)
	if code != 75 {
		t.Fatalf("exit %d, want 75 (EX_TEMPFAIL)\n%s", code, errOut)
	}
}
