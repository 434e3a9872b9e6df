package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCSVSyncWarnings: the sync's skipped rows are logged through the
// logger (JSON here, as log.format says), with no part of any address, and
// once per change of the file's problems, not at every sync, whichever
// process syncs.
func TestCSVSyncWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	csv := filepath.Join(dir, "readers.csv")
	write := func(body string) {
		if err := os.WriteFile(csv, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("email,name\nada@example.org,Ada\nfrank.secret@,Frank\nbob@op..example,Bob\nada@example.org,Again\n")
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("newsletter: {name: T, from: t@example.org, base_url: \"http://127.0.0.1:9\"}\n"+
		"sources: [{name: N, type: markdown, path: .}]\nsubscribers_csv: readers.csv\ndelivery: {transport: file}\nlog: {format: json}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	e := &env{stdout: &bytes.Buffer{}, stderr: &lockedWriter{w: &logs}, configPath: cfg}
	ctx := context.Background()
	if err := e.load(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.close()
	c := &csvSync{e: e, path: csv}
	warnings := func() []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("not a JSON log line: %q", line)
			}
			if m["level"] == "WARN" {
				out = append(out, m)
			}
		}
		logs.Reset()
		return out
	}
	for i := range 3 {
		if i == 2 {
			c = &csvSync{e: e, path: csv} // another process
		}
		if err := c.sync(ctx); err != nil {
			t.Fatal(err)
		}
		got := warnings()
		if i > 0 {
			if len(got) != 0 {
				t.Errorf("sync %d logged the same problems again: %v", i+1, got)
			}
			continue
		}
		if len(got) != 3 {
			t.Fatalf("%d warnings, want 3 (two addresses, one repeat): %v", len(got), got)
		}
		for _, w := range got {
			for _, part := range []string{"frank", "secret", "op..example", "ada@"} {
				if strings.Contains(w["problem"].(string), part) {
					t.Errorf("a warning gives away %q: %v", part, w)
				}
			}
		}
		if p := got[0]["problem"]; p != "line 3: the email address is not valid (fix it in the file; it is not logged)" {
			t.Errorf("problem %q", p)
		}
	}
	write("email,name\nada@example.org,Ada\nfrank.secret@,Frank\n")
	if err := c.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := warnings(); len(got) != 1 {
		t.Errorf("after the file changed: %d warnings, want 1: %v", len(got), got)
	}
}
