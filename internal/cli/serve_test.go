package cli_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digest/digest/internal/cli"
)

// lineWriter hands each line written to it to a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line)
			return len(p), nil
		}
		select {
		case l.lines <- strings.TrimSpace(line):
		default:
		}
	}
}

// startServe runs `digest serve` in-process and returns its address; it
// stops when the test ends.
func (w *world) startServe() string {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lineWriter{lines: make(chan string, 16)}
	done := make(chan int, 1)
	go func() {
		var errb bytes.Buffer
		err := cli.Run(ctx, []string{"serve", "--config", w.config}, out, &errb)
		if err != nil {
			w.t.Logf("serve: %v\n%s", err, errb.String())
		}
		done <- cli.ExitCode(err)
	}()
	w.t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			w.t.Errorf("serve exited %d", code)
		}
	})
	addrRE := regexp.MustCompile(`on http://(\S+) `)
	select {
	case line := <-out.lines:
		m := addrRE.FindStringSubmatch(line)
		if m == nil {
			w.t.Fatalf("serve printed %q", line)
		}
		return m[1]
	case code := <-done:
		w.t.Fatalf("serve exited %d before listening", code)
	}
	return ""
}

// local points a link from a message (base_url) at the server under test.
func localURL(t *testing.T, link, addr string) string {
	t.Helper()
	u, err := url.Parse(strings.Trim(link, "<>"))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// waitFor polls until the SMTP server has a message for rcpt: the web
// handlers mail in the background. The bound is far above what it takes.
func (w *world) waitFor(rcpt string) []byte {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if got := w.smtp.Received(rcpt); len(got) > 0 {
			return got[len(got)-1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.t.Fatalf("no message for %s", rcpt)
	return nil
}

func postForm(t *testing.T, target string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(target, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, target string) (int, string) {
	t.Helper()
	resp, err := http.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeUnsubscribeThenNextIssue unsubscribes readers through the
// one-click URL of a received message's List-Unsubscribe header (urlencoded
// and multipart), signs up a new reader through the form and the mailed
// confirmation, and checks that the next issue skips exactly the readers
// who left and reaches the new one.
func TestServeUnsubscribeThenNextIssue(t *testing.T) {
	t.Parallel()
	local := filepath.Join(t.TempDir(), "local")
	if err := os.MkdirAll(local, 0o755); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, 4, "  - {name: Local, type: markdown, path: "+local+", section: Local}\nserver: {listen: \"127.0.0.1:0\"}\nsecret: e2e-secret")
	addr := w.startServe()

	if code, out, errOut := w.run("send", "--now", issueNow); code != 0 {
		t.Fatalf("send: exit %d\n%s\n%s", code, out, errOut)
	}
	unsubURL := func(rcpt string) string {
		m, _, _ := parts(t, w.smtp.Received(rcpt)[0])
		return localURL(t, m.Header.Get("List-Unsubscribe"), addr)
	}

	// A scanner's GET changes nothing.
	if code, body := get(t, unsubURL(w.emails[2])); code != 200 || !strings.Contains(body, w.emails[2]) {
		t.Fatalf("GET: %d\n%s", code, body)
	}
	// One-click, urlencoded.
	if code, body := postForm(t, unsubURL(w.emails[0]), url.Values{"List-Unsubscribe": {"One-Click"}}); code != 200 {
		t.Fatalf("one-click POST: %d\n%s", code, body)
	}
	// One-click, multipart.
	var mb bytes.Buffer
	mw := multipart.NewWriter(&mb)
	mw.WriteField("List-Unsubscribe", "One-Click")
	mw.Close()
	resp, err := http.Post(unsubURL(w.emails[1]), mw.FormDataContentType(), &mb)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("multipart one-click: %d", resp.StatusCode)
	}
	// A forged token changes nothing.
	forged := unsubURL(w.emails[3])
	forged = forged[:len(forged)-4] + "AAAA"
	if code, _ := postForm(t, forged, url.Values{"List-Unsubscribe": {"One-Click"}}); code != 404 {
		t.Errorf("forged token: %d, want 404", code)
	}

	// A new reader signs up and confirms through the mailed link.
	code, body := postForm(t, "http://"+addr+"/subscribe", url.Values{"email": {"nia@example.org"}, "name": {"Nia"}, "topic": {"local"}})
	if code != 200 || !strings.Contains(body, "Check your inbox") {
		t.Fatalf("sign-up: %d\n%s", code, body)
	}
	_, text, _ := parts(t, w.waitFor("nia@example.org"))
	link := regexp.MustCompile(`http://127\.0\.0\.1:9/confirm/\S+`).FindString(text)
	if link == "" {
		t.Fatalf("no confirmation link in:\n%s", text)
	}
	_, list, _ := w.run("subscribers", "list", "--status", "pending")
	if !strings.Contains(list, "nia@example.org,Nia,pending,local,") {
		t.Errorf("the sign-up is not listed as pending:\n%s", list)
	}
	if code, _ := get(t, localURL(t, link, addr)); code != 200 {
		t.Fatalf("GET confirm: %d", code)
	}
	if code, body := postForm(t, localURL(t, link, addr), url.Values{}); code != 200 || !strings.Contains(body, "You are subscribed") {
		t.Fatalf("POST confirm: %d\n%s", code, body)
	}

	// The next issue, a week later with a new story.
	write(t, filepath.Join(local, "later.md"), "---\ntitle: \"Later story\"\ndate: 2026-12-05T08:00:00Z\n---\nBody.\n")
	before := w.smtp.Counts()
	if code, out, errOut := w.run("send", "--now", "2026-12-07T08:00:00Z"); code != 0 {
		t.Fatalf("second send: exit %d\n%s\n%s", code, out, errOut)
	}
	after := w.smtp.Counts()
	for rcpt, want := range map[string]int{w.emails[0]: 0, w.emails[1]: 0, w.emails[2]: 1, w.emails[3]: 1} {
		if got := after[rcpt] - before[rcpt]; got != want {
			t.Errorf("%s got %d messages of the next issue, want %d", rcpt, got, want)
		}
	}
	got := w.smtp.Received("nia@example.org")
	if len(got) != 2 {
		t.Fatalf("nia@example.org has %d messages, want the confirmation and the issue", len(got))
	}
	if _, text, _ := parts(t, got[1]); !strings.Contains(text, "Later story") {
		t.Errorf("the new reader's issue lacks the new story:\n%s", text)
	}
}
