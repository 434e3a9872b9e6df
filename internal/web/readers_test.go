package web

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/subscriber"
	"github.com/digest/digest/internal/token"
)

// composedMailer builds each notice with the real composer and keeps the
// message bytes, as they would go over the wire.
type composedMailer struct {
	c    *mail.Composer
	mu   sync.Mutex
	msgs [][]byte
}

func (m *composedMailer) Send(_ context.Context, n mail.Notice) error {
	msg, err := m.c.Notice(n)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, msg.Data)
	return nil
}

// TestConfirmationCarriesNothingTyped: the name typed into the sign-up form
// appears nowhere in the confirmation mail's bytes (headers, either part,
// encoded or decoded); it becomes the reader's name once confirmed.
func TestConfirmationCarriesNothingTyped(t *testing.T) {
	c, err := mail.NewComposer(mail.Options{ListName: "The Example Weekly", From: "news@example.org",
		BaseURL: base, Secret: []byte("0123456789abcdef"), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	m := &composedMailer{c: c}
	e := newEnv(t, func(o *Options) { o.Mailer = m })
	const typed = "Eve Bcc: victim@evil.example X-Injected: yes. Claim your prize at https://phish.example/now"
	wantStatus(t, e.signup("victim@example.org", typed, "world"), http.StatusOK, "Check your inbox")
	e.h.Wait()
	if len(m.msgs) != 1 {
		t.Fatalf("%d messages, want the confirmation", len(m.msgs))
	}
	raw := m.msgs[0]
	decoded, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{raw, decoded} {
		for _, word := range []string{"Eve", "evil", "Injected", "prize", "phish"} {
			if bytes.Contains(b, []byte(word)) {
				t.Errorf("the confirmation mail contains %q, typed by whoever signed up:\n%s", word, b)
			}
		}
	}
	if !bytes.Contains(decoded, []byte("Hello,")) || !bytes.Contains(raw, []byte("To: <victim@example.org>")) {
		t.Errorf("greeting or To header:\n%s", raw)
	}
	// Confirmed, the name is the reader's.
	link := linkRE.FindString(string(decoded[bytes.Index(decoded, []byte("/confirm/"))-len(base):]))
	wantStatus(t, e.do("POST", path(t, link), url.Values{}), http.StatusOK, "You are subscribed")
	if sub, err := e.st.Get(context.Background(), "victim@example.org"); err != nil || sub.Name != typed {
		t.Errorf("after confirmation: %+v, %v; want the sign-up's name", sub, err)
	}
}

// TestConfirmationBudget: past the list-wide budget, sign-ups for many
// addresses (each within its own limit) are recorded but not mailed, until
// time has refilled the budget.
func TestConfirmationBudget(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits.ConfirmPerHour = 3 })
	for i := range 5 {
		wantStatus(t, e.signup(string(rune('a'+i))+"@example.org", ""), http.StatusOK, "Check your inbox")
	}
	e.h.Wait()
	if n := len(e.ml.notices()); n != 3 {
		t.Fatalf("%d confirmation mails, want the budget of 3", n)
	}
	if n := len(e.st.signups); n != 5 {
		t.Errorf("%d sign-ups recorded, want all 5", n)
	}
	e.clk.Advance(20 * time.Minute) // a third of an hour: one more
	e.signup("f@example.org", "")
	e.signup("g@example.org", "")
	e.h.Wait()
	if n := len(e.ml.notices()); n != 4 {
		t.Errorf("%d confirmation mails after 20 minutes, want 4", n)
	}
}

// TestForgedTokensOneAnswer: a forged token answers the same, status and
// body, whether the id in it names a subscriber (or sign-up) or nobody.
func TestForgedTokensOneAnswer(t *testing.T) {
	e := newEnv(t, nil)
	ann := e.st.add("ann@example.org", "Ann", subscriber.StatusActive)
	su, _ := e.st.PutSignup(context.Background(), "new@example.org", "", nil)
	const missing = 999
	forged := []byte("not the secret")
	pairs := []struct{ name, existing, missing string }{
		{"unsubscribe", "/u/" + token.Unsubscribe(forged, ann.ID, "x", ann.Email), "/u/" + token.Unsubscribe(forged, missing, "x", ann.Email)},
		{"preferences", "/p/" + token.Preferences(forged, ann.ID, ann.Email), "/p/" + token.Preferences(forged, missing, ann.Email)},
		{"confirm", "/confirm/" + token.Confirm(forged, su.ID, su.Email, t0.Add(time.Hour)),
			"/confirm/" + token.Confirm(forged, missing, su.Email, t0.Add(time.Hour))},
	}
	for _, p := range pairs {
		for _, method := range []string{"GET", "POST"} {
			var body url.Values
			if method == "POST" {
				body = url.Values{"List-Unsubscribe": {"One-Click"}}
			}
			a, b := e.do(method, p.existing, body), e.do(method, p.missing, body)
			if a.Code != http.StatusNotFound || a.Code != b.Code || a.Body.String() != b.Body.String() {
				t.Errorf("%s %s: existing id %d, missing id %d; bodies equal: %v", method, p.name, a.Code, b.Code,
					a.Body.String() == b.Body.String())
			}
		}
	}
}

// TestFailedTokensAreRateLimited: after Limits.BadTokens failed links, the
// client gets 429 for every link, a genuine one too, until time refills
// its budget; another client is not affected.
func TestFailedTokensAreRateLimited(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits.BadTokens = 3; o.Limits.BadTokenEvery = time.Minute })
	ann := e.st.add("ann@example.org", "Ann", subscriber.StatusActive)
	for i := range 3 {
		wantStatus(t, e.do("GET", "/p/"+token.Preferences(e.secret, int64(100+i), "x@example.org"), nil), http.StatusNotFound)
	}
	w := e.do("GET", e.prefsPath(ann), nil)
	wantStatus(t, w, http.StatusTooManyRequests, "Too many")
	if w.Header().Get("Retry-After") != "60" {
		t.Errorf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	wantStatus(t, e.do("GET", e.unsubPath(ann), nil), http.StatusTooManyRequests)
	r := httptest.NewRequest("GET", e.prefsPath(ann), nil)
	r.RemoteAddr = "198.51.100.9:1234"
	other := httptest.NewRecorder()
	e.h.ServeHTTP(other, r)
	wantStatus(t, other, http.StatusOK, "ann@example.org")
	e.clk.Advance(time.Minute)
	wantStatus(t, e.do("GET", e.prefsPath(ann), nil), http.StatusOK, "ann@example.org")
}

// TestHomePage: / names the list and links to the sign-up form; other
// unknown paths stay 404.
func TestHomePage(t *testing.T) {
	e := newEnv(t, nil)
	wantStatus(t, e.do("GET", "/", nil), http.StatusOK, "The Example Weekly", `href="https://news.example.org/subscribe"`)
	if w := e.do("GET", "/nothing-here", nil); w.Code != http.StatusNotFound {
		t.Errorf("GET /nothing-here: %d", w.Code)
	}
}

// TestBackgroundFailureLogsNoAddress: a store failing during a sign-up is
// logged without the address, whatever its case.
func TestBackgroundFailureLogsNoAddress(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	e.st.fail = errors.New(`get subscriber "Zed@Example.org": disk on fire`)
	wantStatus(t, e.signup("zed@example.org", ""), http.StatusOK, "Check your inbox")
	e.h.Wait()
	if !strings.Contains(logs.String(), "disk on fire") || strings.Contains(strings.ToLower(logs.String()), "zed@example.org") {
		t.Errorf("log:\n%s", logs.String())
	}
}
