package mail

import (
	"errors"
	"strings"
	"testing"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/render"
	"github.com/digest/digest/internal/token"
)

func TestVERPEnvelopeSender(t *testing.T) {
	t.Parallel()
	secret := []byte("verp-secret")
	c, err := NewComposer(Options{ListName: "Weekly", From: "News <news@example.org>", BaseURL: "https://example.org",
		Secret: secret, BounceAddress: "bounces@news.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Prepare(render.NewRendered("S", "<p>x</p>", "x"))
	if err != nil {
		t.Fatal(err)
	}
	rc := ledger.Recipient{IssueID: "2026-05-04", SubscriberID: 1234567, Email: "Ann@Example.com"}
	m, err := p.Build(nil, rc)
	if err != nil {
		t.Fatal(err)
	}
	local, domain, _ := strings.Cut(m.From, "@")
	if domain != "news.example.org" || !strings.HasPrefix(local, "bounces+") || len(local) > 64 {
		t.Fatalf("envelope sender %q: want bounces+TOKEN@news.example.org with a local part of at most 64", m.From)
	}
	if !strings.Contains(string(m.Data), "\r\nFrom: \"News\" <news@example.org>\r\n") {
		t.Error("From header changed")
	}
	if !strings.Contains(string(m.Data), "\r\nFeedback-ID: 2026-05-04:weekly:example.org\r\n") {
		t.Errorf("no Feedback-ID header in\n%s", m.Data[:400])
	}
	tok := strings.TrimPrefix(local, "bounces+")
	lookup := func(id int64) (string, error) { return "ann@example.com", nil }
	id, issue, err := ParseVERPToken(secret, tok, lookup)
	if err != nil || id != rc.SubscriberID || issue != rc.IssueID {
		t.Fatalf("ParseVERPToken = %d, %q, %v", id, issue, err)
	}
	// A VERP token is not an unsubscribe token, nor the reverse.
	if _, _, err := token.ParseUnsubscribe(secret, tok, lookup); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("VERP token verified as an unsubscribe token: %v", err)
	}
	unsub := token.Unsubscribe(secret, rc.SubscriberID, rc.IssueID, rc.Email)
	if _, _, err := ParseVERPToken(secret, unsub, lookup); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("unsubscribe token verified as a VERP token: %v", err)
	}
	if _, _, err := ParseVERPToken([]byte("other"), tok, lookup); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("token verified under another secret: %v", err)
	}
	// A test copy has no reader to name: the bare bounce address.
	tm, err := p.BuildTest(nil, "ed@example.org")
	if err != nil || tm.From != "bounces@news.example.org" {
		t.Errorf("test copy envelope sender %q, %v", tm.From, err)
	}
}

func TestParseMessageID(t *testing.T) {
	t.Parallel()
	secret := []byte("s")
	c, err := NewComposer(Options{From: "news@example.org", BaseURL: "https://example.org", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	id := c.MessageID("2026-05-04", 42)
	for _, in := range []string{id, "<" + id + ">", " <" + id + "> "} {
		issue, sub, err := ParseMessageID(secret, in)
		if err != nil || issue != "2026-05-04" || sub != 42 {
			t.Errorf("ParseMessageID(%q) = %q, %d, %v", in, issue, sub, err)
		}
	}
	forged := strings.Replace(id, ".42.", ".43.", 1)
	for _, in := range []string{forged, "x@y", "", "a.b.c@d", "2026-05-04.42.zz@example.org", id[:len(id)-20]} {
		if _, _, err := ParseMessageID(secret, in); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("ParseMessageID(%q) = %v, want token.ErrInvalid", in, err)
		}
	}
	if _, _, err := ParseMessageID([]byte("other"), id); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("verified under another secret: %v", err)
	}
}

func TestBadBounceAddress(t *testing.T) {
	t.Parallel()
	for _, b := range []string{"Bounces <b@example.org>", "nobody", "@"} {
		_, err := NewComposer(Options{From: "news@example.org", BaseURL: "https://example.org", Secret: []byte("s"), BounceAddress: b})
		if err == nil || !strings.Contains(err.Error(), "bounce address") {
			t.Errorf("BounceAddress %q: %v", b, err)
		}
	}
}
