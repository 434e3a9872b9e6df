package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digest/digest/internal/clocktest"
	"github.com/digest/digest/internal/fetch"
)

// feedServer serves one feed whose answer the test switches: the feed with
// an ETag (304 to a matching If-None-Match), a 500, or a malformed body.
type feedServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	mode string // ok | 500 | malformed | changed
	inm  []string
}

func newFeedServer(t *testing.T) *feedServer {
	t.Helper()
	rss, err := os.ReadFile("testdata/rss.xml")
	if err != nil {
		t.Fatal(err)
	}
	fs := &feedServer{mode: "ok"}
	fs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.mu.Lock()
		mode := fs.mode
		fs.inm = append(fs.inm, r.Header.Get("If-None-Match"))
		fs.mu.Unlock()
		switch mode {
		case "500":
			http.Error(w, "down", http.StatusInternalServerError)
		case "malformed":
			w.Header().Set("ETag", `"broken"`)
			fmt.Fprint(w, `<rss><channel><item><title>half`)
		case "changed":
			w.Header().Set("ETag", `"v2"`)
			fmt.Fprint(w, `<rss version="2.0"><channel><title>T</title><item><title>Only one</title><link>https://e.org/one</link></item></channel></rss>`)
		default:
			if r.Header.Get("If-None-Match") == `"v1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Content-Type", "application/rss+xml")
			w.Write(rss)
		}
	}))
	t.Cleanup(fs.srv.Close)
	return fs
}

func (fs *feedServer) set(mode string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.mode = mode
}

func (fs *feedServer) lastINM() string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.inm[len(fs.inm)-1]
}

func TestFeedConditionalAndStale(t *testing.T) {
	fs := newFeedServer(t)
	cache := &MemoryCache{}
	clk := clocktest.New(date("2024-06-20T08:00:00Z"))
	env := Env{Cache: cache, Now: clk.Now, StaleFallback: 24 * time.Hour,
		Fetcher: fetch.New(fetch.Options{Timeout: 2 * time.Second})}
	src, err := New(Spec{Name: "W", Type: "feed", URL: fs.srv.URL + "/rss.xml"}, env)
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name       string
		mode       string
		advance    time.Duration
		wantINM    string
		wantStatus Status
		wantItems  int
		wantErr    []string
		wantStale  bool
		wantAt     time.Time // Report.FetchedAt
	}{
		{name: "first fetch", mode: "ok", wantStatus: StatusOK, wantItems: 3, wantAt: date("2024-06-20T08:00:00Z")},
		{name: "304 reuses the copy", mode: "ok", advance: time.Hour, wantINM: `"v1"`, wantStatus: StatusNotModified, wantItems: 3,
			wantAt: date("2024-06-20T09:00:00Z")},
		{name: "server fails: last good copy", mode: "500", advance: 2 * time.Hour, wantINM: `"v1"`, wantStatus: StatusStale, wantItems: 3,
			wantErr: []string{"feed W: using the last good copy (fetched 2h0m0s ago): fetch " + fs.srv.URL + "/rss.xml: HTTP 500"}, wantStale: true,
			wantAt: date("2024-06-20T09:00:00Z")},
		{name: "malformed: last good copy, not cached", mode: "malformed", advance: time.Hour, wantINM: `"v1"`, wantStatus: StatusStale, wantItems: 3,
			wantErr: []string{"feed W: using the last good copy (fetched 3h0m0s ago): " + fs.srv.URL + "/rss.xml: "}, wantStale: true,
			wantAt: date("2024-06-20T09:00:00Z")},
		{name: "copy too old", mode: "500", advance: 21 * time.Hour, wantINM: `"v1"`, wantStatus: StatusError,
			wantErr: []string{"feed W: fetch " + fs.srv.URL + "/rss.xml: HTTP 500"}},
		{name: "back and changed", mode: "changed", advance: time.Hour, wantINM: `"v1"`, wantStatus: StatusOK, wantItems: 1,
			wantAt: date("2024-06-21T10:00:00Z")},
		{name: "new validators sent", mode: "changed", wantINM: `"v2"`, wantStatus: StatusOK, wantItems: 1,
			wantAt: date("2024-06-21T10:00:00Z")},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			fs.set(st.mode)
			clk.Advance(st.advance)
			got, rep, err := Check(context.Background(), src)
			if inm := fs.lastINM(); inm != st.wantINM {
				t.Errorf("If-None-Match = %q, want %q", inm, st.wantINM)
			}
			if rep.Status != st.wantStatus || rep.Items != st.wantItems || len(got) != st.wantItems {
				t.Errorf("report %+v with %d articles, want status %q and %d items", rep, len(got), st.wantStatus, st.wantItems)
			}
			if !rep.FetchedAt.Equal(st.wantAt) {
				t.Errorf("FetchedAt = %s, want %s", rep.FetchedAt, st.wantAt)
			}
			if st.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range st.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if errors.Is(err, ErrStale) != st.wantStale {
				t.Errorf("errors.Is(%v, ErrStale) = %v", err, !st.wantStale)
			}
		})
	}
}

func TestStaleFallbackOff(t *testing.T) {
	fs := newFeedServer(t)
	cache := &MemoryCache{}
	src, err := New(Spec{Name: "W", Type: "feed", URL: fs.srv.URL + "/rss.xml"}, Env{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	fs.set("500")
	got, err := src.Fetch(context.Background())
	if err == nil || errors.Is(err, ErrStale) || len(got) != 0 {
		t.Errorf("with StaleFallback 0: %d articles, error %v; want none and a plain error", len(got), err)
	}
}

// failingCache fails every call: a source must work without it.
type failingCache struct{}

func (failingCache) GetDocument(context.Context, string) (Cached, bool, error) {
	return Cached{}, false, errors.New("disk on fire")
}
func (failingCache) PutDocument(context.Context, string, Cached) error {
	return errors.New("disk on fire")
}

func TestCacheFailureIsNotFatal(t *testing.T) {
	fs := newFeedServer(t)
	src, err := New(Spec{Name: "W", Type: "feed", URL: fs.srv.URL + "/rss.xml"}, Env{Cache: failingCache{}, StaleFallback: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	got, err := src.Fetch(context.Background())
	if err != nil || len(got) != 3 {
		t.Fatalf("got %d articles, error %v", len(got), err)
	}
}

func TestCheckLocal(t *testing.T) {
	tests := []struct {
		name       string
		spec       Spec
		wantStatus Status
		wantItems  int
		wantErr    bool
	}{
		{"feed file", Spec{Name: "F", Type: "feed", Path: "testdata/atom.xml"}, StatusOK, 2, false},
		{"broken feed file", Spec{Name: "F", Type: "feed", Path: "testdata/malformed.xml"}, StatusError, 0, true},
		// Good notes and bad ones: a warning, not a failure.
		{"markdown with bad notes", Spec{Name: "M", Type: "markdown", Path: "testdata/notes"}, StatusPartial, 5, true},
		{"markdown, every note bad", Spec{Name: "M", Type: "markdown", Path: "testdata/badnotes"}, StatusError, 0, true},
		{"markdown, no folder", Spec{Name: "M", Type: "markdown", Path: "testdata/nope"}, StatusError, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(tt.spec, Env{})
			if err != nil {
				t.Fatal(err)
			}
			got, rep, err := Check(context.Background(), src)
			if rep.Status != tt.wantStatus || (err != nil) != tt.wantErr || Failed(err) != (tt.wantStatus == StatusError) {
				t.Errorf("report %+v, error %v; want status %q", rep, err, tt.wantStatus)
			}
			if rep.Items != len(got) || (tt.wantItems >= 0 && rep.Items != tt.wantItems) {
				t.Errorf("report items %d, %d articles, want %d", rep.Items, len(got), tt.wantItems)
			}
			if !rep.FetchedAt.IsZero() || rep.URL != "" {
				t.Errorf("local source report names a fetch: %+v", rep)
			}
		})
	}
}
