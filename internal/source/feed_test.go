package source

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/fetch"
)

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func fetchPath(t *testing.T, path string, env Env) ([]article.Article, error) {
	t.Helper()
	src, err := New(Spec{Name: "Test", Type: "feed", Path: path, Section: "News"}, env)
	if err != nil {
		t.Fatal(err)
	}
	return src.Fetch(context.Background())
}

func byLink(as []article.Article) map[string]article.Article {
	m := map[string]article.Article{}
	for _, a := range as {
		m[a.Link] = a
	}
	return m
}

func TestFeedFormats(t *testing.T) {
	tests := []struct {
		file string
		want []article.Article
	}{
		{"rss.xml", []article.Article{
			{
				ID: "un-mali-2023", Title: "United Nations Marks Final Day In Mali",
				Link:      "https://news.example.org/2023/06/un-mali?utm_source=rss&utm_medium=feed",
				Published: date("2023-06-30T07:00:00Z"),
				Teaser:    "Following a unanimous vote by the United Nations Security Council, June 30 will be the final day of…",
				Image:     "https://cdn.example.org/mali.jpg",
				Tags:      []string{"Africa", "UN"},
			},
			{
				ID: "https://news.example.org/2024/06/putin-visit", Title: "Putin to Visit North Korea & Vietnam",
				Link: "https://news.example.org/2024/06/putin-visit", Published: date("2024-06-17T08:00:00Z"),
				Teaser: "Russian Federation President Vladimir Putin is scheduled to visit North Korea.",
				Image:  "https://cdn.example.org/putin-thumb.jpg",
			},
			{
				ID: "https://news.example.org/2024/06/avocados", Title: "Avocado imports suspended",
				Link:   "https://news.example.org/2024/06/avocados",
				Teaser: "The United States halted avocados.",
				Image:  "https://news.example.org/img/avocado.png",
			},
		}},
		{"atom.xml", []article.Article{
			{
				ID: "tag:blog.example.com,2024:sqlite-writes", Title: "Scaling SQLite writes",
				Link: "https://blog.example.com/posts/sqlite-writes", Published: date("2024-06-09T10:00:00Z"),
				Teaser: "Batching turns 10,000 writes per second into 70,000.",
				Image:  "https://blog.example.com/wal.png", Tags: []string{"databases"},
			},
			{
				ID: "tag:blog.example.com,2024:updated-only", Title: "Only updated",
				Link: "https://blog.example.com/posts/updated-only", Published: date("2024-06-01T10:00:00Z"),
				Teaser: "Content without a summary.",
			},
		}},
		{"feed.json", []article.Article{
			{
				ID: "2", Title: "Second post", Link: "https://json.example.net/2024/second",
				Published: date("2024-06-02T14:00:00Z"), Teaser: "A short summary of the second post.",
				Image: "https://json.example.net/second.png", Tags: []string{"go", "feeds"},
			},
			{
				ID: "1", Title: "First post", Link: "https://json.example.net/2024/first",
				Published: date("2024-06-01T08:00:00Z"), Teaser: "Plain text content of the first post.",
			},
		}},
		{"latin1.xml", []article.Article{
			{
				ID: "https://cafe.example.fr/gare", Title: "Le café de la gare fermé",
				Link: "https://cafe.example.fr/gare", Teaser: "Déjà vu à Orléans — naïve",
			},
		}},
		{"relative.xml", []article.Article{
			{
				ID: "https://rel.example.org/blog/posts/one.html", Title: "Relative link",
				Link: "https://rel.example.org/blog/posts/one.html", Teaser: "Text.",
				Image: "https://rel.example.org/images/one.png",
			},
			{
				ID: "https://rel.example.org/about", Title: "Root-relative link",
				Link: "https://rel.example.org/about#team",
			},
			{
				Title: "Script link", // javascript: is no link
			},
		}},
	}
	env := Env{TeaserLength: 100}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := fetchPath(t, filepath.Join("testdata", tt.file), env)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d articles, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				w.Source, w.Section = "Test", "News"
				g := got[i]
				if w.ID == "" && g.ID != "" && strings.HasPrefix(g.ID, "feed:Test/") {
					w.ID = g.ID // a hash of the title
				}
				if !equal(g, w) {
					t.Errorf("article %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}

func equal(a, b article.Article) bool {
	return a.ID == b.ID && a.Title == b.Title && a.Link == b.Link && a.Source == b.Source &&
		a.Section == b.Section && a.Published.Equal(b.Published) && a.Teaser == b.Teaser &&
		a.Image == b.Image && slices.Equal(a.Tags, b.Tags) && a.Draft == b.Draft
}

func TestFeedSanitizesTeaser(t *testing.T) {
	got, err := fetchPath(t, filepath.Join("testdata", "rss.xml"), Env{TeaserLength: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := "Following a unanimous vote by the United Nations Security Council, June 30 will be the final day of the mission in Mali, known as MINUSMA. The force at its height consisted of 13,289 military personnel & 1,920 police."
	if got[0].Teaser != want {
		t.Errorf("teaser = %q\nwant %q", got[0].Teaser, want)
	}
}

func TestFeedErrors(t *testing.T) {
	tests := []struct {
		file    string
		wantErr []string
	}{
		{"malformed.xml", []string{"feed Test: testdata/malformed.xml: "}},
		{"page.html", []string{"feed Test: testdata/page.html: not a feed: got an HTML page"}},
		{"missing.xml", []string{"feed Test: testdata/missing.xml: no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := fetchPath(t, "testdata/"+tt.file, Env{})
			if err == nil {
				t.Fatalf("want an error, got %d articles", len(got))
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestFeedURL(t *testing.T) {
	rss, err := os.ReadFile("testdata/rss.xml")
	if err != nil {
		t.Fatal(err)
	}
	latin1, err := os.ReadFile("testdata/latin1.xml")
	if err != nil {
		t.Fatal(err)
	}
	relative, err := os.ReadFile("testdata/relative.xml")
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile("testdata/page.html")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	serve := func(path, ct string, body []byte) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.Write(body)
		})
	}
	serve("/rss.xml", "application/rss+xml", rss)
	serve("/latin1.xml", "text/xml", latin1)
	// Relative channel link: item links resolve against it, made absolute
	// against the feed's own URL.
	serve("/blog/relative.xml", "application/rss+xml", bytes.Replace(relative,
		[]byte("<link>https://rel.example.org/blog/</link>"), []byte("<link>/site/</link>"), 1))
	serve("/page", "text/html; charset=utf-8", page)
	mux.HandleFunc("/403", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusForbidden)
		w.Write(page)
	})
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", 500) })
	mux.HandleFunc("/huge.xml", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte(" "), 64<<10))
	})
	mux.HandleFunc("/slow.xml", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	env := Env{Fetcher: fetch.New(fetch.Options{MaxBytes: 32 << 10, Timeout: 2 * time.Second})}
	tests := []struct {
		path      string
		timeout   time.Duration
		wantN     int
		wantLinks []string
		wantTitle string
		wantErr   []string
		errIs     error
	}{
		{path: "/rss.xml", wantN: 3, wantLinks: []string{"https://news.example.org/2024/06/putin-visit"}},
		{path: "/latin1.xml", wantN: 1, wantTitle: "Le café de la gare fermé"},
		{path: "/blog/relative.xml", wantN: 3, wantLinks: []string{srv.URL + "/site/posts/one.html", srv.URL + "/about#team"}},
		{path: "/page", wantErr: []string{"feed W: " + srv.URL + "/page: not a feed: got an HTML page"}},
		{path: "/403", wantErr: []string{"feed W: fetch " + srv.URL + "/403: HTTP 403 Forbidden"}},
		{path: "/404", wantErr: []string{"feed W: fetch " + srv.URL + "/404: HTTP 404 Not Found"}},
		{path: "/500", wantErr: []string{"feed W: fetch " + srv.URL + "/500: HTTP 500"}},
		{path: "/huge.xml", wantErr: []string{"feed W: fetch " + srv.URL + "/huge.xml: ", "over the 32 KiB cap"}, errIs: fetch.ErrTooLarge},
		{path: "/slow.xml", timeout: 200 * time.Millisecond, wantErr: []string{"feed W: fetch " + srv.URL + "/slow.xml: timed out after 200ms"}, errIs: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			src, err := New(Spec{Name: "W", Type: "feed", URL: srv.URL + tt.path, Timeout: tt.timeout}, env)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			got, err := src.Fetch(context.Background())
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Fetch took %s", d)
			}
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("want an error, got %d articles", len(got))
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if tt.errIs != nil && !errors.Is(err, tt.errIs) {
					t.Errorf("error %q is not %v", err, tt.errIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.wantN {
				t.Fatalf("got %d articles, want %d", len(got), tt.wantN)
			}
			links := byLink(got)
			for _, l := range tt.wantLinks {
				if _, ok := links[l]; !ok {
					t.Errorf("no article with link %q in %v", l, got)
				}
			}
			if tt.wantTitle != "" && got[0].Title != tt.wantTitle {
				t.Errorf("title = %q, want %q", got[0].Title, tt.wantTitle)
			}
			for _, a := range got {
				if a.Section != "W" {
					t.Errorf("section = %q, want the name as default", a.Section)
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		wantErr string
		errIs   error
	}{
		{"feed by url", Spec{Name: "A", Type: "feed", URL: "https://example.org/rss"}, "", nil},
		{"feed by path", Spec{Name: "A", Type: "feed", Path: "x.xml"}, "", nil},
		{"markdown", Spec{Name: "A", Type: "markdown", Path: "notes"}, "", nil},
		{"page", Spec{Name: "A", Type: "page", URL: "https://example.org/", Selectors: Selectors{Item: "article", Date: "time, .date"}}, "", nil},
		{"page without item selector", Spec{Name: "A", Type: "page", URL: "https://example.org/"}, "source A: a page source needs selectors.item", nil},
		{"page without url", Spec{Name: "A", Type: "page", Selectors: Selectors{Item: "li"}}, "source A: a page source needs a url", nil},
		{"page with a bad selector", Spec{Name: "A", Type: "page", URL: "https://example.org/", Selectors: Selectors{Item: "li", Title: "h3[", Link: "a"}},
			`source A: selectors.title: invalid CSS selector "h3["`, nil},
		{"unknown type", Spec{Name: "A", Type: "twitter"}, `source A: unknown type "twitter"`, nil},
		{"empty type", Spec{Name: "A"}, "source A: type is empty", nil},
		{"no name", Spec{Type: "feed", URL: "https://example.org/rss"}, "name is empty", nil},
		{"feed with both", Spec{Name: "A", Type: "feed", URL: "https://example.org/rss", Path: "x"}, "exactly one of url and path", nil},
		{"feed with neither", Spec{Name: "A", Type: "feed"}, "exactly one of url and path", nil},
		{"markdown without path", Spec{Name: "A", Type: "markdown"}, "needs a path", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(tt.spec, Env{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if src.Name() != tt.spec.Name {
					t.Errorf("Name() = %q", src.Name())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			if tt.errIs != nil && !errors.Is(err, tt.errIs) {
				t.Errorf("error %v is not %v", err, tt.errIs)
			}
		})
	}
}
