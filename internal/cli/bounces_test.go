package cli_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/digest/digest/internal/imaptest"
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
	sgKey, sgPub := sendGridKeys(t)
	imapSrv := imaptest.Start(t)
	w := newWorld(t, 11, "  - {name: Local, type: markdown, path: "+local+", section: Local}\n"+
		"server: {listen: \"127.0.0.1:0\"}\nsecret: e2e-secret\n"+
		"bounces:\n  address: bounces@example.org\n  listen: \""+inbound+"\"\n"+
		"  webhooks:\n    postmark: {user: pm, password: pm-secret}\n    mailgun: {signing_key: mg-key}\n"+
		"    sendgrid: {public_key: \""+sgPub+"\"}\n"+
		"  mailbox: {url: \"imaps://"+imapSrv.Addr+"/INBOX\", username: "+imapSrv.User+", password: "+imapSrv.Password+
		", insecure_skip_verify: true, move_to: Handled}\n")
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
	imapHard, imapComplaint, smtpHard := w.emails[8], w.emails[9], w.emails[10]

	// A DSN and a complaint wait in the mailbox; serve polls it at start
	// and moves them once recorded.
	imapSrv.Append(t, "INBOX", []byte(dsnFor(verp[imapHard], imapHard, "5.1.1", "550 5.1.1 no such user")),
		[]byte(arfFor(verp[imapComplaint], imapComplaint)))
	web := w.startServe()
	for deadline := time.Now().Add(20 * time.Second); imapSrv.Count(t, "Handled") != 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the mailbox was not polled: INBOX %d, Handled %d", imapSrv.Count(t, "INBOX"), imapSrv.Count(t, "Handled"))
		}
	}

	var warnings strings.Builder
	receive := func(name, msg string, args ...string) string {
		path := filepath.Join(w.dir, name)
		write(t, path, msg)
		code, out, errOut := w.run(append([]string{"bounces", "receive", path}, args...)...)
		if code != 0 {
			t.Fatalf("bounces receive %s: exit %d\n%s\n%s", name, code, out, errOut)
		}
		warnings.WriteString(errOut)
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
	// A genuine complaint by pipe: its token is in the returned headers.
	if out := receive("arf.eml", arfFor(verp[forged], forged)); !strings.Contains(out, "complaint") || !strings.Contains(out, ": complained") {
		t.Errorf("complaint by pipe: %s", out)
	}
	// One hard bounce in 11 (9%) passes 5%, one complaint 0.1%.
	for _, want := range []string{"hard bounce rate over its limit", "complaint rate over its limit"} {
		if !strings.Contains(warnings.String(), want) {
			t.Errorf("no warning %q in\n%s", want, warnings.String())
		}
	}
	// The complaint comes in by SMTP, from the null sender.
	smtpSend(t, inbound, verp[complainer], arfFor("redacted@fbl.example.net", complainer))
	smtpSend(t, inbound, verp[smtpHard], dsnFor("bounces@example.org", smtpHard, "5.1.1", "550 5.1.1 unknown user"))
	if err := smtpSendErr(inbound, "someone@example.net", "x"); err == nil {
		t.Error("the receiver relays")
	}

	// Each ESP's webhook, with bad authentication first: 401, nothing.
	pmHard, mgComplaint, sgHard := w.emails[5], w.emails[6], w.emails[7]
	pm := `{"RecordType":"Bounce","ID":77,"Type":"HardBounce","Email":"` + pmHard + `","Details":"550 5.1.1 no such user"}`
	mgData := `{"event":"complained","id":"mg-9","recipient":"` + mgComplaint + `"}`
	sg := `[{"email":"` + sgHard + `","event":"bounce","sg_event_id":"sg-9","status":"5.1.1","reason":"550 5.1.1 user unknown"}]`
	hooks := []struct {
		name, path, body string
		set              func(*http.Request)
		code             int
	}{
		{"postmark bad auth", "postmark", pm, func(r *http.Request) { r.SetBasicAuth("pm", "guess") }, 401},
		{"mailgun bad signature", "mailgun", mailgunBody("other-key", mgData), nil, 401},
		{"sendgrid bad signature", "sendgrid", sg, sendGridSign(t, sgKey, "1", sg+" "), 401},
		{"postmark", "postmark", pm, func(r *http.Request) { r.SetBasicAuth("pm", "pm-secret") }, 200},
		{"mailgun", "mailgun", mailgunBody("mg-key", mgData), nil, 200},
		{"sendgrid", "sendgrid", sg, sendGridSign(t, sgKey, "1", sg), 200},
		{"postmark replayed", "postmark", pm, func(r *http.Request) { r.SetBasicAuth("pm", "pm-secret") }, 200},
	}
	for _, h := range hooks {
		if h.code == 200 {
			continue
		}
		if code := postHook(t, web, h.path, h.body, h.set); code != h.code {
			t.Errorf("%s: %d, want %d", h.name, code, h.code)
		}
	}
	for _, e := range []string{pmHard, mgComplaint, sgHard} {
		if st := statusOf(t, w, e); st != "active" {
			t.Fatalf("%s is %s after webhooks with bad authentication", e, st)
		}
	}
	for _, h := range hooks {
		if h.code != 200 {
			continue
		}
		if code := postHook(t, web, h.path, h.body, h.set); code != h.code {
			t.Errorf("%s: %d, want %d", h.name, code, h.code)
		}
	}

	_, list, _ := w.run("subscribers", "list", "--status", "complained")
	if !strings.Contains(list, complainer) || !strings.Contains(list, mgComplaint) || !strings.Contains(list, imapComplaint) ||
		!strings.Contains(list, forged) || strings.Count(list, "@") != 4 {
		t.Errorf("complained:\n%s", list)
	}
	_, list, _ = w.run("subscribers", "list", "--status", "bounced")
	for _, e := range []string{hard, pmHard, sgHard, imapHard, smtpHard} {
		if !strings.Contains(list, e) {
			t.Errorf("%s not bounced", e)
		}
	}
	if strings.Count(list, "@") != 5 {
		t.Errorf("bounced:\n%s", list)
	}
	_, out, _ := w.run("bounces", "list")
	for _, want := range []string{"receive", "smtp", "imap", "postmark", "mailgun", "sendgrid", "hard", "complaint", "unmatched", "complained", "5.2.2"} {
		if !strings.Contains(out, want) {
			t.Errorf("bounces list lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = w.run("status", "2026-11-30")
	if !strings.Contains(out, "bounced 6 (hard 5 (45.5%), soft 1), complained 4 (36.4%)") {
		t.Errorf("status:\n%s", out)
	}

	// The next issue reaches everyone else, and neither of them.
	write(t, filepath.Join(local, "later.md"), "---\ntitle: \"Later story\"\ndate: 2026-12-05T08:00:00Z\n---\nBody.\n")
	if code, out, errOut := w.run("send", "--now", "2026-12-07T08:00:00Z"); code != 0 {
		t.Fatalf("next send: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, e := range w.emails {
		want := 2
		switch e {
		case hard, complainer, forged, pmHard, mgComplaint, sgHard, imapHard, imapComplaint, smtpHard:
			want = 1
		}
		if n := w.smtp.Count(e); n != want {
			t.Errorf("%s got %d messages, want %d", e, n, want)
		}
	}
}

func statusOf(t *testing.T, w *world, email string) string {
	t.Helper()
	_, list, _ := w.run("subscribers", "list")
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Split(line, ","); len(f) > 2 && f[0] == email {
			return f[2]
		}
	}
	t.Fatalf("%s not listed:\n%s", email, list)
	return ""
}

func postHook(t *testing.T, addr, provider, body string, set func(*http.Request)) int {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://"+addr+"/hooks/"+provider, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if set != nil {
		set(r)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// mailgunBody signs data as Mailgun does, now (the server checks the
// timestamp against its clock).
func mailgunBody(key, data string) string {
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(stamp + "tok"))
	return `{"signature":{"timestamp":"` + stamp + `","token":"tok","signature":"` + hex.EncodeToString(mac.Sum(nil)) + `"},"event-data":` + data + `}`
}

func sendGridKeys(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return k, base64.StdEncoding.EncodeToString(der)
}

func sendGridSign(t *testing.T, k *ecdsa.PrivateKey, ts, body string) func(*http.Request) {
	t.Helper()
	sum := sha256.Sum256([]byte(ts + body))
	sig, err := ecdsa.SignASN1(rand.Reader, k, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return func(r *http.Request) {
		r.Header.Set("X-Twilio-Email-Event-Webhook-Signature", base64.StdEncoding.EncodeToString(sig))
		r.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
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
