package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTopicsPickSections sends one issue to readers with different topics:
// each gets only the sections of their topics, a reader whose topics have
// nothing this week is skipped (and counted so), and a reader without
// topics gets everything.
func TestTopicsPickSections(t *testing.T) {
	t.Parallel()
	quiet := filepath.Join(t.TempDir(), "quiet")
	if err := os.MkdirAll(quiet, 0o755); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, 0, "  - {name: Quiet, type: markdown, path: "+quiet+", section: Sport}")
	data, _ := os.ReadFile(w.config)
	write(t, w.config, strings.Replace(string(data), "subscribers_csv: subscribers.csv\n", "", 1))
	readers := map[string]string{
		"nature@example.org":    "nature",
		"worldtown@example.org": "world,town",
		"sport@example.org":     "sport",
		"all@example.org":       "",
	}
	for addr, topics := range readers {
		args := []string{"subscribers", "add", addr}
		if topics != "" {
			args = append(args, "--topics", topics)
		}
		if code, out, errOut := w.run(args...); code != 0 {
			t.Fatalf("add %s: exit %d\n%s%s", addr, code, out, errOut)
		}
	}
	code, out, errOut := w.run("send", "--now", issueNow)
	if code != 0 {
		t.Fatalf("send: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "1 skipped") {
		t.Errorf("the summary does not count the skipped reader:\n%s", out)
	}
	world := []string{"RSS story one", "RSS story two", "JSON story one"}
	nature := []string{"Atom story one"}
	town := []string{"Note story one"}
	want := map[string][][]string{ // [in, out]
		"nature@example.org":    {nature, append(append([]string{}, world...), town...)},
		"worldtown@example.org": {append(append([]string{}, world...), town...), nature},
		"all@example.org":       {append(append(append([]string{}, world...), town...), nature...), nil},
	}
	for addr, io := range want {
		got := w.smtp.Received(addr)
		if len(got) != 1 {
			t.Fatalf("%s received %d messages", addr, len(got))
		}
		_, text, html := parts(t, got[0])
		for _, title := range io[0] {
			if !strings.Contains(text, title) || !strings.Contains(html, title) {
				t.Errorf("%s: %q missing", addr, title)
			}
		}
		for _, title := range io[1] {
			if strings.Contains(text, title) || strings.Contains(html, title) {
				t.Errorf("%s: %q is not of their topics", addr, title)
			}
		}
	}
	if n := w.smtp.Count("sport@example.org"); n != 0 {
		t.Errorf("the reader whose topics have nothing got %d messages", n)
	}
	code, out, _ = w.run("status", "2026-11-30")
	if code != 0 || !strings.Contains(out, "sent 3, failed 0, skipped 1") {
		t.Errorf("status:\n%s", out)
	}
	// A rerun sends nothing more and does not retry the skipped reader.
	if code, out, _ := w.run("send", "--now", issueNow); code != 0 || !strings.Contains(out, "already delivered") {
		t.Errorf("rerun: exit %d\n%s", code, out)
	}
}
