package preview_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/preview"
	"github.com/digest/digest/internal/render"
	"github.com/digest/digest/internal/source"
)

func TestParseMessage(t *testing.T) {
	comp, err := mail.NewComposer(mail.Options{ListName: "Wöchentlich", From: "Wöchentlich <news@example.org>",
		BaseURL: "https://news.example.org", Secret: []byte("k"), Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("Ein langer Satz mit Umlauten: äöü. ", 20)
	r := render.NewRendered("Grüße aus dem Hafen — Ausgabe 7",
		"<html><body><p>Hallo "+render.TokenName+"</p><p>"+long+"</p><a href=\""+render.TokenUnsubscribeURL+"\">Abmelden</a></body></html>",
		"Hallo "+render.TokenName+"\n\n"+long+"\n")
	p, err := comp.Prepare(r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.Build(nil, ledger.Recipient{IssueID: "2026-11-30", SubscriberID: 3, Email: "jo@example.org", Name: "Jö Bär"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := preview.ParseMessage(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "Grüße aus dem Hafen — Ausgabe 7" {
		t.Errorf("Subject %q", got.Subject)
	}
	if to := got.Get("to"); to != `Jö Bär <jo@example.org>` {
		t.Errorf("To %q", to)
	}
	if !strings.HasPrefix(got.Get("List-Unsubscribe"), "<https://news.example.org/u/") {
		t.Errorf("List-Unsubscribe %q", got.Get("List-Unsubscribe"))
	}
	if !strings.Contains(got.Header, "Content-Type: multipart/alternative;\n boundary=") {
		t.Errorf("the header block is not verbatim:\n%s", got.Header)
	}
	if !strings.Contains(got.Text, "Hallo Jö Bär\n") || !strings.Contains(got.Text, long) {
		t.Errorf("text part %q", got.Text)
	}
	if !strings.Contains(got.HTML, "<p>Hallo Jö Bär</p><p>"+long) || !strings.Contains(got.HTML, `href="https://news.example.org/u/`) {
		t.Errorf("HTML part %q", got.HTML)
	}
	if got.Size != len(m.Data) {
		t.Errorf("Size %d, want %d", got.Size, len(m.Data))
	}
}

func TestParseMessageForms(t *testing.T) {
	tests := []struct {
		name, raw  string
		text, html string
		err        string
	}{
		{name: "single base64 HTML part", raw: "Subject: x\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\nPHA+aMOpPC9w\r\nPg==\r\n", html: "<p>hé</p>"},
		{name: "plain text without Content-Type", raw: "Subject: x\n\nplain\n", text: "plain\n"},
		{name: "quoted-printable single part", raw: "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9=\r\nllo", text: "héllo"},
		{name: "no blank line", raw: "Subject: x\r\n", err: "no blank line"},
		{name: "unknown encoding", raw: "Content-Transfer-Encoding: x-uuencode\r\n\r\nbody", err: "x-uuencode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := preview.ParseMessage([]byte(tt.raw))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Text != tt.text || got.HTML != tt.html {
				t.Errorf("text %q html %q", got.Text, got.HTML)
			}
		})
	}
}

func TestScanHTML(t *testing.T) {
	spacer := strings.Repeat("&#847;&zwnj;&nbsp;", 60)
	tests := []struct {
		name      string
		html      string
		links     []string
		missing   []string // src of images without alt
		inboxText string
	}{
		{
			name: "preheader then padding: the inbox shows only the preheader",
			html: `<html><head><title>Subject</title><style>p{color:red}</style></head><body>` +
				`<div style="display:none">Ferry back; market opens.` + spacer + `</div><h1>The Weekly</h1></body></html>`,
			inboxText: "Ferry back; market opens.",
		},
		{
			name:      "no preheader: the body's first text, cut",
			html:      `<body><p>` + strings.Repeat("word ", 40) + `</p></body>`,
			inboxText: strings.TrimSpace(strings.Repeat("word ", 28)),
		},
		{
			name: "links once each, in order; images with and without alt",
			html: `<body><a href="https://a.example/1">a</a><a href=" https://a.example/2 ">b</a><a href="https://a.example/1">a again</a>` +
				`<img src="x.png" alt="X"><img src="decorative.png" alt=""><img src="bare.png"><a>no href</a></body>`,
			links:     []string{"https://a.example/1", "https://a.example/2"},
			missing:   []string{"bare.png"},
			inboxText: "a b a again no href",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := preview.ScanHTML(tt.html)
			if diff := cmp.Diff(tt.links, s.Links); diff != "" {
				t.Errorf("links (-want +got):\n%s", diff)
			}
			var missing []string
			for _, img := range s.MissingAlt() {
				missing = append(missing, img.Src)
			}
			if diff := cmp.Diff(tt.missing, missing); diff != "" {
				t.Errorf("images without alt (-want +got):\n%s", diff)
			}
			if s.InboxText != tt.inboxText {
				t.Errorf("inbox text %q, want %q", s.InboxText, tt.inboxText)
			}
		})
	}
}

func TestForceDark(t *testing.T) {
	tests := []struct {
		name, in  string
		want      []string // in the result
		wantNot   []string
		hasStyles bool
	}{
		{
			name:      "the dark query always matches, the light one never",
			in:        `<html><head><style>.a{color:#000} @media (prefers-color-scheme: dark) { .a { color: #fff !important; } } @media (prefers-color-scheme:light){.b{color:red}}</style></head><body></body></html>`,
			want:      []string{"@media (min-width: 0px) { .a { color: #fff !important; } }", "@media (max-width: 0px){.b{color:red}}", `<style>:root { color-scheme: dark; }</style></head>`},
			wantNot:   []string{"prefers-color-scheme"},
			hasStyles: true,
		},
		{
			name:      "other conditions of the query stay",
			in:        `<head><STYLE type="text/css">@media screen and (max-width: 620px) and (PREFERS-COLOR-SCHEME : DARK) {.x{y:z}}</STYLE></head>`,
			want:      []string{"@media screen and (max-width: 620px) and (min-width: 0px) {.x{y:z}}"},
			hasStyles: true,
		},
		{
			name:    "text outside <style> is not touched; no dark styles",
			in:      `<body><p>(prefers-color-scheme: dark)</p></body>`,
			want:    []string{"<p>(prefers-color-scheme: dark)</p>", `<style>:root { color-scheme: dark; }</style><body>`},
			wantNot: []string{"min-width"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := preview.HasDarkStyles(tt.in); got != tt.hasStyles {
				t.Errorf("HasDarkStyles = %v", got)
			}
			out := preview.ForceDark(tt.in)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("result lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("result has %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestLinkChecker(t *testing.T) {
	var mu sync.Mutex
	hits := map[string][]string{} // path -> methods
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path] = append(hits[r.URL.Path], r.Method)
		mu.Unlock()
		switch r.URL.Path {
		case "/ok":
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/gone":
			http.NotFound(w, r)
		case "/nohead":
			if r.Method == http.MethodHead {
				w.WriteHeader(http.StatusMethodNotAllowed)
			}
		case "/nohead-gone":
			if r.Method == http.MethodHead {
				w.WriteHeader(http.StatusNotImplemented)
				return
			}
			w.WriteHeader(http.StatusGone)
		case "/hang":
			<-r.Context().Done()
		}
	}))
	defer srv.Close()
	var notified atomic.Int32
	c := preview.NewLinkChecker(preview.LinkOptions{Timeout: 200 * time.Millisecond, Concurrency: 2}, func() { notified.Add(1) })
	u := srv.URL
	links := []string{u + "/ok", u + "/ok#section", u + "/moved", u + "/gone", u + "/nohead", u + "/nohead-gone", u + "/hang",
		"mailto:editor@example.org", "#top", "/relative", "http://"}
	c.Check(context.Background(), links)
	c.Check(context.Background(), links) // a second look asks nothing again
	c.Wait()
	type row struct {
		URL      string
		State    preview.LinkState
		Status   int
		Method   string
		Location string
	}
	var got []row
	details := map[string]string{}
	for _, r := range c.Results(links) {
		got = append(got, row{r.URL, r.State, r.Status, r.Method, r.Location})
		details[r.URL] = r.Detail
	}
	want := []row{
		{u + "/ok", preview.LinkOK, 200, "HEAD", ""},
		{u + "/moved", preview.LinkRedirect, 302, "HEAD", u + "/ok"},
		{u + "/gone", preview.LinkBroken, 404, "HEAD", ""},
		{u + "/nohead", preview.LinkOK, 200, "GET", ""},
		{u + "/nohead-gone", preview.LinkBroken, 410, "GET", ""},
		{u + "/hang", preview.LinkBroken, 0, "HEAD", ""},
		{"mailto:editor@example.org", preview.LinkSkipped, 0, "", ""},
		{"", preview.LinkSkipped, 0, "", ""}, // "#top": an anchor, its fragment dropped
		{"/relative", preview.LinkBroken, 0, "", ""},
		{"http://", preview.LinkBroken, 0, "", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if !strings.Contains(details[u+"/hang"], "no answer within 200ms") {
		t.Errorf("hang detail %q", details[u+"/hang"])
	}
	mu.Lock()
	if m := hits["/ok"]; len(m) != 1 {
		t.Errorf("/ok asked %d times (%v), want once", len(m), m)
	}
	if m := hits["/nohead"]; strings.Join(m, ",") != "HEAD,GET" {
		t.Errorf("/nohead asked %v, want HEAD then GET", m)
	}
	mu.Unlock()
	if notified.Load() == 0 {
		t.Error("no notice when the checks finished")
	}
	c.Reset()
	if r := c.Results([]string{u + "/ok"}); r[0].State != preview.LinkChecking {
		t.Errorf("after Reset: %v", r[0].State)
	}
	c.Check(context.Background(), []string{u + "/ok"})
	c.Wait()
	mu.Lock()
	if m := hits["/ok"]; len(m) != 2 {
		t.Errorf("after Reset /ok was asked %d times in all, want 2", len(m))
	}
	mu.Unlock()
}

// fixedSource returns the same articles, or error, and counts fetches.
type fixedSource struct {
	fetches atomic.Int32
	err     error
	block   chan struct{} // when set, Fetch waits for it
}

func (s *fixedSource) Name() string { return "Fixed" }

func (s *fixedSource) Fetch(ctx context.Context) ([]article.Article, error) {
	s.fetches.Add(1)
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return []article.Article{{ID: "a", Title: "A"}}, s.err
}

func TestSourceCache(t *testing.T) {
	ctx := context.Background()
	c := preview.NewSourceCache(func() time.Time { return testNow })

	ok := &fixedSource{}
	for range 3 {
		arts, rep, err := source.Check(ctx, c.Wrap("ok", ok))
		if err != nil || len(arts) != 1 || rep.Status != source.StatusOK {
			t.Fatalf("cached fetch: %v %v %v", arts, rep, err)
		}
	}
	if n := ok.fetches.Load(); n != 1 {
		t.Errorf("three fetches reached the source %d times, want 1", n)
	}
	if at := c.Fetched()["Fixed"]; !at.Equal(testNow) {
		t.Errorf("Fetched = %v", c.Fetched())
	}

	failing := &fixedSource{err: errors.New("connection refused")}
	for range 2 {
		if _, rep, err := source.Check(ctx, c.Wrap("failing", failing)); err == nil || rep.Status != source.StatusError {
			t.Fatalf("a failure should be kept: %v %v", rep, err)
		}
	}
	if n := failing.fetches.Load(); n != 1 {
		t.Errorf("a failing source was fetched %d times before Clear, want 1", n)
	}

	c.Clear()
	source.Check(ctx, c.Wrap("ok", ok))
	if n := ok.fetches.Load(); n != 2 {
		t.Errorf("after Clear: %d fetches, want 2", n)
	}

	// Concurrent rebuilds share one fetch.
	slow := &fixedSource{block: make(chan struct{})}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			source.Check(ctx, c.Wrap("slow", slow))
		}()
	}
	close(slow.block)
	wg.Wait()
	if n := slow.fetches.Load(); n != 1 {
		t.Errorf("8 concurrent fetches reached the source %d times, want 1", n)
	}

	// A fetch cut short by its caller is not kept.
	cut := &fixedSource{block: make(chan struct{})}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	source.Check(cctx, c.Wrap("cut", cut))
	close(cut.block)
	if _, _, err := source.Check(ctx, c.Wrap("cut", cut)); err != nil {
		t.Fatal(err)
	}
	if n := cut.fetches.Load(); n != 2 {
		t.Errorf("a cancelled fetch was kept: %d fetches, want 2", n)
	}
}
