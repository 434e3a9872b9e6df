package web

import (
	"bytes"
	"context"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/clocktest"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/subscriber"
	"github.com/digest/digest/internal/token"
)

const base = "https://news.example.org"

var t0 = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

type env struct {
	t      *testing.T
	h      *Handler
	st     *fakeStore
	ml     *fakeMailer
	clk    *clocktest.Clock
	secret []byte
}

func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	e := &env{t: t, clk: clocktest.New(t0), ml: &fakeMailer{}, secret: []byte("0123456789abcdef")}
	e.st = newFakeStore(e.clk.Now)
	o := Options{
		Store: e.st, Mailer: e.ml, Secret: e.secret, ListName: "The Example Weekly", BaseURL: base,
		Topics:      []Topic{{"world", "World"}, {"science", "Science"}, {"around town", "Around town"}},
		DoubleOptIn: true, Now: e.clk.Now,
	}
	if mod != nil {
		mod(&o)
	}
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	e.h = h
	return e
}

// do sends one request; body is urlencoded when given.
func (e *env) do(method, path string, body url.Values, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, path, strings.NewReader(body.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func (e *env) unsubPath(sub subscriber.Subscriber) string {
	return "/u/" + token.Unsubscribe(e.secret, sub.ID, "2026-11-30", sub.Email)
}

func (e *env) prefsPath(sub subscriber.Subscriber) string {
	return "/p/" + token.Preferences(e.secret, sub.ID, sub.Email)
}

// path turns a link from a page or a message into a request path.
func path(t *testing.T, link string) string {
	t.Helper()
	if !strings.HasPrefix(link, base+"/") {
		t.Fatalf("link %q is not under %s", link, base)
	}
	return strings.TrimPrefix(link, base)
}

func wantStatus(t *testing.T, w *httptest.ResponseRecorder, code int, contains ...string) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("status %d, want %d\n%s", w.Code, code, w.Body)
	}
	for _, c := range contains {
		if !strings.Contains(w.Body.String(), c) {
			t.Errorf("body lacks %q:\n%s", c, w.Body)
		}
	}
}

var linkRE = regexp.MustCompile(`https://news\.example\.org/[A-Za-z0-9/_-]+`)

// links returns the links of a notice's text part.
func links(n mail.Notice) []string { return linkRE.FindAllString(n.Text, -1) }

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{"/subscribe", "/unsubscribe", "/u/forged"} {
		w := e.do("GET", p, nil)
		h := w.Header()
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "style-src 'sha256-", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", p, csp, want)
			}
		}
		for k, want := range map[string]string{"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
			"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8"} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", p, k, got, want)
			}
		}
		body := w.Body.String()
		for _, want := range []string{`<html lang="en">`, "<title>", `name="viewport"`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: page lacks %q", p, want)
			}
		}
		if strings.Contains(body, "<script") {
			t.Errorf("%s: page has a script", p)
		}
	}
}

func TestUnsubscribeGETChangesNothing(t *testing.T) {
	e := newEnv(t, nil)
	ann := e.st.add("ann@example.org", "Ann", subscriber.StatusActive)
	for _, m := range []string{"GET", "HEAD"} {
		w := e.do(m, e.unsubPath(ann), nil)
		wantStatus(t, w, http.StatusOK)
	}
	w := e.do("GET", e.unsubPath(ann), nil)
	wantStatus(t, w, http.StatusOK, "ann@example.org", "The Example Weekly", `method="post"`,
		`action="`+e.unsubPath(ann)+`"`, `name="List-Unsubscribe" value="One-Click"`, "/p/")
	if e.st.changes() != 0 {
		t.Fatal("a GET changed the store")
	}
}

func TestOneClickUnsubscribe(t *testing.T) {
	multipartBody := func() (string, *bytes.Buffer) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.WriteField("List-Unsubscribe", "One-Click")
		mw.Close()
		return mw.FormDataContentType(), &b
	}
	tests := []struct {
		name string
		req  func(path string) *http.Request
	}{
		{"urlencoded", func(p string) *http.Request {
			r := httptest.NewRequest("POST", p, strings.NewReader("List-Unsubscribe=One-Click"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}},
		{"multipart", func(p string) *http.Request {
			ct, b := multipartBody()
			r := httptest.NewRequest("POST", p, b)
			r.Header.Set("Content-Type", ct)
			return r
		}},
		{"no body", func(p string) *http.Request { return httptest.NewRequest("POST", p, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			ann := e.st.add("ann@example.org", "Ann", subscriber.StatusActive)
			bob := e.st.add("bob@example.org", "Bob", subscriber.StatusActive)
			for range 2 { // repeating it is harmless
				w := httptest.NewRecorder()
				e.h.ServeHTTP(w, tt.req(e.unsubPath(ann)))
				wantStatus(t, w, http.StatusOK, "You are unsubscribed", "ann@example.org")
				if loc := w.Header().Get("Location"); loc != "" || w.Header().Get("Set-Cookie") != "" {
					t.Errorf("one-click answer redirects or sets a cookie")
				}
			}
			if got, _ := e.st.Subscriber(context.Background(), ann.ID); got.Status != subscriber.StatusUnsubscribed {
				t.Errorf("status %s after one-click", got.Status)
			}
			if got, _ := e.st.Subscriber(context.Background(), bob.ID); got.Status != subscriber.StatusActive {
				t.Errorf("another reader was unsubscribed too")
			}
		})
	}
}

func TestBadTokensChangeNothing(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits.BadTokens = 1000 })
	ann := e.st.add("ann@example.org", "Ann", subscriber.StatusActive)
	su, _ := e.st.PutSignup(context.Background(), "new@example.org", "", nil)
	before := e.st.changes()

	unsub := token.Unsubscribe(e.secret, ann.ID, "2026-11-30", ann.Email)
	prefs := token.Preferences(e.secret, ann.ID, ann.Email)
	confirm := token.Confirm(e.secret, su.ID, su.Email, t0.Add(time.Hour))
	flip := func(tok string) string {
		b := []byte(tok)
		if b[3] == 'A' {
			b[3] = 'B'
		} else {
			b[3] = 'A'
		}
		return string(b)
	}
	bad := map[string][]string{
		"/u/": {"", "x", unsub[:len(unsub)-3], flip(unsub), token.Unsubscribe([]byte("other"), ann.ID, "2026-11-30", ann.Email), token.Unsubscribe(e.secret, ann.ID, "2026-11-30", "someone@example.org"), prefs, confirm, unsub + "%0A"},
		"/p/": {"x", prefs[:len(prefs)-2], flip(prefs), unsub, confirm, token.Preferences(e.secret, ann.ID, "other@example.org")},
		"/confirm/": {"x", confirm[:len(confirm)-2], flip(confirm), unsub, prefs,
			token.Confirm(e.secret, su.ID, "other@example.org", t0.Add(time.Hour))},
	}
	form := url.Values{"List-Unsubscribe": {"One-Click"}, "action": {"unsubscribe"}, "form": {token.Form(e.secret, prefs, t0)}}
	for prefix, toks := range bad {
		for _, tok := range toks {
			for _, m := range []string{"GET", "POST"} {
				var body url.Values
				if m == "POST" {
					body = form
				}
				w := e.do(m, prefix+tok, body)
				if w.Code < 400 || w.Code > 499 {
					t.Errorf("%s %s%s: status %d, want 4xx", m, prefix, tok, w.Code)
				}
			}
		}
	}
	if e.st.changes() != before {
		t.Fatal("a bad token changed the store")
	}
	if n := len(e.ml.notices()); n != 0 {
		t.Errorf("%d notices sent", n)
	}
	// A genuine token of a deleted subscriber changes nothing either.
	w := e.do("POST", "/u/"+token.Unsubscribe(e.secret, 999, "x", "gone@example.org"), nil)
	wantStatus(t, w, http.StatusNotFound, "This link is not valid", "no longer on the list")
}

func TestRequestUnsubscribeLink(t *testing.T) {
	e := newEnv(t, nil)
	ann := e.st.add("Ann@example.org", "Ann", subscriber.StatusActive)
	e.st.add("gone@example.org", "", subscriber.StatusUnsubscribed)
	wantStatus(t, e.do("GET", "/unsubscribe", nil), http.StatusOK, `name="email"`, `action="/unsubscribe"`)

	known := e.do("POST", "/unsubscribe", url.Values{"email": {"ann@example.org"}})
	unknown := e.do("POST", "/unsubscribe", url.Values{"email": {"nobody@example.org"}})
	gone := e.do("POST", "/unsubscribe", url.Values{"email": {"gone@example.org"}})
	for _, w := range []*httptest.ResponseRecorder{known, unknown, gone} {
		wantStatus(t, w, http.StatusOK, "Check your inbox")
	}
	same := func(w *httptest.ResponseRecorder, addr string) string {
		return strings.ReplaceAll(w.Body.String(), addr, "ADDR")
	}
	if same(known, "ann@example.org") != same(unknown, "nobody@example.org") {
		t.Error("the answer tells a known address from an unknown one")
	}
	e.h.Wait()
	ns := e.ml.notices()
	if len(ns) != 1 || ns[0].To != "Ann@example.org" || ns[0].Kind != "link" {
		t.Fatalf("notices %+v, want one link to Ann", ns)
	}
	if e.st.changes() != 0 {
		t.Fatal("asking for a link changed the store")
	}
	// The mailed link unsubscribes, and its preferences link works.
	ls := links(ns[0])
	if len(ls) != 2 || !strings.Contains(ls[0], "/u/") || !strings.Contains(ls[1], "/p/") {
		t.Fatalf("links %q", ls)
	}
	wantStatus(t, e.do("GET", path(t, ls[1]), nil), http.StatusOK, "Ann@example.org")
	wantStatus(t, e.do("POST", path(t, ls[0]), url.Values{"List-Unsubscribe": {"One-Click"}}), http.StatusOK, "unsubscribed")
	if got, _ := e.st.Subscriber(context.Background(), ann.ID); got.Status != subscriber.StatusUnsubscribed {
		t.Errorf("status %s", got.Status)
	}

	w := e.do("POST", "/unsubscribe", url.Values{"email": {"frank@"}})
	wantStatus(t, w, http.StatusBadRequest, "nothing after the @", `value="frank@"`, `aria-invalid="true"`)
}

// signup posts the sign-up form.
func (e *env) signup(email, name string, topics ...string) *httptest.ResponseRecorder {
	return e.do("POST", "/subscribe", url.Values{"email": {email}, "name": {name}, "topic": topics})
}

func TestSignupDoubleOptIn(t *testing.T) {
	e := newEnv(t, nil)
	e.st.add("active@example.org", "A", subscriber.StatusActive)
	e.st.add("gone@example.org", "G", subscriber.StatusUnsubscribed)
	wantStatus(t, e.do("GET", "/subscribe", nil), http.StatusOK, `name="email"`, `value="world"`, "Around town", `name="website"`)

	answers := map[string]*httptest.ResponseRecorder{}
	for _, addr := range []string{"new@example.org", "active@example.org", "gone@example.org"} {
		answers[addr] = e.signup(addr, "Nia", "world", "science")
		wantStatus(t, answers[addr], http.StatusOK, "Check your inbox")
	}
	norm := func(addr string) string { return strings.ReplaceAll(answers[addr].Body.String(), addr, "ADDR") }
	if norm("new@example.org") != norm("active@example.org") || norm("new@example.org") != norm("gone@example.org") {
		t.Error("the answer differs between a new, an active and an unsubscribed address")
	}
	e.h.Wait()
	ns := e.ml.notices()
	if len(ns) != 2 {
		t.Fatalf("%d notices, want 2 (the active reader is not mailed)", len(ns))
	}
	var confirm string
	for _, n := range ns {
		if n.To == "active@example.org" || n.Kind != "confirm" || !strings.Contains(n.Subject, "The Example Weekly") {
			t.Errorf("notice %+v", n)
		}
		if n.To == "new@example.org" {
			confirm = path(t, links(n)[0])
		}
	}
	if _, err := e.st.Get(context.Background(), "new@example.org"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatal("a sign-up is a subscriber before confirming")
	}

	// GET shows a button and changes nothing; POST confirms, once.
	before := e.st.changes()
	wantStatus(t, e.do("GET", confirm, nil), http.StatusOK, "new@example.org", `method="post"`, `action="`+confirm+`"`)
	if e.st.changes() != before {
		t.Fatal("GET of the confirm link changed the store")
	}
	w := e.do("POST", confirm, url.Values{})
	wantStatus(t, w, http.StatusOK, "You are subscribed", "/p/")
	sub, err := e.st.Get(context.Background(), "new@example.org")
	if err != nil || sub.Status != subscriber.StatusActive || sub.Name != "Nia" || strings.Join(sub.Topics, ",") != "science,world" {
		t.Fatalf("after confirm: %+v, %v", sub, err)
	}
	wantStatus(t, e.do("POST", confirm, url.Values{}), http.StatusNotFound, "you are subscribed, and there is nothing more to do")

	// The unsubscribed reader's link, after 48 hours, has expired.
	var goneLink string
	for _, n := range ns {
		if n.To == "gone@example.org" {
			goneLink = path(t, links(n)[0])
		}
	}
	e.clk.Advance(ConfirmLifetime)
	wantStatus(t, e.do("POST", goneLink, url.Values{}), http.StatusGone, "expired", "/subscribe")
	if got, _ := e.st.Get(context.Background(), "gone@example.org"); got.Status != subscriber.StatusUnsubscribed {
		t.Errorf("an expired link re-subscribed: %s", got.Status)
	}
}

func TestSignupBadInput(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		form url.Values
		want string
	}{
		{url.Values{"email": {"kim@op..example"}}, "two dots in a row"},
		{url.Values{"email": {"Carol <carol@op.example>"}}, "the name field"},
		{url.Values{"email": {"ivan@localhost"}}, "has no dot"},
		{url.Values{"email": {"a@example.org"}, "topic": {"sport"}}, "choose among the topics"},
	}
	for _, tt := range tests {
		w := e.do("POST", "/subscribe", tt.form)
		wantStatus(t, w, http.StatusBadRequest, tt.want)
	}
	if e.st.changes() != 0 {
		t.Error("bad input changed the store")
	}
	big := url.Values{"email": {"a@example.org"}, "name": {strings.Repeat("x", maxBody)}}
	wantStatus(t, e.do("POST", "/subscribe", big), http.StatusRequestEntityTooLarge)

	e2 := newEnv(t, func(o *Options) { o.Rules.AllowDotlessDomain = true })
	wantStatus(t, e2.signup("ivan@localhost", ""), http.StatusOK, "Check your inbox")
}

func TestSignupHoneypotAndLimits(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do("POST", "/subscribe", url.Values{"email": {"bot@example.org"}, "website": {"http://spam.example"}})
	wantStatus(t, w, http.StatusOK, "Check your inbox")
	e.h.Wait()
	if e.st.changes() != 0 || len(e.ml.notices()) != 0 {
		t.Fatal("a filled-in honeypot was taken for a person")
	}

	// A burst of sign-ups for one address sends one mail.
	for range 3 {
		wantStatus(t, e.signup("nia@example.org", ""), http.StatusOK)
	}
	e.h.Wait()
	if n := len(e.ml.notices()); n != 1 {
		t.Fatalf("%d mails for three sign-ups of one address, want 1", n)
	}
	// Ten minutes later, one more.
	e.clk.Advance(10 * time.Minute)
	e.signup("nia@example.org", "")
	e.h.Wait()
	if n := len(e.ml.notices()); n != 2 {
		t.Fatalf("%d mails after ten minutes, want 2", n)
	}

	// One client: five in a burst, then 429 until a minute passes.
	e = newEnv(t, nil)
	for i := range 5 {
		wantStatus(t, e.signup("r"+string(rune('a'+i))+"@example.org", ""), http.StatusOK)
	}
	w = e.signup("rz@example.org", "")
	wantStatus(t, w, http.StatusTooManyRequests, "Too many requests")
	if w.Header().Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	e.clk.Advance(time.Minute)
	wantStatus(t, e.signup("rz@example.org", ""), http.StatusOK)
}

func TestClientIPHeader(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ClientIPHeader = "X-Forwarded-For"; o.Limits.PerClient = 1 })
	post := func(email, xff string) int {
		return e.do("POST", "/subscribe", url.Values{"email": {email}}, "X-Forwarded-For", xff).Code
	}
	if c := post("a@example.org", "198.51.100.1"); c != 200 {
		t.Fatalf("first client: %d", c)
	}
	if c := post("b@example.org", "198.51.100.2"); c != 200 {
		t.Errorf("second client behind the same proxy: %d, want 200", c)
	}
	// Only the last hop counts: a client cannot pick its own key.
	if c := post("c@example.org", "203.0.113.9, 198.51.100.1"); c != http.StatusTooManyRequests {
		t.Errorf("spoofed first hop: %d, want 429", c)
	}
	for _, tt := range []struct{ remote, xff, header, want string }{
		{"192.0.2.1:5000", "", "", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:5000", "", "", "2001:db8:1:2::/64"},
		{"192.0.2.1:5000", "garbage", "X-Forwarded-For", "192.0.2.1"},
		{"192.0.2.1:5000", "::ffff:198.51.100.7", "X-Real-IP", "198.51.100.7"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if tt.header != "" {
			r.Header.Set(tt.header, tt.xff)
		}
		if got := clientKey(r, tt.header); got != tt.want {
			t.Errorf("clientKey(%s, %s=%q) = %q, want %q", tt.remote, tt.header, tt.xff, got, tt.want)
		}
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	l := newLimiter(time.Minute, 1, 2)
	if !l.allow("a", t0) || !l.allow("b", t0) {
		t.Fatal("first requests refused")
	}
	if l.allow("c", t0) {
		t.Error("a third key was let in while both entries are busy")
	}
	if !l.allow("c", t0.Add(time.Minute)) || len(l.m) > 2 {
		t.Errorf("idle entries were not dropped: %d entries", len(l.m))
	}
}

func TestSignupWithoutDoubleOptIn(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.DoubleOptIn = false })
	gone := e.st.add("gone@example.org", "", subscriber.StatusUnsubscribed)
	wantStatus(t, e.signup("new@example.org", "", "world"), http.StatusOK, "will get the next issue")
	wantStatus(t, e.signup("gone@example.org", ""), http.StatusOK, "will get the next issue")
	e.h.Wait()
	if sub, err := e.st.Get(context.Background(), "new@example.org"); err != nil || sub.Status != subscriber.StatusActive {
		t.Errorf("new address: %+v, %v", sub, err)
	}
	if sub, _ := e.st.Subscriber(context.Background(), gone.ID); sub.Status != subscriber.StatusUnsubscribed {
		t.Errorf("someone re-subscribed an address that left, without its confirmation")
	}
	if ns := e.ml.notices(); len(ns) != 1 || ns[0].To != "gone@example.org" {
		t.Errorf("notices %+v, want one confirmation to gone@", ns)
	}
}

func TestPreferences(t *testing.T) {
	e := newEnv(t, nil)
	ann := e.st.add("ann@example.org", "Ann", subscriber.StatusActive, "world")
	p := e.prefsPath(ann)
	w := e.do("GET", p, nil)
	wantStatus(t, w, http.StatusOK, "ann@example.org", `value="Ann"`, `value="world" aria-describedby="topics-hint" checked`,
		`name="form"`, "Unsubscribe from everything")
	if e.st.changes() != 0 {
		t.Fatal("GET changed the store")
	}
	formTok := regexp.MustCompile(`name="form" value="([^"]+)"`).FindStringSubmatch(w.Body.String())[1]

	// Without the form token, or with another page's, nothing changes.
	bob := e.st.add("bob@example.org", "", subscriber.StatusActive)
	for _, ft := range []string{"", "junk", token.Form(e.secret, e.prefsPath(bob)[3:], t0)} {
		w := e.do("POST", p, url.Values{"action": {"unsubscribe"}, "form": {ft}})
		wantStatus(t, w, http.StatusForbidden, "expired")
	}
	if e.st.changes() != 0 {
		t.Fatal("a POST without a valid form token changed the store")
	}

	w = e.do("POST", p, url.Values{"action": {"save"}, "form": {formTok}, "name": {" Ann\r\nB. "}, "topic": {"science", "around town"}})
	wantStatus(t, w, http.StatusOK, "Saved.", `value="Ann B."`)
	got, _ := e.st.Subscriber(context.Background(), ann.ID)
	if got.Name != "Ann B." || strings.Join(got.Topics, ",") != "around town,science" {
		t.Errorf("after save: %+v", got)
	}
	w = e.do("POST", p, url.Values{"action": {"save"}, "form": {formTok}, "topic": {"sport"}})
	wantStatus(t, w, http.StatusBadRequest, "choose among the topics")

	w = e.do("POST", p, url.Values{"action": {"unsubscribe"}, "form": {formTok}})
	wantStatus(t, w, http.StatusOK, "You are unsubscribed", "Subscribe again")
	if got, _ := e.st.Subscriber(context.Background(), ann.ID); got.Status != subscriber.StatusUnsubscribed {
		t.Errorf("status %s", got.Status)
	}
	w = e.do("POST", p, url.Values{"action": {"resubscribe"}, "form": {formTok}})
	wantStatus(t, w, http.StatusOK, "Welcome back")
	if got, _ := e.st.Subscriber(context.Background(), ann.ID); got.Status != subscriber.StatusActive {
		t.Errorf("status %s", got.Status)
	}

	// The form token expires after a day.
	e.clk.Advance(25 * time.Hour)
	wantStatus(t, e.do("POST", p, url.Values{"action": {"unsubscribe"}, "form": {formTok}}), http.StatusForbidden)
}

func TestStoreFailureIs500AndChangesNothing(t *testing.T) {
	e := newEnv(t, nil)
	ann := e.st.add("ann@example.org", "Ann", subscriber.StatusActive)
	e.st.fail = errors.New("disk on fire")
	wantStatus(t, e.do("POST", e.unsubPath(ann), nil), http.StatusInternalServerError, "Nothing was changed")
	if strings.Contains(e.do("GET", e.unsubPath(ann), nil).Body.String(), "disk on fire") {
		t.Error("an internal error is shown to the reader")
	}
}

func TestHandleAddsRoutes(t *testing.T) {
	e := newEnv(t, nil)
	e.h.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	w := e.do("GET", "/healthz", nil)
	if w.Code != 200 || w.Body.String() != "ok" {
		t.Fatalf("/healthz: %d %q", w.Code, w.Body)
	}
	if w := e.do("DELETE", "/subscribe", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /subscribe: %d", w.Code)
	}
}

func TestBasePathPrefixesForms(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.BaseURL = "https://example.org/news/" })
	wantStatus(t, e.do("GET", "/subscribe", nil), http.StatusOK, `action="/news/subscribe"`)
}

func TestNewChecksOptions(t *testing.T) {
	good := Options{Store: newFakeStore(time.Now), Mailer: &fakeMailer{}, Secret: []byte("s"), BaseURL: base}
	for name, mod := range map[string]func(*Options){
		"no store":  func(o *Options) { o.Store = nil },
		"no mailer": func(o *Options) { o.Mailer = nil },
		"no secret": func(o *Options) { o.Secret = nil },
		"bad base":  func(o *Options) { o.BaseURL = "/relative" },
	} {
		o := good
		mod(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// FuzzTokenRoutes checks that no token, however mangled, gets a 5xx or
// changes anything.
func FuzzTokenRoutes(f *testing.F) {
	secret := []byte("0123456789abcdef")
	f.Add(token.Unsubscribe(secret, 1, "2026-11-30", "ann@example.org"))
	f.Add(token.Preferences(secret, 1, "ann@example.org"))
	f.Add(token.Confirm(secret, 2, "new@example.org", t0))
	f.Add("%00")
	f.Fuzz(func(t *testing.T, tok string) {
		st := newFakeStore(func() time.Time { return t0 })
		st.add("ann@example.org", "Ann", subscriber.StatusActive)
		st.PutSignup(context.Background(), "new@example.org", "", nil)
		before := st.changes()
		h, err := New(Options{Store: st, Mailer: &fakeMailer{}, Secret: []byte("other secret"), BaseURL: base, Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close(context.Background())
		for _, prefix := range []string{"/u/", "/p/", "/confirm/"} {
			for _, m := range []string{"GET", "POST"} {
				u := &url.URL{Path: prefix + tok}
				r := httptest.NewRequest(m, "/", nil)
				r.URL, r.RequestURI = u, u.RequestURI()
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code >= 500 {
					t.Fatalf("%s %s: %d", m, u, w.Code)
				}
			}
		}
		if st.changes() != before {
			t.Fatalf("token %q changed the store", tok)
		}
	})
}
