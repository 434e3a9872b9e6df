package source

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/fetch"
)

// site serves testdata/site: the reference-shaped article page with its
// related stories, and the pages those stories link to. It counts requests
// per path.
type site struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newSite(t *testing.T) *site {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/site/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pages := map[string][]byte{
		"/world/2024/06/30/un-mali/": read("article.html"),
		"/2024/06/wagner-in-africa/": read("wagner.html"),
		"/2024/06/putin-to-visit-north-korea-and-vietnam/": []byte(
			`<html><head><meta name="description" content="Should not be fetched: the item has a teaser."></head></html>`),
	}
	s := &site{hits: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("ETag", `"page-v1"`)
		if r.Header.Get("If-None-Match") == `"page-v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *site) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// relatedSpec reads the related-stories block of the article page.
func relatedSpec(u string) Spec {
	return Spec{
		Name: "MikeReports", Type: "page", URL: u, Section: "World",
		Selectors: Selectors{
			Item: ".related-posts .related-item", Title: "h3", Link: "h3 a",
			Teaser: ".excerpt", Date: ".entry-date",
		},
	}
}

func TestPage(t *testing.T) {
	s := newSite(t)
	base := s.srv.URL
	pageURL := base + "/world/2024/06/30/un-mali/"
	putin := article.Article{
		ID:        base + "/2024/06/putin-to-visit-north-korea-and-vietnam/",
		Title:     "Putin to Visit North Korea and Vietnam",
		Link:      base + "/2024/06/putin-to-visit-north-korea-and-vietnam/?utm_source=related&utm_medium=block",
		Source:    "MikeReports",
		Section:   "World",
		Published: date("2024-06-17T08:00:00Z"),
		Teaser:    "Russian Federation President Vladimir Putin is scheduled to visit North Korea and meet with North Korean Supreme Leader Kim Jung Un and other party officials as part of a…",
		Image:     base + "/wp-content/uploads/putin-218x150.jpg",
	}
	avocados := article.Article{
		ID:        base + "/world/2024/06/30/un-mali/avocados/",
		Title:     "United States Suspends Import of Avocados From Mexican State Due to Attacks on American Officials",
		Link:      base + "/world/2024/06/30/un-mali/avocados/",
		Source:    "MikeReports",
		Section:   "World",
		Published: date("2024-06-16T00:00:00Z"),
		Teaser:    "The United States halted the exportation of avocados from Mexico's western Michoacan state to the US following the US embassy in Mexico issuing a level four travel advisory against…",
		Image:     base + "/world/2024/06/uploads/avocado-218x150.jpg",
	}
	wagner := article.Article{
		ID:      base + "/2024/06/wagner-in-africa/",
		Title:   "Wagner & the Sahel",
		Link:    base + "/2024/06/wagner-in-africa/#comments",
		Source:  "MikeReports",
		Section: "World",
	}
	gone := article.Article{
		ID: base + "/2024/06/gone/", Title: "A story that is gone", Link: base + "/2024/06/gone/",
		Source: "MikeReports", Section: "World",
	}
	wagnerTeased := wagner
	wagnerTeased.Teaser = "How Russia's Wagner group moved into the Sahel & what it means for Mali."

	tests := []struct {
		name string
		spec func(Spec) Spec
		want []article.Article
	}{
		{"related stories", func(s Spec) Spec { return s }, []article.Article{putin, avocados, wagner, gone}},
		{"teasers fetched", func(s Spec) Spec { s.FetchTeasers = true; return s },
			[]article.Article{putin, avocados, wagnerTeased, gone}},
		{"default title, link, date and image", func(s Spec) Spec {
			s.Selectors = Selectors{Item: ".related-item"}
			return s
		}, func() []article.Article {
			p, a, w, g := putin, avocados, wagner, gone
			p.Teaser, a.Teaser, a.Published = "", "", time.Time{}
			return []article.Article{p, a, w, g}
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(tt.spec(relatedSpec(pageURL)), Env{})
			if err != nil {
				t.Fatal(err)
			}
			got, rep, err := src.(Reporter).FetchReport(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.Status != StatusOK || rep.Items != len(got) || rep.URL != pageURL {
				t.Errorf("report = %+v", rep)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d articles, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				if !equal(got[i], tt.want[i]) {
					t.Errorf("article %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
	if n := s.count("/2024/06/putin-to-visit-north-korea-and-vietnam/"); n != 0 {
		t.Errorf("the page of an item with a teaser was fetched %d times", n)
	}
}

func TestPageTeaserCache(t *testing.T) {
	s := newSite(t)
	cache := &MemoryCache{}
	spec := relatedSpec(s.srv.URL + "/world/2024/06/30/un-mali/")
	spec.FetchTeasers = true
	src, err := New(spec, Env{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		got, rep, err := src.(Reporter).FetchReport(context.Background())
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		wantStatus := map[int]Status{1: StatusOK, 2: StatusNotModified}[run]
		if rep.Status != wantStatus || rep.Items != 4 {
			t.Errorf("run %d: report %+v, want status %q and 4 items", run, rep, wantStatus)
		}
		if got[2].Teaser == "" {
			t.Errorf("run %d: no fetched teaser for %q", run, got[2].Title)
		}
	}
	// A description is fetched once per link; a page that failed (404) is
	// tried again on the next run.
	if n := s.count("/2024/06/wagner-in-africa/"); n != 1 {
		t.Errorf("wagner page fetched %d times, want once", n)
	}
	if n := s.count("/2024/06/gone/"); n != 2 {
		t.Errorf("the 404 page fetched %d times, want once per run", n)
	}
	c, ok, _ := cache.GetDocument(context.Background(), DescriptionKey(s.srv.URL+"/2024/06/wagner-in-africa/#comments"))
	if !ok || !strings.Contains(string(c.Body), "Wagner group") {
		t.Errorf("cached description = %q, %v", c.Body, ok)
	}
}

func TestPageErrors(t *testing.T) {
	s := newSite(t)
	env := Env{Fetcher: fetch.New(fetch.Options{Timeout: 2 * time.Second})}
	tests := []struct {
		name    string
		spec    Spec
		wantErr string
	}{
		{"404", relatedSpec(s.srv.URL + "/nowhere/"), "page MikeReports: fetch " + s.srv.URL + "/nowhere/: HTTP 404"},
		{"item matches nothing", func() Spec {
			sp := relatedSpec(s.srv.URL + "/world/2024/06/30/un-mali/")
			sp.Selectors.Item = ".no-such-class"
			return sp
		}(), `page MikeReports: ` + s.srv.URL + `/world/2024/06/30/un-mali/: selectors.item ".no-such-class" matches nothing`},
		{"items without title or link", func() Spec {
			sp := relatedSpec(s.srv.URL + "/world/2024/06/30/un-mali/")
			sp.Selectors = Selectors{Item: "figure img"}
			return sp
		}(), "none of the 1 elements matched by selectors.item has a title or a link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(tt.spec, env)
			if err != nil {
				t.Fatal(err)
			}
			got, rep, err := Check(context.Background(), src)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			if len(got) != 0 || rep.Status != StatusError {
				t.Errorf("got %d articles, report %+v", len(got), rep)
			}
		})
	}
}

func TestMetaDescription(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"og wins", `<meta name="description" content="d"><meta property="og:description" content="og">`, "og"},
		{"twitter over plain", `<meta name="description" content="d"><meta name="twitter:description" content="tw">`, "tw"},
		{"plain", `<head><META NAME="Description" CONTENT="  d  "></head>`, "d"},
		{"empty content skipped", `<meta property="og:description" content=""><meta name="description" content="d">`, "d"},
		{"body ignored", `<head></head><body><meta name="description" content="late"></body>`, ""},
		{"none", `<title>x</title>`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := metaDescription([]byte(tt.in)); got != tt.want {
				t.Errorf("metaDescription = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPageTeaserBudget(t *testing.T) {
	list := `<html><body><ul>
<li><a href="/slow/1">One</a></li><li><a href="/slow/2">Two</a></li>
<li><a href="/fast">Three</a></li></ul></body></html>`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/":
			w.Write([]byte(list))
		case r.URL.Path == "/fast":
			w.Write([]byte(`<meta name="description" content="Fast page.">`))
		default:
			select { // a page that never answers
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
	}))
	defer srv.Close()
	src, err := New(Spec{Name: "L", Type: "page", URL: srv.URL + "/", Selectors: Selectors{Item: "li"}, FetchTeasers: true}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	src.(*page).teaserBudget = 300 * time.Millisecond
	start := time.Now()
	got, err := src.Fetch(context.Background())
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Fetch took %s despite the teaser budget", d)
	}
	if err != nil || len(got) != 3 {
		t.Fatalf("got %d articles, error %v", len(got), err)
	}
	if got[0].Teaser != "" || got[2].Teaser != "Fast page." {
		t.Errorf("teasers = %q, %q, %q", got[0].Teaser, got[1].Teaser, got[2].Teaser)
	}
}
