package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/digest/digest/internal/cli"
)

// addSources puts extra sources at the head of the world's list.
func (w *world) addSources(lines ...string) {
	w.t.Helper()
	data, err := os.ReadFile(w.config)
	if err != nil {
		w.t.Fatal(err)
	}
	write(w.t, w.config, strings.Replace(string(data), "sources:\n", "sources:\n"+strings.Join(lines, "\n")+"\n", 1))
}

func TestBadNoteIsAWarning(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1, "")
	notes := filepath.Join(w.dir, "drafts")
	if err := os.MkdirAll(notes, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(notes, "good.md"), "---\ntitle: Good note\ndate: 2026-11-28\n---\nFine.\n")
	write(t, filepath.Join(notes, "quote.md"), "---\ntitle: \"Unclosed quote\ndate: 2026-11-28\n---\nBody.\n")
	write(t, filepath.Join(notes, "when.md"), "---\ntitle: Bad date\ndate: yesterday\n---\nBody.\n")
	w.addSources(
		fmt.Sprintf("  - {name: Drafts, type: markdown, path: %q}", notes),
		fmt.Sprintf("  - {name: Gone, type: feed, url: %q}", w.feeds.URL+"/missing.xml"))

	var out string
	for i, day := range []string{"2026-11-28T08:00:00Z", "2026-11-29T08:00:00Z", "2026-11-30T08:00:00Z"} {
		var code int
		var errOut string
		code, out, errOut = w.run("build", "--now", day)
		if code != 0 {
			t.Fatalf("build %d: exit %d\n%s\n%s", i, code, out, errOut)
		}
		if strings.Contains(out, "Drafts has failed") {
			t.Fatalf("build %d: a bad note counts as a failed run:\n%s", i, out)
		}
	}
	for _, want := range []string{
		"Sources: 4 ok, 1 partial, 1 failed\n",
		"  ~ Drafts: partial, 1 item (",
		"; skipped:\n      " + filepath.Join(notes, "quote.md") + ": front matter: line ",
		"\n      " + filepath.Join(notes, "when.md") + `: line 3: date "yesterday"`,
		"  !!! Gone has failed 3 runs in a row: fetch " + w.feeds.URL + "/missing.xml: HTTP 404",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	// The source is named once per line, never again in its reasons.
	for _, line := range strings.Split(out, "\n") {
		if strings.Count(line, "Gone") > 1 || strings.Count(line, "Drafts") > 1 {
			t.Errorf("line repeats the source's name: %q", line)
		}
	}

	// check: the failing feed makes the exit status 1, the bad notes do not.
	code, out, _ := w.run("sources", "check", "--now", issueNow)
	if code != cli.ExitFailed || !strings.Contains(out, "\nDrafts (partial):\n  - "+filepath.Join(notes, "quote.md")) ||
		!strings.Contains(out, "\nGone (error, failed 4 runs in a row):\n  - fetch ") {
		t.Errorf("check with a failing source: exit %d\n%s", code, out)
	}
	data, _ := os.ReadFile(w.config)
	write(t, w.config, strings.Replace(string(data), fmt.Sprintf("  - {name: Gone, type: feed, url: %q}\n", w.feeds.URL+"/missing.xml"), "", 1))
	if code, out, errOut := w.run("sources", "check", "--now", issueNow); code != 0 || !strings.Contains(out, "Drafts (partial)") {
		t.Errorf("check with only a partial source: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestEverySourceFailed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1, "")
	data, _ := os.ReadFile(w.config)
	cfg := string(data)
	for _, f := range []string{"/rss.xml", "/atom.xml", "/feed.json"} {
		cfg = strings.Replace(cfg, f, "/missing"+f, 1)
	}
	cfg = strings.Replace(cfg, filepath.Join("testdata", "notes"), filepath.Join("testdata", "no-such-folder"), 1)
	write(t, w.config, cfg)
	for _, cmd := range []string{"build", "send"} {
		code, out, errOut := w.run(cmd, "--now", issueNow)
		if code != cli.ExitFailed || !strings.Contains(errOut, "every source failed") {
			t.Errorf("%s: exit %d, stderr:\n%s", cmd, code, errOut)
		}
		// First what failed, then that nothing was built; not "no new articles".
		fails := strings.Index(out, "Sources: 0 ok, 4 failed")
		nothing := strings.Index(out, "Issue 2026-11-30: every source failed; nothing built, nothing to send.")
		if fails < 0 || nothing < fails || strings.Contains(out, "no new articles") {
			t.Errorf("%s output:\n%s", cmd, out)
		}
	}
}
