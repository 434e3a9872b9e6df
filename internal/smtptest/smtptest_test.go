package smtptest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wneessen/go-mail/smtp"

	"github.com/digest/digest/internal/smtptest"
)

func send(t *testing.T, addr string, auth smtp.Auth, from string, to ...string) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.Hello("test.local"); err != nil {
		return err
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte("Subject: hi\r\n\r\nbody\r\n")); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func TestRecordsAndFaults(t *testing.T) {
	srv := smtptest.New(t, smtptest.WithFaults(func(rcpt string, call int) smtptest.Fault {
		if rcpt == "b@example.com" && call == 1 {
			return smtptest.Fault{Rcpt: smtptest.Reply(451, 4, 7, 1, "greylisted")}
		}
		return smtptest.Fault{}
	}))
	if err := send(t, srv.Addr, nil, "bounce@example.org", "a@example.com"); err != nil {
		t.Fatal(err)
	}
	err := send(t, srv.Addr, nil, "bounce@example.org", "b@example.com")
	if err == nil || !strings.Contains(err.Error(), "451") {
		t.Fatalf("first RCPT of b: %v, want 451", err)
	}
	if err := send(t, srv.Addr, nil, "bounce@example.org", "b@example.com"); err != nil {
		t.Fatal(err)
	}
	if got := srv.Received("a@example.com"); len(got) != 1 || !strings.Contains(string(got[0]), "body") {
		t.Errorf("a received %q", got)
	}
	if got := srv.EnvelopeFrom("b@example.com"); len(got) != 1 || got[0] != "bounce@example.org" {
		t.Errorf("envelope from %q", got)
	}
	if srv.Total() != 2 || srv.Calls("b@example.com") != 2 || srv.Sessions() != 3 || srv.Count("b@example.com") != 1 {
		t.Errorf("total %d, calls %d, sessions %d", srv.Total(), srv.Calls("b@example.com"), srv.Sessions())
	}
	if len(srv.All()) != 2 || srv.Bytes() == 0 {
		t.Errorf("All %d, bytes %d", len(srv.All()), srv.Bytes())
	}
}

func TestDiscard(t *testing.T) {
	srv := smtptest.New(t, smtptest.WithDiscard())
	if err := send(t, srv.Addr, nil, "x@example.org", "a@example.com", "b@example.com"); err != nil {
		t.Fatal(err)
	}
	if srv.Total() != 2 || srv.Received("a@example.com") != nil || srv.Counts()["b@example.com"] != 1 {
		t.Errorf("total %d, counts %v", srv.Total(), srv.Counts())
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		mech string
		auth func(user, pass string) smtp.Auth
	}{
		{"PLAIN", func(u, p string) smtp.Auth { return smtp.PlainAuth("", u, p, "127.0.0.1", true) }},
		{"LOGIN", func(u, p string) smtp.Auth { return smtp.LoginAuth(u, p, "127.0.0.1", true) }},
		{"CRAM-MD5", smtp.CRAMMD5Auth},
	}
	for _, tt := range tests {
		t.Run(tt.mech, func(t *testing.T) {
			srv := smtptest.New(t, smtptest.WithAuth("ann", "s3cret", tt.mech))
			if err := send(t, srv.Addr, tt.auth("ann", "s3cret"), "x@example.org", "a@example.com"); err != nil {
				t.Fatalf("right password: %v", err)
			}
			if err := send(t, srv.Addr, tt.auth("ann", "wrong"), "x@example.org", "a@example.com"); err == nil {
				t.Error("wrong password accepted")
			}
			if err := send(t, srv.Addr, nil, "x@example.org", "a@example.com"); err == nil {
				t.Error("MAIL without AUTH accepted")
			}
			if srv.Total() != 1 {
				t.Errorf("total %d, want 1", srv.Total())
			}
		})
	}
}

func TestMailError(t *testing.T) {
	srv := smtptest.New(t, smtptest.WithMailError(smtptest.Reply(550, 5, 7, 1, "relaying denied")))
	err := send(t, srv.Addr, nil, "x@example.org", "a@example.com")
	if err == nil || !strings.Contains(err.Error(), "550") {
		t.Errorf("MAIL: %v, want 550", err)
	}
}

// DataDelay keeps the message before the late reply: a client that gives up
// waiting has still delivered it.
func TestDataDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	srv := smtptest.New(t, smtptest.WithFaults(func(string, int) smtptest.Fault {
		return smtptest.Fault{DataDelay: delay}
	}))
	c, err := smtp.Dial(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.Hello("test.local"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("x@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("a@example.com"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("Subject: hi\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := w.Close(); err != nil { // sends "." and reads the late reply
		t.Fatalf("end of DATA: %v", err)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("reply after %v, want at least %v", took, delay)
	}
	if srv.Count("a@example.com") != 1 {
		t.Errorf("count %d, want 1", srv.Count("a@example.com"))
	}
}
