package source

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDiscover(t *testing.T) {
	tests := []struct {
		name, body, ct, want string
	}{
		{"atom, rel case and base", `<html><head><base href="/blog/"><link rel="Alternate" type="application/atom+xml" href="atom.xml"></head></html>`,
			"text/html", "https://e.org/blog/atom.xml"},
		{"rss, relative to the page", `<!DOCTYPE html><link rel="alternate" type="application/rss+xml" href="feed/">`, "", "https://e.org/dir/feed/"},
		{"json feed, absolute", `<html><link rel="alternate home" type="application/feed+json; charset=utf-8" href="https://f.e.org/f.json">`,
			"text/html", "https://f.e.org/f.json"},
		{"first of several", `<html><link rel="alternate" type="text/html" href="/fr/"><link rel="alternate" type="application/rss+xml" href="/a.xml"><link rel="alternate" type="application/atom+xml" href="/b.xml">`,
			"text/html", "https://e.org/a.xml"},
		{"not alternate", `<html><link rel="stylesheet" type="application/rss+xml" href="/x.xml">`, "text/html", ""},
		{"javascript href", `<html><link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">`, "text/html", ""},
		{"only in the head", `<html><head></head><body><link rel="alternate" type="application/rss+xml" href="/late.xml">`, "text/html", ""},
		{"a feed is not searched", `<?xml version="1.0"?><rss><channel><link rel="alternate" type="application/rss+xml" href="/x"/></channel></rss>`, "text/html", ""},
		{"no html", `plain text`, "text/plain", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := discover([]byte(tt.body), tt.ct, "https://e.org/dir/page"); got != tt.want {
				t.Errorf("discover = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFeedDiscovery(t *testing.T) {
	index, err := os.ReadFile("testdata/site/index.html")
	if err != nil {
		t.Fatal(err)
	}
	atom, err := os.ReadFile("testdata/atom.xml")
	if err != nil {
		t.Fatal(err)
	}
	rss, err := os.ReadFile("testdata/rss.xml")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/blog/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(index)
	})
	mux.HandleFunc("/blog/atom.xml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/atom+xml")
		w.Write(atom)
	})
	mux.HandleFunc("/loop/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<html><head><link rel="alternate" type="application/rss+xml" href="/loop/again/"></head></html>`))
	})
	mux.HandleFunc("/dead/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<!doctype html><html><head><link rel="alternate" type="application/rss+xml" href="/gone.xml"></head></html>`))
	})
	mux.HandleFunc("/rss-as-html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html") // a misconfigured server
		w.Write(rss)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		name     string
		path     string
		wantN    int
		wantURL  string
		wantErrs []string
	}{
		{name: "page advertises atom", path: "/blog/", wantN: 2, wantURL: srv.URL + "/blog/atom.xml"},
		{name: "feed served as text/html", path: "/rss-as-html", wantN: 3, wantURL: srv.URL + "/rss-as-html"},
		{name: "one hop only", path: "/loop/", wantErrs: []string{"feed D: " + srv.URL + "/loop/again/: not a feed: got an HTML page"}},
		{name: "advertised feed missing", path: "/dead/", wantErrs: []string{"feed D: the feed advertised by " + srv.URL + "/dead/: fetch " + srv.URL + "/gone.xml: HTTP 404"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(Spec{Name: "D", Type: "feed", URL: srv.URL + tt.path, Timeout: 2 * time.Second}, Env{})
			if err != nil {
				t.Fatal(err)
			}
			got, rep, err := Check(context.Background(), src)
			if tt.wantErrs != nil {
				if err == nil {
					t.Fatalf("want an error, got %d articles", len(got))
				}
				for _, w := range tt.wantErrs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.wantN || rep.URL != tt.wantURL || rep.Status != StatusOK {
				t.Errorf("%d articles, report %+v; want %d from %s", len(got), rep, tt.wantN, tt.wantURL)
			}
		})
	}
}

func TestFeedDiscoveryCached(t *testing.T) {
	index, err := os.ReadFile("testdata/site/index.html")
	if err != nil {
		t.Fatal(err)
	}
	atom, err := os.ReadFile("testdata/atom.xml")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, etag := index, `"page"`
		if r.URL.Path == "/blog/atom.xml" {
			body, etag = atom, `"feed"`
		}
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Write(body)
	}))
	defer srv.Close()
	cache := &MemoryCache{}
	src, err := New(Spec{Name: "D", Type: "feed", URL: srv.URL + "/blog/"}, Env{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	for run, want := range []Status{StatusOK, StatusNotModified} {
		got, rep, err := Check(context.Background(), src)
		if err != nil || len(got) != 2 || rep.Status != want {
			t.Errorf("run %d: %d articles, report %+v, error %v; want 2, %q", run+1, len(got), rep, err, want)
		}
	}
	for _, k := range []string{srv.URL + "/blog/", srv.URL + "/blog/atom.xml"} {
		if _, ok, _ := cache.GetDocument(context.Background(), k); !ok {
			t.Errorf("nothing cached under %q", k)
		}
	}
}
