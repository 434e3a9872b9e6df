package cli_test

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadersChoicesSurviveSyncs: a reader renames themselves and picks a
// topic on their preferences page; the subscribers file, unchanged, is
// synced by two sends and a dry run, and the reader's choice stands. A
// dry run syncs nothing at all: a row the operator changed in the file is
// applied by the next real send only.
func TestReadersChoicesSurviveSyncs(t *testing.T) {
	w := newWorld(t, 0, "  - {name: Tech, type: markdown, path: "+filepath.Join(t.TempDir(), "none")+
		", section: Tech, topics: [Tech]}\nserver: {listen: \"127.0.0.1:0\"}\nsecret: e2e-secret")
	csv := filepath.Join(w.dir, "subscribers.csv")
	write(t, csv, "email,name,topics\nbob@example.org,Bob,\nalice@example.org,Alice,\n")
	addr := w.startServe()
	if code, out, errOut := w.run("send", "--now", issueNow); code != 0 {
		t.Fatalf("send: exit %d\n%s\n%s", code, out, errOut)
	}
	_, text, _ := parts(t, w.smtp.Received("bob@example.org")[0])
	link := regexp.MustCompile(`http://127\.0\.0\.1:9/p/\S+`).FindString(text)
	if link == "" {
		t.Fatalf("no preferences link in:\n%s", text)
	}
	page := localURL(t, link, addr)
	_, body := get(t, page)
	form := regexp.MustCompile(`name="form" value="([^"]+)"`).FindStringSubmatch(body)
	if form == nil {
		t.Fatalf("no form token in:\n%s", body)
	}
	code, body := postForm(t, page, url.Values{"form": {form[1]}, "action": {"save"}, "name": {"Bobby"}, "topic": {"tech"}})
	if code != 200 || !strings.Contains(body, "Saved.") {
		t.Fatalf("save: %d\n%s", code, body)
	}
	listed := func(want ...string) {
		t.Helper()
		_, list, _ := w.run("subscribers", "list")
		for _, line := range want {
			if !strings.Contains(list, line) {
				t.Errorf("subscribers list lacks %q:\n%s", line, list)
			}
		}
	}
	listed("bob@example.org,Bobby,active,tech,")

	// The operator renames Alice in the file; a dry run must not apply it.
	write(t, csv, "email,name,topics\nbob@example.org,Bob,\nalice@example.org,Alice Smith,\n")
	code, out, errOut := w.run("send", "--dry-run", "--now", issueNow)
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(errOut, "synced") || !strings.Contains(out, "already delivered") {
		t.Errorf("dry run output:\n%s\n%s", out, errOut)
	}
	listed("bob@example.org,Bobby,active,tech,", "alice@example.org,Alice,active,,")

	for i, now := range []string{"2026-12-07T08:00:00Z", "2026-12-14T08:00:00Z"} {
		if code, out, errOut := w.run("send", "--now", now); code != 0 {
			t.Fatalf("send %d: exit %d\n%s\n%s", i+2, code, out, errOut)
		}
		listed("bob@example.org,Bobby,active,tech,", "alice@example.org,Alice Smith,active,,")
	}
}

// TestLanguageReachesTheIssueAndArchive: newsletter.language sets the lang
// of the HTML part and of the archive's index, and French spacing.
func TestLanguageReachesTheIssueAndArchive(t *testing.T) {
	w := newWorld(t, 1, "")
	cfg, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w.config, strings.Replace(string(cfg), "  name: Test Digest\n", "  name: Test Digest\n  language: fr\n", 1))
	if code, out, errOut := w.run("build", "--now", issueNow); code != 0 {
		t.Fatalf("build: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, f := range []string{"2026-11-30/digest.html", "index.html"} {
		b, err := os.ReadFile(filepath.Join(w.dir, "digests", f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `lang="fr"`) {
			t.Errorf("%s has no lang=\"fr\"", f)
		}
	}
}
