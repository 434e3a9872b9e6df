package bounce

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/digest/digest/internal/imaptest"
)

func TestPoller(t *testing.T) {
	t.Parallel()
	srv := imaptest.Start(t)
	dsn, err := os.ReadFile("testdata/exim-failed.eml")
	if err != nil {
		t.Fatal(err)
	}
	big := []byte("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("y", 70)+"\r\n", 2000))
	parser := NewParser(Options{BounceAddress: "bounces@news.example.org", MaxSize: 64 << 10})
	newPoller := func(rec Recorder, moveTo string) *Poller {
		h := &Handler{Parser: parser, Resolver: resolver, Store: rec}
		p, err := NewPoller(h, MailboxOptions{URL: "imaps://" + srv.Addr + "/INBOX", Username: srv.User,
			Password: srv.Password, MoveTo: moveTo, TLS: srv.TLS})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx := context.Background()

	// The store is down: nothing is handled, everything stays.
	srv.Append(t, "INBOX", dsn, []byte("garbage"), big)
	if n, err := newPoller(&memRecorder{fail: true}, "").Poll(ctx); err == nil || n != 0 {
		t.Fatalf("store down: %d handled, %v", n, err)
	}
	if n := srv.Count(t, "INBOX"); n != 3 {
		t.Fatalf("%d messages left, want 3", n)
	}

	// Handled and moved.
	rec := &memRecorder{}
	if n, err := newPoller(rec, "Handled").Poll(ctx); err != nil || n != 3 {
		t.Fatalf("poll: %d handled, %v", n, err)
	}
	if len(rec.events) != 3 || rec.events[0].Kind != Hard || rec.events[0].Reader.SubscriberID != 42 || rec.events[0].Source != "imap" ||
		rec.events[1].Kind != Unmatched || rec.events[2].Kind != Unmatched || !strings.Contains(rec.events[2].Reason, "larger than") {
		t.Fatalf("events %+v", rec.events)
	}
	if in, moved := srv.Count(t, "INBOX"), srv.Count(t, "Handled"); in != 0 || moved != 3 {
		t.Fatalf("INBOX %d, Handled %d; want 0 and 3", in, moved)
	}

	// Handled and deleted.
	srv.Append(t, "INBOX", dsn)
	if n, err := newPoller(rec, "").Poll(ctx); err != nil || n != 1 {
		t.Fatalf("poll: %d handled, %v", n, err)
	}
	if n := srv.Count(t, "INBOX"); n != 0 {
		t.Fatalf("%d messages left after delete", n)
	}

	// A wrong password is an error, not a crash.
	p, _ := NewPoller(&Handler{Parser: parser, Resolver: resolver, Store: rec}, MailboxOptions{URL: "imaps://" + srv.Addr,
		Username: srv.User, Password: "wrong", TLS: srv.TLS})
	if _, err := p.Poll(ctx); err == nil || !strings.Contains(err.Error(), "login") {
		t.Errorf("wrong password: %v", err)
	}
}

func TestNewPollerURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"imap://mail.example.org/INBOX", "https://x", "imaps:///INBOX", ":"} {
		if _, err := NewPoller(&Handler{Parser: testParser}, MailboxOptions{URL: u}); err == nil {
			t.Errorf("NewPoller(%q) accepted", u)
		}
	}
}
