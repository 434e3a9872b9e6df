package preview_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/preview"
	"github.com/digest/digest/internal/render"
	"github.com/digest/digest/internal/source"
)

// testNow is the issue's clock in every test: the notes in testdata are
// dated around it.
var testNow = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

// The stories of testdata/notes that the issue of testNow carries, newest
// first, and those it leaves out.
var (
	wantStories = []string{
		"Winter market opens on the square",
		"Harbour ferry returns to the island",
		"Library extends its opening hours",
		"Community orchard plants its hundredth tree",
	}
	wantLeft = map[string]issue.Reason{
		"Town budget, first draft": issue.Draft,
		"Autumn regatta results":   issue.BeforeWindow,
	}
)

// fixture is a newsletter in a temporary folder: the notes of testdata, an
// empty templates folder, and a session wired from them as the command
// line wires one from the configuration (real sources, selection,
// templates and message builder).
type fixture struct {
	dir, notes, templates string
	remote                *countingSource // an optional remote feed, behind the cache

	mu       sync.Mutex
	sent     []string // addresses of test sends
	loadErr  error    // returned by Load when set
	readers  map[string]preview.Reader
	sendFail error
	zone     *time.Location // the newsletter's; nil is UTC
	out      *pipeline.Out  // when set, Build previews the next issue, after this one,
	// which carried the stories of these titles
	sentTitles map[string]bool
	rules      map[string]issue.Rules // the sources' rules, by name
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, notes: filepath.Join(dir, "notes"), templates: filepath.Join(dir, "templates"),
		readers: map[string]preview.Reader{
			"ann@example.org": {ID: 7, Email: "ann@example.org", Name: "Ann Reader", Status: "active", Topics: []string{"town"}},
		}}
	for _, d := range []string{f.notes, f.templates} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir("testdata/notes")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata/notes", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(f.notes, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// load returns the Options.Load of the fixture.
func (f *fixture) load(cache *preview.SourceCache) func(context.Context) (preview.Session, error) {
	return func(ctx context.Context) (preview.Session, error) {
		f.mu.Lock()
		err := f.loadErr
		f.mu.Unlock()
		if err != nil {
			return nil, err
		}
		r, err := render.New(f.templates, render.Newsletter{Name: "The Test Weekly", BaseURL: "http://links.test"})
		if err != nil {
			return nil, err
		}
		notes, err := source.New(source.Spec{Name: "Notes", Type: "markdown", Path: f.notes, Section: "Around town"}, source.Env{})
		if err != nil {
			return nil, err
		}
		srcs := []source.Source{notes}
		if f.remote != nil {
			srcs = append(srcs, cache.Wrap("remote", f.remote))
		}
		comp, err := mail.NewComposer(mail.Options{ListName: "The Test Weekly", From: "The Test Weekly <news@example.org>",
			BaseURL: "http://links.test", Secret: []byte("test secret"), Now: func() time.Time { return testNow }})
		if err != nil {
			return nil, err
		}
		return &session{f: f, renderer: r, sources: srcs, comp: comp}, nil
	}
}

func (f *fixture) setLoadErr(err error) {
	f.mu.Lock()
	f.loadErr = err
	f.mu.Unlock()
}

func (f *fixture) sentTo() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.sent...)
}

// writeNote saves a note the way editors' programs do: a temporary file,
// renamed over the name.
func (f *fixture) writeNote(t *testing.T, name, body string) {
	t.Helper()
	tmp := filepath.Join(f.notes, ".tmp-"+name)
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.notes, name)); err != nil {
		t.Fatal(err)
	}
}

// writeTemplate saves an override of one template the same way.
func (f *fixture) writeTemplate(t *testing.T, name, body string) {
	t.Helper()
	tmp := filepath.Join(f.templates, ".tmp-"+name)
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.templates, name)); err != nil {
		t.Fatal(err)
	}
}

// session is the fixture's preview.Session: gather, select and render
// without storing anything, and messages from mail.Prepared as delivery
// builds them.
type session struct {
	f        *fixture
	renderer *render.Renderer
	sources  []source.Source
	comp     *mail.Composer
}

var _ preview.Session = (*session)(nil)

func (s *session) Build(ctx context.Context, now time.Time) (*pipeline.Built, error) {
	var arts []article.Article
	var results []pipeline.SourceResult
	for _, src := range s.sources {
		got, rep, err := source.Check(ctx, src)
		arts = append(arts, got...)
		results = append(results, pipeline.SourceResult{Name: src.Name(), Status: rep.Status, Articles: len(got), Took: rep.Took, Err: err})
	}
	s.f.mu.Lock()
	out, sentTitles, rules := s.f.out, s.f.sentTitles, s.f.rules
	s.f.mu.Unlock()
	opts := issue.Options{Now: now, Location: s.f.zone, Window: 168 * time.Hour, MaxArticles: 30, Rules: rules}
	if out != nil { // as pipeline.PreviewNext: the next day's issue, without what went out
		opts.Now = now.Add(24 * time.Hour)
		opts.SentIn = map[string]string{}
		for _, a := range arts {
			if sentTitles[a.Title] {
				opts.SentIn[a.ID] = out.ID
			}
		}
	}
	iss := issue.Select(arts, opts)
	b := &pipeline.Built{Issue: iss, Sources: results, Out: out}
	if b.Empty() {
		return b, nil
	}
	r, err := s.renderer.Render(iss, "")
	if err != nil {
		return nil, err
	}
	b.Rendered = r
	return b, nil
}

func (s *session) Copy(ctx context.Context, b *pipeline.Built, r preview.Reader) (preview.Copy, error) {
	p, err := s.comp.Prepare(b.Rendered)
	if err != nil {
		return preview.Copy{}, err
	}
	m, err := p.Build(nil, ledger.Recipient{IssueID: b.Issue.ID, SubscriberID: r.ID, Email: r.Email, Name: r.Name})
	if err != nil {
		return preview.Copy{}, err
	}
	return preview.Copy{Issue: b.Issue, Message: m}, nil
}

func (s *session) SendTest(ctx context.Context, b *pipeline.Built, addr string) (string, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.f.sendFail != nil {
		return "", s.f.sendFail
	}
	s.f.sent = append(s.f.sent, addr)
	return "the test transport", nil
}

func (s *session) Reader(ctx context.Context, email string) (preview.Reader, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	r, ok := s.f.readers[strings.ToLower(email)]
	if !ok {
		return preview.Reader{}, preview.ErrNoReader
	}
	return r, nil
}

func (s *session) Fit(b *pipeline.Built, limit int) (int, error) {
	return s.renderer.FitArticles(b.Issue, b.Issue.Intro, limit)
}

func (s *session) Watch() []string { return []string{s.f.notes, s.f.templates} }

func (s *session) Location() *time.Location { return s.f.zone }

// countingSource is a remote source that counts its fetches.
type countingSource struct {
	fetches atomic.Int32
	fail    atomic.Bool
}

func (c *countingSource) Name() string { return "Remote" }

func (c *countingSource) Fetch(ctx context.Context) ([]article.Article, error) {
	n := c.fetches.Add(1)
	if c.fail.Load() {
		return nil, errors.New("remote: connection refused")
	}
	return []article.Article{{ID: "remote-1", Title: "Remote story fetched " + strconv.Itoa(int(n)), Link: "http://links.test/ok/remote",
		Source: "Remote", Section: "World", Published: testNow.Add(-time.Hour)}}, nil
}

// linkServer answers every host's links by the first path segment: ok,
// moved (301), gone (404), nohead (405 to HEAD, 200 to GET), u (the
// unsubscribe page). It returns a client that sends every request to it.
func linkServer(t testing.TB) (*http.Client, *atomic.Int32) {
	t.Helper()
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		seg, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		switch seg {
		case "ok", "u":
		case "moved":
			http.Redirect(w, r, "/ok"+strings.TrimPrefix(r.URL.Path, "/moved"), http.StatusMovedPermanently)
		case "nohead":
			if r.Method == http.MethodHead {
				w.WriteHeader(http.StatusMethodNotAllowed)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	return &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, &requests
}

// newServer returns a preview of the fixture, closed at the end of the test.
func newServer(t testing.TB, f *fixture, opts preview.Options) *preview.Server {
	t.Helper()
	if opts.Cache == nil {
		opts.Cache = preview.NewSourceCache(nil)
	}
	opts.Load = f.load(opts.Cache)
	opts.Now = func() time.Time { return testNow }
	if opts.Links.Client == nil {
		opts.Links.Client, _ = linkServer(t)
	}
	s, err := preview.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// get requests path from h as a browser on loopback does.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080"+path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// poll calls cond until it is true or a generous bound passes; the bound
// only keeps a broken test from hanging.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after 30s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
