package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/digest/digest/internal/cli"
	"github.com/digest/digest/internal/smtptest"
)

const issueNow = "2026-11-30T08:00:00Z"

// world is one test installation: feeds over HTTP, notes on disk, a CSV of
// subscribers, an SMTP server and a config file tying them together.
type world struct {
	t      *testing.T
	dir    string
	config string
	smtp   *smtptest.Server
	feeds  *httptest.Server
	emails []string
}

func newWorld(t *testing.T, subscribers int, extraSources string) *world {
	t.Helper()
	return newWorldSMTP(t, subscribers, extraSources)
}

// newWorldSMTP is newWorld with options for its SMTP server.
func newWorldSMTP(t *testing.T, subscribers int, extraSources string, smtpOpts ...smtptest.Option) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir()}
	mux := http.NewServeMux()
	for path, file := range map[string]string{"/rss.xml": "rss.xml", "/atom.xml": "atom.xml", "/feed.json": "feed.json"} {
		body, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		mux.HandleFunc(path, func(rw http.ResponseWriter, _ *http.Request) { rw.Write(body) })
	}
	mux.HandleFunc("/broken.xml", func(rw http.ResponseWriter, _ *http.Request) { rw.Write([]byte("<rss><channel><item><title>oops")) })
	w.feeds = httptest.NewServer(mux)
	t.Cleanup(w.feeds.Close)
	w.smtp = smtptest.New(t, smtpOpts...)

	var csv strings.Builder
	csv.WriteString("email,name\n")
	for i := range subscribers {
		e := fmt.Sprintf("reader%02d@example.org", i)
		w.emails = append(w.emails, e)
		fmt.Fprintf(&csv, "%s,Reader %d\n", e, i)
	}
	csv.WriteString("not-an-address,Broken Row\n")
	write(t, filepath.Join(w.dir, "subscribers.csv"), csv.String())
	write(t, filepath.Join(w.dir, "intro.md"), "Welcome to *this week's* digest -- five stories.\n\n<script>alert('intro')</script>\n")

	notes, err := filepath.Abs(filepath.Join("testdata", "notes"))
	if err != nil {
		t.Fatal(err)
	}
	w.config = filepath.Join(w.dir, "config.yaml")
	write(t, w.config, fmt.Sprintf(`newsletter:
  name: Test Digest
  from: "Test Digest <digest@example.org>"
  base_url: http://127.0.0.1:9
digest:
  window: 168h
  intro: intro.md
sources:
  - {name: RSS, type: feed, url: "%[1]s/rss.xml", section: World}
  - {name: Atom, type: feed, url: "%[1]s/atom.xml", section: Nature}
  - {name: JSON, type: feed, url: "%[1]s/feed.json", section: World}
  - {name: Notes, type: markdown, path: %[2]q, section: Town}
%[4]s
subscribers_csv: subscribers.csv
smtp: {host: 127.0.0.1, port: %[3]d, tls: none, connections: 4}
delivery: {transport: smtp}
`, w.feeds.URL, notes, w.smtp.Port(), extraSources))
	return w
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs one digest command in-process and returns its exit code and output.
func (w *world) run(args ...string) (int, string, string) {
	w.t.Helper()
	return w.runWith(cli.Run, args)
}

// runNoWait is run with delivery's backoff and polling taking no time.
func (w *world) runNoWait(args ...string) (int, string, string) {
	w.t.Helper()
	return w.runWith(cli.RunWithoutWaits, args)
}

func (w *world) runWith(run func(context.Context, []string, io.Writer, io.Writer) error, args []string) (int, string, string) {
	var out, errb bytes.Buffer
	args = append(args, "--config", w.config)
	err := run(context.Background(), args, &out, &errb)
	return cli.ExitCode(err), out.String(), errb.String()
}

// parts parses a received message into its decoded text and HTML parts.
func parts(t *testing.T, raw []byte) (*mail.Message, string, string) {
	t.Helper()
	for i, line := range bytes.Split(raw, []byte("\n")) {
		if len(line) > 998 {
			t.Errorf("line %d is %d octets long", i+1, len(line))
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q, want multipart/alternative (%v)", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var types, bodies []string
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, ct)
		bodies = append(bodies, string(b))
	}
	if len(types) != 2 || types[0] != "text/plain" || types[1] != "text/html" {
		t.Fatalf("parts %q, want text/plain then text/html", types)
	}
	return m, bodies[0], bodies[1]
}

func TestSendEndToEnd(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 40, "")
	code, out, errOut := w.run("send", "--now", issueNow)
	if code != 0 {
		t.Fatalf("send exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "line 42") {
		t.Errorf("the bad CSV row is not reported with its line:\n%s", errOut)
	}

	inWindow := []string{"RSS story one", "RSS story two", "Atom story one", "JSON story one", "Note story one"}
	outside := []string{"RSS story old", "Atom story old", "JSON story future", "Note story draft", "alert(1)"}
	for _, addr := range w.emails {
		got := w.smtp.Received(addr)
		if len(got) != 1 {
			t.Fatalf("%s received %d messages, want 1", addr, len(got))
		}
		m, text, html := parts(t, got[0])
		for _, h := range []string{"Message-Id", "Date", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "Subject"} {
			if m.Header.Get(h) == "" {
				t.Errorf("%s: header %s missing", addr, h)
			}
		}
		if !strings.HasPrefix(m.Header.Get("List-Unsubscribe"), "<http://127.0.0.1:9/u/") {
			t.Errorf("List-Unsubscribe = %q", m.Header.Get("List-Unsubscribe"))
		}
		for _, title := range inWindow {
			if !strings.Contains(text, title) || !strings.Contains(html, title) {
				t.Errorf("%s: %q missing from a part", addr, title)
			}
		}
		for _, title := range outside {
			if strings.Contains(text, title) || strings.Contains(html, title) {
				t.Errorf("%s: %q must not be in the issue", addr, title)
			}
		}
		for _, part := range []string{text, html} {
			if !strings.Contains(part, "digest") || !strings.Contains(part, "five stories") || strings.Contains(part, "alert('intro')") {
				t.Errorf("%s: the editor's intro is missing or unsafe", addr)
			}
		}
		if !strings.Contains(text, addr) {
			t.Errorf("%s: text part is not personalized", addr)
		}
	}
	if n := w.smtp.Total(); n != 40 {
		t.Errorf("server accepted %d messages, want 40", n)
	}
	for _, f := range []string{"digest.html", "digest.txt", "issue.json"} {
		if _, err := os.Stat(filepath.Join(w.dir, "digests", "2026-11-30", f)); err != nil {
			t.Errorf("archive: %v", err)
		}
	}

	// A rerun sends nothing twice.
	code, out, errOut = w.run("send", "--now", issueNow)
	if code != 0 {
		t.Fatalf("rerun exit %d\n%s\n%s", code, out, errOut)
	}
	if n := w.smtp.Total(); n != 40 {
		t.Errorf("after rerun the server has %d messages, want 40", n)
	}
	if !strings.Contains(out, "already delivered") {
		t.Errorf("rerun output does not say the issue was delivered:\n%s", out)
	}

	// A week later nothing is new: the issue is empty and nothing is sent.
	code, out, _ = w.run("send", "--now", "2026-12-01T08:00:00Z")
	if code != 0 || !strings.Contains(out, "no new articles") {
		t.Errorf("next-day send: exit %d, output:\n%s", code, out)
	}
	if n := w.smtp.Total(); n != 40 {
		t.Errorf("the next issue repeated stories: server has %d messages", n)
	}

	// status reports the ledger.
	code, out, _ = w.run("status", "2026-11-30")
	if code != 0 || !strings.Contains(out, "sent 40, failed 0, skipped 0, pending 0") || !strings.Contains(out, "ended") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}

func TestSendBrokenSourceStillBuilds(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3, "")
	data, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(data), "sources:\n", fmt.Sprintf("sources:\n  - {name: Broken, type: feed, url: %q}\n  - {name: Gone, type: feed, url: %q}\n",
		w.feeds.URL+"/broken.xml", w.feeds.URL+"/missing.xml"), 1)
	write(t, w.config, cfg)
	code, out, errOut := w.run("send", "--now", issueNow)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"! Broken:", "! Gone:", "404"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if w.smtp.Total() != 3 {
		t.Errorf("server has %d messages, want 3", w.smtp.Total())
	}
}

func TestSendTestCopyAndDryRun(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5, "")
	// A dry run syncs nothing, the subscribers file included.
	code, out, errOut := w.run("send", "--now", issueNow, "--dry-run")
	if code != 0 || !strings.Contains(out, "Dry run: 0 messages rendered") || !strings.Contains(out, "was not synced") {
		t.Fatalf("dry run before any sync: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := w.run("subscribers", "import", filepath.Join(w.dir, "subscribers.csv")); code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = w.run("send", "--now", issueNow, "--dry-run")
	if code != 0 || !strings.Contains(out, "Dry run: 5 messages rendered") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	// Nor does it keep the issue it built: no record, no archive folder.
	if _, err := os.Stat(filepath.Join(w.dir, "digests", "2026-11-30")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dry runs wrote the issue's archive folder (%v)", err)
	}
	if code, out, _ := w.run("status"); !strings.Contains(out, "No issue") {
		t.Errorf("after dry runs, status (exit %d) says:\n%s", code, out)
	}
	if w.smtp.Total() != 0 {
		t.Fatal("dry run sent mail")
	}
	code, out, errOut = w.run("send", "--now", issueNow, "--to", "editor@example.org")
	if code != 0 {
		t.Fatalf("--to: exit %d\n%s\n%s", code, out, errOut)
	}
	got := w.smtp.Received("editor@example.org")
	if len(got) != 1 || w.smtp.Total() != 1 {
		t.Fatalf("--to delivered %d messages (total %d), want 1", len(got), w.smtp.Total())
	}
	m, _, _ := parts(t, got[0])
	if dec, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); !strings.HasPrefix(dec, "[TEST]") {
		t.Errorf("test copy subject %q", dec)
	}
	// The ledger is untouched: a real send still reaches all five.
	if code, out, errOut := w.run("send", "--now", issueNow); code != 0 {
		t.Fatalf("send: exit %d\n%s\n%s", code, out, errOut)
	}
	if w.smtp.Total() != 6 {
		t.Errorf("server has %d messages, want 6", w.smtp.Total())
	}
}

func TestRelayDownLeavesEveryonePending(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 4, "")
	data, _ := os.ReadFile(w.config)
	cfg := strings.Replace(string(data), fmt.Sprintf("port: %d", w.smtp.Port()), "port: 1", 1)
	// outage_wait 0: give up at the first refused session.
	cfg = strings.Replace(cfg, "delivery: {transport: smtp}", "delivery: {transport: smtp, outage_wait: 0s}", 1)
	write(t, w.config, cfg)
	// The engine's backoff between attempts to connect costs no time.
	code, out, errOut := w.runNoWait("send", "--now", issueNow)
	if code != cli.ExitFailed {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "4 pending") {
		t.Errorf("output does not report 4 pending:\n%s", out)
	}
	if !strings.Contains(errOut, "the relay was down") || !strings.Contains(errOut, "relay unavailable since") || !strings.Contains(errOut, "no attempt counted") {
		t.Errorf("stderr does not say the relay was down:\n%s", errOut)
	}
	if _, st, _ := w.run("status"); !strings.Contains(st, "The last run stopped waiting for the relay") {
		t.Errorf("status does not tell of the outage:\n%s", st)
	}
	// The relay comes back: the rerun delivers everyone.
	write(t, w.config, string(data))
	if code, out, errOut := w.run("send", "--now", issueNow); code != 0 {
		t.Fatalf("rerun exit %d\n%s\n%s", code, out, errOut)
	}
	if w.smtp.Total() != 4 {
		t.Errorf("server has %d messages, want 4", w.smtp.Total())
	}
}

func TestUsageAndConfigErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1, "")
	tests := []struct {
		name string
		args []string
		cfg  string // replaces the config when set
		code int
		want string
	}{
		{"unknown command", []string{"frobnicate"}, "", 2, "unknown command"},
		{"bad --now", []string{"build", "--now", "tuesday"}, "", 2, "RFC 3339"},
		{"unknown key", []string{"build"}, "newsletter:\n  nmae: x\n", 2, "newsletter.nmae"},
		{"missing file", []string{"build", "--config", "/nonexistent/digest.yaml"}, "", 2, "/nonexistent/digest.yaml"},
		{"stray argument", []string{"build", "extra"}, "", 2, "build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg != "" {
				orig, _ := os.ReadFile(w.config)
				defer write(t, w.config, string(orig))
				write(t, w.config, tt.cfg)
			}
			var out, errb bytes.Buffer
			args := append([]string{}, tt.args...)
			if !strings.Contains(strings.Join(args, " "), "--config") {
				args = append(args, "--config", w.config)
			}
			err := cli.Run(context.Background(), args, &out, &errb)
			if got := cli.ExitCode(err); got != tt.code {
				t.Errorf("exit %d, want %d (%v)", got, tt.code, err)
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, errb.String())
			}
		})
	}
}

func TestSubscribersCommands(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0, "")
	csv := filepath.Join(w.dir, "import.csv")
	write(t, csv, "email,name\nann@example.org,Ann\nbad address,Bob\nCAROL@example.org,Carol\n")
	code, out, errOut := w.run("subscribers", "import", csv)
	if code != 0 || !strings.Contains(out, "2 added") || !strings.Contains(errOut, "line 3") {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := w.run("subscribers", "add", "dan@example.org", "--name", "Dan"); code != 0 || !strings.Contains(out, "Added") {
		t.Fatalf("add: exit %d\n%s", code, out)
	}
	if code, _, errOut := w.run("subscribers", "remove", "carol@EXAMPLE.org"); code != 0 {
		t.Fatalf("remove: exit %d\n%s", code, errOut)
	}
	// Importing again never re-activates someone who unsubscribed.
	if code, _, _ := w.run("subscribers", "import", csv); code != 0 {
		t.Fatal("second import failed")
	}
	code, out, _ = w.run("subscribers", "list")
	if code != 0 {
		t.Fatalf("list: exit %d", code)
	}
	want := []string{"email,name,status,topics,created,updated", "ann@example.org,Ann,active,,", "CAROL@example.org,Carol,unsubscribed,,", "dan@example.org,Dan,active,,"}
	for _, line := range want {
		if !strings.Contains(out, line) {
			t.Errorf("list lacks %q:\n%s", line, out)
		}
	}
	if code, _, errOut := w.run("subscribers", "remove", "nobody@example.org"); code != 1 || !strings.Contains(errOut, "nobody@example.org") {
		t.Errorf("removing an unknown address: exit %d, %s", code, errOut)
	}
}

func TestSourcesCheckAndFailureStreak(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1, "")
	code, out, errOut := w.run("sources", "check", "--now", issueNow)
	if code != 0 {
		t.Fatalf("all sources ok: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"SOURCE", "RSS", "ok", "Notes"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// The second fetch is conditional; httptest's handler sends no validators,
	// so the status stays ok. A missing feed is an error in the table.
	data, _ := os.ReadFile(w.config)
	write(t, w.config, strings.Replace(string(data), "sources:\n",
		fmt.Sprintf("sources:\n  - {name: Gone, type: feed, url: %q}\n", w.feeds.URL+"/missing.xml"), 1))
	code, out, _ = w.run("sources", "check", "--now", issueNow)
	if code != 1 || !strings.Contains(out, "Gone") || !strings.Contains(out, "error") || !strings.Contains(out, "404") {
		t.Errorf("failing source: exit %d\n%s", code, out)
	}
	// The check fetched it as a build does, and that counts: after builds
	// on two days in a row, the third failed run is loud.
	for i, day := range []string{"2026-11-29T08:00:00Z", "2026-11-30T08:00:00Z"} {
		code, out, errOut = w.run("build", "--now", day)
		if code != 0 {
			t.Fatalf("build %d: exit %d\n%s\n%s", i, code, out, errOut)
		}
	}
	if !strings.Contains(out, "Gone has failed 3 runs in a row: fetch ") {
		t.Errorf("third failure is not reported loudly:\n%s", out)
	}
}

func TestMetricsFile(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3, "metrics_file: digest.prom")
	if code, out, errOut := w.run("send", "--now", issueNow); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	b, err := os.ReadFile(filepath.Join(w.dir, "digest.prom"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`digest_deliveries_total{status="sent"} 3`,
		`digest_source_fetches_total{source="RSS",status="ok"} 1`,
		`digest_source_items{source="Notes"} 2`,
		`digest_issue_articles 5`,
		`digest_last_run_timestamp_seconds{command="send",result="ok"}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}
}

func TestBrokenTemplateIsAConfigError(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 2, "")
	dir := filepath.Join(w.dir, "templates")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "digest.txt.tmpl"), "{{.Newsletter.Name}}\n{{range .Issue.Sections}}\n")
	code, out, errOut := w.run("send", "--now", issueNow)
	if code != cli.ExitUsage {
		t.Errorf("exit %d, want 2\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "digest.txt.tmpl") {
		t.Errorf("the error does not name the template:\n%s", errOut)
	}
	if w.smtp.Total() != 0 {
		t.Errorf("%d messages sent despite a broken template", w.smtp.Total())
	}
}
