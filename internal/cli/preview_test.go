package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digest/digest/internal/cli"
	"github.com/digest/digest/internal/smtptest"
)

// previewSite serves testdata/preview/feed.xml and answers the links of
// the issue (ok: 200, gone: 404, u: the unsubscribe page), so that the
// preview's link checks stay on loopback.
func previewSite(t *testing.T) *httptest.Server {
	t.Helper()
	feed, err := os.ReadFile(filepath.Join("testdata", "preview", "feed.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch seg, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/"); seg {
		case "feed.xml":
			w.Write(bytes.ReplaceAll(feed, []byte("BASE_URL"), []byte(srv.URL)))
		case "ok", "u":
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// previewWorld is a newsletter for the preview: the feed above, a folder of
// notes, a templates folder, an SMTP server for test sends.
type previewWorld struct {
	dir, config, notes, templates string
	site                          *httptest.Server
	smtp                          *smtptest.Server
}

func newPreviewWorld(t *testing.T) *previewWorld {
	t.Helper()
	w := &previewWorld{dir: t.TempDir(), site: previewSite(t), smtp: smtptest.New(t)}
	w.notes, w.templates = filepath.Join(w.dir, "notes"), filepath.Join(w.dir, "templates")
	for _, d := range []string{w.notes, w.templates} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	note, err := os.ReadFile(filepath.Join("testdata", "preview", "note.md"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(w.notes, "choir.md"), strings.ReplaceAll(string(note), "BASE_URL", w.site.URL))
	w.config = filepath.Join(w.dir, "config.yaml")
	write(t, w.config, fmt.Sprintf(`newsletter:
  name: Preview Weekly
  from: "Preview Weekly <digest@example.org>"
  base_url: %[1]s
digest: {window: 168h}
sources:
  - {name: Desk, type: feed, url: "%[1]s/feed.xml", section: World}
  - {name: Notes, type: markdown, path: notes, section: Town}
templates: templates
smtp: {host: 127.0.0.1, port: %[2]d, tls: none}
delivery: {transport: smtp}
`, w.site.URL, w.smtp.Port()))
	return w
}

// syncBuffer is an output stream read while the command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs digest preview until the test ends and returns the address it
// prints.
func (w *previewWorld) start(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, stdout := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- cli.Run(ctx, append([]string{"preview", "--config", w.config, "--now", issueNow, "--addr", "127.0.0.1:0"}, args...), stdout, stderr)
		stdout.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("digest preview printed no address: %v\nstderr:\n%s\nerr: %v", err, stderr.String(), <-done)
	}
	go io.Copy(io.Discard, out)
	t.Cleanup(func() {
		cancel()
		if err := <-done; cli.ExitCode(err) != 0 {
			t.Errorf("digest preview ended with %v (exit %d)\nstderr:\n%s", err, cli.ExitCode(err), stderr.String())
		}
	})
	for _, f := range strings.Fields(line) {
		if strings.HasPrefix(f, "http://") {
			return f
		}
	}
	t.Fatalf("no address in %q", line)
	return ""
}

// page fetches the preview's page as text.
func page(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d\n%s", u, resp.StatusCode, b)
	}
	return html.UnescapeString(string(b))
}

// waitPage fetches the page until it has want, or a generous bound passes.
func waitPage(t *testing.T, u, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		body := page(t, u)
		if strings.Contains(body, want) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the page still lacks %q:\n%s", want, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPreviewCommand(t *testing.T) {
	t.Parallel()
	w := newPreviewWorld(t)
	var out, errb bytes.Buffer
	if err := cli.Run(context.Background(), []string{"subscribers", "add", "ann@example.org", "--name", "Ann Reader", "--config", w.config}, &out, &errb); err != nil {
		t.Fatalf("subscribers add: %v\n%s", err, errb.String())
	}
	base := w.start(t)

	// The issue as send would build it, through the real pipeline.
	body := waitPage(t, base, "Ferry timetable changes for winter")
	for _, want := range []string{
		"Bridge repairs finish early", "Choir concert in the town hall", // stories
		"Issue <strong>2026-11-30</strong> (#1)", // the number it would get
		"List-Unsubscribe: <" + w.site.URL + "/u/",
		"<strong>before the window</strong>", // Last summer's fair
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	body = waitPage(t, base, "broken (404)")
	if !strings.Contains(body, w.site.URL+"/gone/bridge") {
		t.Error("the broken link is not named")
	}

	// View as a subscriber: their name in the message's To.
	if body := page(t, base+"?as=ann@example.org"); !strings.Contains(body, `"Ann Reader" <ann@example.org>`) {
		t.Error("view as ann does not show her message")
	}

	// Send test: through the configured transport, [TEST] subject, no
	// archive, no ledger.
	resp, err := http.PostForm(base+"send-test", url.Values{"to": {"editor@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := w.smtp.Received("editor@example.org")
	if len(got) != 1 || !bytes.Contains(got[0], []byte("Subject: [TEST] ")) {
		t.Fatalf("test send: %d messages at the SMTP server", len(got))
	}
	if !strings.Contains(page(t, base), "Test copy sent to editor@example.org") {
		t.Error("the page does not confirm the test send")
	}
	if _, err := os.Stat(filepath.Join(w.dir, "digests", "2026-11-30")); !os.IsNotExist(err) {
		t.Errorf("the preview archived the issue (%v)", err)
	}

	// A note saved (by rename) appears without a restart.
	tmp := filepath.Join(w.notes, ".choir2.md.tmp")
	write(t, tmp, "---\ntitle: \"Harbour lights switched on\"\ndate: 2026-11-29T20:00:00Z\nurl: "+w.site.URL+"/ok/lights\n---\nBright.\n")
	if err := os.Rename(tmp, filepath.Join(w.notes, "lights.md")); err != nil {
		t.Fatal(err)
	}
	waitPage(t, base, "Harbour lights switched on")

	// A broken template: its file and line on the page, the last good
	// build below, the server still up.
	write(t, filepath.Join(w.templates, "article.html.tmpl"), "{{define \"article\"}}\n{{.Title}\n{{end}}\n")
	body = waitPage(t, base, "The build failed")
	if !strings.Contains(body, filepath.Join(w.templates, "article.html.tmpl")) || !strings.Contains(body, "article.html.tmpl:2") {
		t.Errorf("the error does not name the file and line:\n%s", body)
	}
	if !strings.Contains(body, "Harbour lights switched on") {
		t.Error("the last good build is gone")
	}
	// A broken config too.
	cfg, _ := os.ReadFile(w.config)
	write(t, w.config, strings.Replace(string(cfg), "window: 168h", "windw: 168h", 1))
	waitPage(t, base, "windw")
	write(t, w.config, string(cfg))
	write(t, filepath.Join(w.templates, "article.html.tmpl"), "{{define \"article\"}}\n<p>{{.Title}}</p>\n{{end}}\n")
	deadline := time.Now().Add(30 * time.Second)
	for strings.Contains(page(t, base), "The build failed") {
		if time.Now().After(deadline) {
			t.Fatal("after 30s the fixed files still show an error")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPreviewNeedsATokenOffLoopback(t *testing.T) {
	w := newPreviewWorld(t)
	var out, errb bytes.Buffer
	err := cli.Run(context.Background(), []string{"preview", "--config", w.config, "--addr", "0.0.0.0:0"}, &out, &errb)
	if cli.ExitCode(err) != cli.ExitUsage || !strings.Contains(errb.String(), "--token") {
		t.Fatalf("exit %d, stderr:\n%s", cli.ExitCode(err), errb.String())
	}
	t.Setenv("DIGEST_PREVIEW_TOKEN", "from-env")
	base := w.start(t)
	if !strings.HasSuffix(base, "/?token=from-env") {
		t.Fatalf("printed %q, want the address with its token", base)
	}
	resp, err := http.Get(strings.TrimSuffix(base, "?token=from-env"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the token: %d", resp.StatusCode)
	}
	// The token once in the query, then the cookie it sets.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := browser.Get(base)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Request.URL.RawQuery != "" {
			t.Fatalf("with the token: %d at %s", resp.StatusCode, resp.Request.URL)
		}
		if strings.Contains(string(b), "Ferry timetable changes for winter") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s no issue on the page:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPreviewTestSendToFiles(t *testing.T) {
	t.Parallel()
	w := newPreviewWorld(t)
	cfg, _ := os.ReadFile(w.config)
	write(t, w.config, strings.Replace(string(cfg), "delivery: {transport: smtp}", "delivery: {transport: file, outbox: outbox}", 1))
	base := w.start(t)
	waitPage(t, base, "Ferry timetable changes for winter")
	resp, err := http.PostForm(base+"send-test", url.Values{"to": {"editor@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	files, _ := filepath.Glob(filepath.Join(w.dir, "outbox", "2026-11-30", "*", "*.eml"))
	if len(files) != 1 || filepath.Base(filepath.Dir(files[0])) != "test" {
		t.Fatalf("outbox holds %q, want one test copy in the test folder", files)
	}
	if body := page(t, base); !strings.Contains(body, "Test copy sent to editor@example.org") || !strings.Contains(body, filepath.Join("2026-11-30", "test")) {
		t.Error("the page does not say where the test copy went")
	}
}

// TestPreviewOnEveryInterfacePrintsAUsableURL: --addr 0.0.0.0 prints a
// loopback URL a browser opens (not http://[::]:…), and it answers.
func TestPreviewOnEveryInterfacePrintsAUsableURL(t *testing.T) {
	w := newPreviewWorld(t)
	t.Setenv("DIGEST_PREVIEW_TOKEN", "tok")
	base := w.start(t, "--addr", "0.0.0.0:0")
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/?token=tok") {
		t.Fatalf("printed %q, want http://127.0.0.1:PORT/?token=tok", base)
	}
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(base) // the token sets a cookie and redirects
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %d", base, resp.StatusCode)
	}
}
