package preview_test

import (
	"bufio"
	"context"
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/preview"
)

// built returns a server of the fixture after its first build.
func built(t *testing.T, f *fixture, opts preview.Options) (*preview.Server, http.Handler) {
	t.Helper()
	s := newServer(t, f, opts)
	if err := s.Rebuild(context.Background()); err != nil {
		t.Fatalf("first build: %v", err)
	}
	return s, s.Handler()
}

func TestPageShowsTheMessageAndTheReport(t *testing.T) {
	_, h := built(t, newFixture(t), preview.Options{})
	code, body := get(t, h, "/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d\n%s", code, body)
	}
	text := html.UnescapeString(body)
	for _, want := range append(wantStories,
		"The Test Weekly",                         // the subject
		"List-Unsubscribe: <http://links.test/u/", // the header as sent
		"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
		"Message-ID: <",
		"Zoë Ångström-Sample", // the sample reader
		"Notes",               // the source
		`width="375"`, `width="1200"`,
		"Every image has alt text.",
		"prefers-color-scheme: dark</code> styles: <a", // the default template has them
		"Left out (2)",
	) {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for title, reason := range wantLeft {
		row := title + ` <span class="muted">Notes</span></td><td><strong>` + string(reason) + `</strong>`
		if !strings.Contains(text, row) {
			t.Errorf("left-out table lacks %q with reason %q", title, reason)
		}
	}
	// The plain-text part comes from the message: the sample reader's name
	// is filled in, and the stories are there.
	start := strings.Index(text, `id="text-part">`)
	if start < 0 {
		t.Fatal("no plain-text part")
	}
	part := text[start:]
	part = part[:strings.Index(part, "</pre>")]
	for _, s := range wantStories {
		if !strings.Contains(part, s) {
			t.Errorf("plain-text part lacks %q", s)
		}
	}
}

func TestEmailIsTheDeliveredHTML(t *testing.T) {
	_, h := built(t, newFixture(t), preview.Options{})
	code, light := get(t, h, "/email")
	if code != http.StatusOK {
		t.Fatalf("GET /email = %d: %s", code, light)
	}
	for _, s := range wantStories {
		if !strings.Contains(html.UnescapeString(light), s) {
			t.Errorf("email lacks %q", s)
		}
	}
	if !strings.Contains(light, `<base target="_blank">`) {
		t.Error("links of the email would open inside the frame")
	}
	if !strings.Contains(light, "prefers-color-scheme: dark") {
		t.Fatal("the light email lost its dark-mode media query")
	}
	_, dark := get(t, h, "/email?scheme=dark")
	if strings.Contains(dark, "prefers-color-scheme: dark") || !strings.Contains(dark, "color-scheme: dark") {
		t.Error("the dark view does not force the dark styles")
	}
	_, raw := get(t, h, "/message.eml")
	if !strings.HasPrefix(raw, "Date: ") || !strings.Contains(raw, "Content-Type: multipart/alternative") {
		t.Errorf("message.eml is not the message: %.200s", raw)
	}
}

func TestViewAsASubscriber(t *testing.T) {
	_, h := built(t, newFixture(t), preview.Options{})
	_, body := get(t, h, "/?as=ann@example.org")
	text := html.UnescapeString(body)
	for _, want := range []string{`"Ann Reader" <ann@example.org>`, "Topics: town.", ", active"} {
		if !strings.Contains(text, want) {
			t.Errorf("view as ann lacks %q", want)
		}
	}
	if strings.Contains(text, "Zoë Ångström-Sample") {
		t.Error("view as ann still shows the sample reader")
	}
	_, body = get(t, h, "/?as=nobody@example.org")
	if text := html.UnescapeString(body); !strings.Contains(text, "nobody@example.org: "+preview.ErrNoReader.Error()) ||
		!strings.Contains(text, "Zoë Ångström-Sample") {
		t.Error("an unknown address should be named, with the sample reader shown")
	}
}

func TestSendTest(t *testing.T) {
	f := newFixture(t)
	_, h := built(t, f, preview.Options{})
	post := func(to string) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/send-test?as=ann%40example.org", strings.NewReader(url.Values{"to": {to}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Header().Get("Location")
	}
	code, loc := post("editor@example.org")
	if code != http.StatusSeeOther || loc != "/?as=ann%40example.org" {
		t.Fatalf("POST /send-test = %d to %q, want a redirect back to the page as it was", code, loc)
	}
	if got := f.sentTo(); len(got) != 1 || got[0] != "editor@example.org" {
		t.Fatalf("sent to %q", got)
	}
	_, body := get(t, h, "/")
	if !strings.Contains(body, "Test copy sent to editor@example.org") {
		t.Error("the page does not confirm the test send")
	}
	f.mu.Lock()
	f.sendFail = errors.New("smtp 127.0.0.1:2525: connection refused")
	f.mu.Unlock()
	post("editor@example.org")
	if _, body := get(t, h, "/"); !strings.Contains(body, "failed: smtp 127.0.0.1:2525: connection refused") {
		t.Error("the page does not show why the test send failed")
	}
}

func TestCrossOriginPostIsRefused(t *testing.T) {
	f := newFixture(t)
	_, h := built(t, f, preview.Options{})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/send-test", strings.NewReader("to=victim@example.org"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || len(f.sentTo()) != 0 {
		t.Errorf("a cross-site POST got %d and sent %q", rec.Code, f.sentTo())
	}
}

func TestBuildErrorKeepsTheLastGoodBuild(t *testing.T) {
	f := newFixture(t)
	s, h := built(t, f, preview.Options{})
	f.writeTemplate(t, "article.html.tmpl", "{{define \"article\"}}\n<p>{{.Title}</p>\n{{end}}\n")
	err := s.Rebuild(context.Background())
	if err == nil {
		t.Fatal("a broken template built")
	}
	_, body := get(t, h, "/")
	text := html.UnescapeString(body)
	if !strings.Contains(text, "The build failed at") || !strings.Contains(text, "article.html.tmpl:2") {
		t.Errorf("the page does not show the template's file and line; error was %v", err)
	}
	if !strings.Contains(text, wantStories[0]) || !strings.Contains(text, "Below is the last good build") {
		t.Error("the last good build is gone")
	}
	f.writeTemplate(t, "article.html.tmpl", "{{define \"article\"}}\n<p>{{.Title}}</p>\n{{end}}\n")
	if err := s.Rebuild(context.Background()); err != nil {
		t.Fatalf("the fixed template: %v", err)
	}
	if _, body := get(t, h, "/"); strings.Contains(body, "The build failed") {
		t.Error("the error stays after the fix")
	}
}

func TestFirstBuildFailing(t *testing.T) {
	f := newFixture(t)
	f.setLoadErr(errors.New("config.yaml:12: digest.window: want a duration such as 168h"))
	s := newServer(t, f, preview.Options{})
	if err := s.Rebuild(context.Background()); err == nil {
		t.Fatal("no error")
	}
	code, body := get(t, s.Handler(), "/")
	if code != http.StatusOK || !strings.Contains(body, "config.yaml:12: digest.window") {
		t.Errorf("GET / = %d without the config error", code)
	}
	if code, _ := get(t, s.Handler(), "/email"); code != http.StatusServiceUnavailable {
		t.Errorf("GET /email before any build = %d", code)
	}
}

func TestEmptyIssue(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f, preview.Options{})
	for _, name := range []string{"2026-11-26-orchard.md", "2026-11-27-library.md", "2026-11-28-harbour.md", "2026-11-29-market.md"} {
		f.writeNote(t, name, "---\ntitle: \"Old "+name+"\"\ndate: 2025-01-01T00:00:00Z\n---\nOld.\n")
	}
	if err := s.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, s.Handler(), "/")
	if !strings.Contains(body, "No articles in the window") || !strings.Contains(body, "Left out (6)") {
		t.Error("an empty issue should say so and list every story left out")
	}
}

func TestLinksAreCheckedOnce(t *testing.T) {
	f := newFixture(t)
	client, requests := linkServer(t)
	s, h := built(t, f, preview.Options{Links: preview.LinkOptions{Client: client}})
	var body string
	poll(t, "the link checks", func() bool {
		_, body = get(t, h, "/")
		return !strings.Contains(body, "being checked")
	})
	for _, want := range []string{
		"http://links.test/moved/library</a>: redirect (301) → http://links.test/ok/library",
		"http://links.test/gone/orchard</a>: broken (404): 404 Not Found",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("link report lacks %q", want)
		}
	}
	if strings.Contains(body, "nohead/market</a>") {
		t.Error("a link that refuses HEAD but answers GET is reported")
	}
	n := requests.Load()
	if err := s.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	get(t, h, "/")
	if got := requests.Load(); got != n {
		t.Errorf("a rebuild checked links again: %d requests, then %d", n, got)
	}
}

func TestFeedsAreCachedUntilRefetch(t *testing.T) {
	f := newFixture(t)
	f.remote = &countingSource{}
	s, h := built(t, f, preview.Options{})
	if err := s.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.remote.fetches.Load(); n != 1 {
		t.Fatalf("two builds fetched the remote source %d times, want 1", n)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/refetch", nil))
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("POST /refetch = %d", rec.Code)
	}
	if err := s.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.remote.fetches.Load(); n != 2 {
		t.Errorf("after Refetch: %d fetches, want 2", n)
	}
	if _, body := get(t, h, "/"); !strings.Contains(body, "Remote story fetched 2") || !strings.Contains(body, "(cached ") {
		t.Error("the page does not show the refetched, cached story")
	}
}

func TestEventsAnnounceRebuilds(t *testing.T) {
	f := newFixture(t)
	s, h := built(t, f, preview.Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		for lines.Scan() {
			if name, ok := strings.CutPrefix(lines.Text(), "event: "); ok {
				return name
			}
		}
		t.Fatal("the stream ended")
		return ""
	}
	if e := next(); e != "update" {
		t.Fatalf("first event %q, want the current version", e)
	}
	go s.Rebuild(context.Background())
	// An update of an earlier build may still be on its way: the rebuild
	// announces itself, then its result, in that order.
	for e := next(); e != "building"; e = next() {
		if e != "update" {
			t.Fatalf("event %q before building", e)
		}
	}
	if e := next(); e != "update" {
		t.Errorf("event %q after building, want update", e)
	}
}

func TestAccess(t *testing.T) {
	f := newFixture(t)
	_, open := built(t, f, preview.Options{})
	_, guarded := built(t, f, preview.Options{Token: "s3cret"})
	do := func(h http.Handler, target string, cookie *http.Cookie) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, target, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		h.ServeHTTP(rec, req)
		return rec
	}
	tests := []struct {
		name   string
		h      http.Handler
		target string
		cookie *http.Cookie
		want   int
	}{
		{"loopback without token", open, "http://127.0.0.1:8080/", nil, http.StatusOK},
		{"localhost without token", open, "http://localhost:8080/", nil, http.StatusOK},
		{"IPv6 loopback without token", open, "http://[::1]:8080/", nil, http.StatusOK},
		{"another host name without token (DNS rebinding)", open, "http://attacker.example:8080/", nil, http.StatusForbidden},
		{"token missing", guarded, "http://10.0.0.5:8080/", nil, http.StatusUnauthorized},
		{"wrong token", guarded, "http://10.0.0.5:8080/?token=guess", nil, http.StatusForbidden},
		{"token in the query: cookie and redirect", guarded, "http://10.0.0.5:8080/?token=s3cret&as=ann%40example.org", nil, http.StatusSeeOther},
		{"token in the cookie", guarded, "http://10.0.0.5:8080/email", &http.Cookie{Name: "digest_preview_token", Value: "s3cret"}, http.StatusOK},
		{"wrong cookie", guarded, "http://10.0.0.5:8080/", &http.Cookie{Name: "digest_preview_token", Value: "s3cre"}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(tt.h, tt.target, tt.cookie)
			if rec.Code != tt.want {
				t.Fatalf("GET %s = %d, want %d", tt.target, rec.Code, tt.want)
			}
			if rec.Code == http.StatusSeeOther {
				if loc := rec.Header().Get("Location"); loc != "/?as=ann%40example.org" {
					t.Errorf("redirect to %q, want the address without the token", loc)
				}
				if c := rec.Result().Cookies(); len(c) != 1 || c[0].Value != "s3cret" || !c[0].HttpOnly {
					t.Errorf("cookies %v", c)
				}
			}
		})
	}
}

func TestNeedsToken(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": false, "localhost:8080": false, "[::1]:8080": false, "127.0.0.2:1": false,
		":8080": true, "0.0.0.0:8080": true, "192.168.1.10:8080": true, "[::]:8080": true, "preview.example.org:80": true,
		"nonsense": true,
	} {
		if got := preview.NeedsToken(addr); got != want {
			t.Errorf("NeedsToken(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestPageShowsSettlingStories: a story held by its source's settle shows
// how long ago it last changed.
func TestPageShowsSettlingStories(t *testing.T) {
	f := newFixture(t)
	f.rules = map[string]issue.Rules{"Notes": {Settle: 48 * time.Hour}}
	_, h := built(t, f, preview.Options{})
	_, body := get(t, h, "/")
	text := html.UnescapeString(body)
	for _, want := range []string{
		"Winter market opens on the square <span class=\"muted\">Notes</span></td><td><strong>settling (changed 20 h ago)</strong>: last changed 29 Nov 2026 12:00 UTC",
		"Harbour ferry returns to the island <span class=\"muted\">Notes</span></td><td><strong>settling (changed 47 h ago)</strong>",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(text, "Library extends its opening hours <span class=\"muted\">Notes</span></td><td><strong>settling") {
		t.Error("a story unchanged for longer than settle is held")
	}
}

// TestPageShowsAnIssueGoingOut: while the issue for now is still being
// delivered, the page says how far it got and shows the next one.
func TestPageShowsAnIssueGoingOut(t *testing.T) {
	f := newFixture(t)
	f.out = &pipeline.Out{ID: "2026-11-30", Number: 12, Counts: ledger.Counts{Sent: 1500, Pending: 9000, Sending: 8, Skipped: 3}}
	_, h := built(t, f, preview.Options{})
	_, body := get(t, h, "/")
	text := html.UnescapeString(body)
	for _, want := range []string{
		"Issue 2026-11-30 #12 is going out: 1,500 of 10,508 readers sent so far.",
		"Next: issue <strong>2026-12-01</strong>",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
