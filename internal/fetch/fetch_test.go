package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestGet(t *testing.T) {
	latin1 := []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<rss><title>Caf\xe9</title></rss>")
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
		w.Header().Set("ETag", `"v1"`)
		fmt.Fprint(w, "<rss>café</rss>")
	})
	mux.HandleFunc("/ua", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.UserAgent()) })
	mux.HandleFunc("/latin1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		w.Write(latin1)
	})
	mux.HandleFunc("/latin1-header", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=iso-8859-1")
		w.Write([]byte("<p>Caf\xe9</p>"))
	})
	mux.HandleFunc("/gzip", func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			http.Error(w, "want gzip", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		fmt.Fprint(zw, "compressed body")
		zw.Close()
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/404", http.NotFound)
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(bytes.Repeat([]byte("x"), 2048)) })
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 4 {
			w.Write(bytes.Repeat([]byte("x"), 512))
			w.(http.Flusher).Flush() // no Content-Length: the cap must hold while reading
		}
	})
	mux.HandleFunc("/exact", func(w http.ResponseWriter, r *http.Request) { w.Write(bytes.Repeat([]byte("x"), 1024)) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/slow-body", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("start"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c := New(Options{UserAgent: "digest-test/1", MaxBytes: 1024, Timeout: 300 * time.Millisecond, MaxRedirects: 3})

	tests := []struct {
		path     string
		wantBody string
		wantErr  []string // substrings of the error
		errIs    error
	}{
		{path: "/ok", wantBody: "<rss>café</rss>"},
		{path: "/ua", wantBody: "digest-test/1"},
		{path: "/latin1", wantBody: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss><title>Café</title></rss>"},
		{path: "/latin1-header", wantBody: "<p>Café</p>"},
		{path: "/gzip", wantBody: "compressed body"},
		{path: "/redirect", wantBody: "<rss>café</rss>"},
		{path: "/exact", wantBody: strings.Repeat("x", 1024)},
		{path: "/loop", wantErr: []string{"/loop", "stopped after 3 redirects"}},
		{path: "/404", wantErr: []string{"/404", "HTTP 404 Not Found"}},
		{path: "/500", wantErr: []string{"/500", "HTTP 500 Internal Server Error"}},
		{path: "/big", wantErr: []string{"/big", "over the 1 KiB cap"}, errIs: ErrTooLarge},
		{path: "/big-chunked", wantErr: []string{"/big-chunked", "over the 1 KiB cap"}, errIs: ErrTooLarge},
		{path: "/slow", wantErr: []string{"/slow", "timed out after 300ms"}, errIs: context.DeadlineExceeded},
		{path: "/slow-body", wantErr: []string{"/slow-body", "timed out after 300ms"}, errIs: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			start := time.Now()
			resp, err := c.Get(context.Background(), srv.URL+tt.path)
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("Get took %s", d)
			}
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Get(%s) = %q, want an error", tt.path, resp.Body)
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
				t.Fatalf("Get(%s): %v", tt.path, err)
			}
			if string(resp.Body) != tt.wantBody {
				t.Errorf("body = %q, want %q", resp.Body, tt.wantBody)
			}
			if resp.Status != http.StatusOK {
				t.Errorf("status = %d", resp.Status)
			}
		})
	}

	t.Run("response fields", func(t *testing.T) {
		resp, err := c.Get(context.Background(), srv.URL+"/redirect")
		if err != nil {
			t.Fatal(err)
		}
		if resp.URL != srv.URL+"/ok" {
			t.Errorf("URL = %q, want the final %q", resp.URL, srv.URL+"/ok")
		}
		if resp.ContentType != "application/rss+xml; charset=utf-8" || resp.ETag != `"v1"` {
			t.Errorf("ContentType = %q, ETag = %q", resp.ContentType, resp.ETag)
		}
	})

	t.Run("status error", func(t *testing.T) {
		_, err := c.Get(context.Background(), srv.URL+"/404")
		var se *StatusError
		if !errors.As(err, &se) || se.Code != 404 {
			t.Errorf("error %v: want a *StatusError with code 404", err)
		}
	})

	t.Run("caller cancels", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Get(ctx, srv.URL+"/ok")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v: want context.Canceled", err)
		}
	})
}

func TestGetBadURL(t *testing.T) {
	c := New(Options{})
	for _, u := range []string{"file:///etc/passwd", "ftp://example.com/x", "http://", "::nope"} {
		t.Run(u, func(t *testing.T) {
			_, err := c.Get(context.Background(), u)
			if err == nil || !strings.Contains(err.Error(), u) {
				t.Errorf("Get(%q) error = %v, want one naming the URL", u, err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := New(Options{})
	if c.maxBytes != 10<<20 || c.timeout != 20*time.Second || c.userAgent == "" {
		t.Errorf("defaults: maxBytes %d, timeout %s, UA %q", c.maxBytes, c.timeout, c.userAgent)
	}
	if got := c.tooLarge().Error(); !strings.Contains(got, "over the 10 MiB cap") {
		t.Errorf("tooLarge() = %q", got)
	}
}

func TestNoRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			http.Redirect(w, r, "/b", http.StatusMovedPermanently)
			return
		}
		fmt.Fprint(w, "b")
	}))
	defer srv.Close()
	_, err := New(Options{MaxRedirects: -1}).Get(context.Background(), srv.URL+"/a")
	if err == nil || !strings.Contains(err.Error(), "stopped after 0 redirects") {
		t.Errorf("err = %v", err)
	}
}

// roundTripFunc lets a test stand in for the network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransportOption(t *testing.T) {
	c := New(Options{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{
			StatusCode: 200, Status: "200 OK", Request: r,
			Header: http.Header{"Content-Type": {"text/plain; charset=windows-1252"}},
			Body:   ioNopCloser("price: 5\x80"),
		}, nil
	})})
	resp, err := c.Get(context.Background(), "https://feeds.invalid/x")
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "price: 5€" {
		t.Errorf("body = %q", resp.Body)
	}
}

func TestGetIf(t *testing.T) {
	const etag, lastMod = `"v2"`, "Mon, 17 Jun 2024 08:00:00 GMT"
	var gotINM, gotIMS string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotINM, gotIMS = r.Header.Get("If-None-Match"), r.Header.Get("If-Modified-Since")
		if r.URL.Path == "/always304" || gotINM == etag || (gotINM == "" && gotIMS == lastMod) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", lastMod)
		fmt.Fprint(w, "<rss/>")
	}))
	defer srv.Close()
	c := New(Options{Timeout: 2 * time.Second})

	tests := []struct {
		name         string
		path         string
		v            Validators
		wantNotMod   bool
		wantErr      string
		wantINM      string
		wantIMS      string
		wantETag     string
		wantLastMod  string
		wantBodySize int
	}{
		{name: "unconditional", path: "/", wantETag: etag, wantLastMod: lastMod, wantBodySize: 6},
		{name: "stale etag", path: "/", v: Validators{ETag: `"v1"`}, wantINM: `"v1"`, wantETag: etag, wantLastMod: lastMod, wantBodySize: 6},
		{name: "etag matches", path: "/", v: Validators{ETag: etag}, wantNotMod: true, wantINM: etag, wantETag: etag},
		{name: "date matches", path: "/", v: Validators{LastModified: lastMod}, wantNotMod: true, wantIMS: lastMod, wantLastMod: lastMod},
		{name: "both sent", path: "/", v: Validators{ETag: etag, LastModified: lastMod}, wantNotMod: true, wantINM: etag, wantIMS: lastMod, wantETag: etag, wantLastMod: lastMod},
		{name: "304 to an unconditional request", path: "/always304", wantErr: "HTTP 304"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.GetIf(context.Background(), srv.URL+tt.path, tt.v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if gotINM != tt.wantINM || gotIMS != tt.wantIMS {
				t.Errorf("sent If-None-Match %q, If-Modified-Since %q; want %q, %q", gotINM, gotIMS, tt.wantINM, tt.wantIMS)
			}
			if resp.NotModified != tt.wantNotMod || len(resp.Body) != tt.wantBodySize {
				t.Errorf("NotModified = %v, body %q; want %v, %d bytes", resp.NotModified, resp.Body, tt.wantNotMod, tt.wantBodySize)
			}
			if resp.ETag != tt.wantETag || resp.LastModified != tt.wantLastMod {
				t.Errorf("validators = %q, %q; want %q, %q", resp.ETag, resp.LastModified, tt.wantETag, tt.wantLastMod)
			}
		})
	}
}
