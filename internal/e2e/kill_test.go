// Package e2e holds tests that run the real digest binary.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/digest/digest/internal/smtptest"
)

// binDir holds the binary that buildBinary compiles once for the whole
// package; TestMain creates and removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "digest-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// compile builds ./cmd/digest into binDir, once: every test runs the same
// binary.
var compile = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(binDir, "digest")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", bin, "github.com/digest/digest/cmd/digest")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// buildBinary returns the path of the digest binary, built on first use.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin, err := compile()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

const now = "2026-05-04T08:00:00Z"

// testLease is the delivery lease of the test sites: short, so that a
// killed run's recipients are taken over quickly.
const testLease = 2 * time.Second

// busy reports whether a run's output says another live run delivers.
func busy(out string) bool { return strings.Contains(out, "being delivered by another process") }

// newSite writes a config, a markdown source and a subscriber list of n
// addresses, delivering over SMTP to srv.
func newSite(t testing.TB, srv *smtptest.Server, n, conns int) (config string, emails []string) {
	t.Helper()
	dir := t.TempDir()
	notes := filepath.Join(dir, "notes")
	if err := os.MkdirAll(notes, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		note := fmt.Sprintf("---\ntitle: \"Note %d about the harbour\"\ndate: 2026-05-0%dT0%d:00:00Z\nurl: https://example.org/notes/%d\nsummary: \"A teaser for note %d, about ferries, tides and the market.\"\n---\nBody of note %d.\n",
			i, 1+i%3, i%9, i, i, i)
		write(t, filepath.Join(notes, fmt.Sprintf("n%02d.md", i)), note)
	}
	var csv strings.Builder
	csv.WriteString("email,name\n")
	for i := range n {
		e := fmt.Sprintf("reader%04d@example.org", i)
		emails = append(emails, e)
		fmt.Fprintf(&csv, "%s,Reader %d\n", e, i)
	}
	write(t, filepath.Join(dir, "subscribers.csv"), csv.String())
	config = filepath.Join(dir, "config.yaml")
	write(t, config, fmt.Sprintf(`newsletter:
  name: Kill Test Weekly
  from: "Kill Test <digest@example.org>"
  base_url: http://127.0.0.1:9
digest:
  window: 168h
sources:
  - {name: Notes, type: markdown, path: notes, section: Town}
archive: archive
database: digest.db
subscribers_csv: subscribers.csv
secret: kill-test-secret
smtp: {host: 127.0.0.1, port: %d, tls: none, connections: %d, timeout: 5s}
delivery: {transport: smtp, lease: %s}
log: {level: warn}
`, srv.Port(), conns, testLease))
	return config, emails
}

func write(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKillAndResume runs `digest send`, kills it with SIGKILL at random
// moments (before and during delivery), and reruns it until it exits 0.
// Nobody may be skipped, and each kill may repeat at most one message per
// connection.
func TestKillAndResume(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL semantics")
	}
	const n, conns = 1500, 4
	bin := buildBinary(t)
	// A small stall per recipient keeps a run long enough (about a second)
	// to be killed in the middle.
	srv := smtptest.New(t, smtptest.WithDiscard(), smtptest.WithFaults(func(string, int) smtptest.Fault {
		return smtptest.Fault{Stall: 500 * time.Microsecond}
	}))
	config, emails := newSite(t, srv, n, conns)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 42))

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	start := time.Now()
	kills, runs := 0, 0
	var lastOut string
	for done := false; !done; runs++ {
		if runs > 20 {
			t.Fatalf("no clean exit after %d runs; last output:\n%s", runs, lastOut)
		}
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "send", "--config", config, "--now", now)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		killed := 0
		switch {
		case kills == 0:
			// First kill: at a random moment, possibly before any message.
			select {
			case <-exited:
			case <-time.After(time.Duration(rng.IntN(400)) * time.Millisecond):
				killed = kill(cmd, exited)
			}
		case kills < 4:
			// Later kills: after a random number of further messages.
			target := srv.Total() + 100 + rng.IntN(300)
			if waitFor(exited, func() bool { return srv.Total() >= target }) {
				killed = kill(cmd, exited)
			}
		default:
			<-exited
		}
		kills += killed
		if killed == 0 {
			switch code := cmd.ProcessState.ExitCode(); code {
			case 0:
				done = true
			case 1: // recipients still pending, or a killed run's lease not yet over: run again
				if busy(out.String()) {
					runs-- // not a delivery run: wait out the lease
					time.Sleep(testLease / 4)
				}
			default:
				t.Fatalf("run %d: exit %d:\n%s", runs+1, code, out.String())
			}
		}
		lastOut = out.String()
		if ctx.Err() != nil {
			t.Fatalf("timed out after %d runs, %d kills:\n%s", runs, kills, lastOut)
		}
	}
	t.Logf("%d runs, %d kills, %d messages accepted for %d subscribers in %s",
		runs, kills, srv.Total(), n, time.Since(start).Round(time.Millisecond))

	counts := srv.Counts()
	dups := 0
	for _, e := range emails {
		c := counts[e]
		if c == 0 {
			t.Errorf("%s received nothing", e)
		}
		if c > 1 {
			dups += c - 1
		}
	}
	if len(counts) != n {
		t.Errorf("messages went to %d addresses, want %d", len(counts), n)
	}
	t.Logf("duplicates: %d (allowed: %d = %d connections x %d kills)", dups, conns*kills, conns, kills)
	if dups > conns*kills {
		t.Errorf("%d duplicates after %d kills, more than one per connection per kill (%d)", dups, kills, conns*kills)
	}
	if !strings.Contains(lastOut, "1500") {
		t.Logf("last run output:\n%s", lastOut)
	}

	// A further run sends nothing and says so.
	before := srv.Total()
	out, err := exec.CommandContext(ctx, bin, "send", "--config", config, "--now", now).CombinedOutput()
	if err != nil || srv.Total() != before {
		t.Errorf("run after completion: %v, %d more messages:\n%s", err, srv.Total()-before, out)
	}
}

// waitFor polls cond until it holds (true: the process still runs) or the
// process exits (false).
func waitFor(exited <-chan error, cond func() bool) bool {
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			// Hand the result back for kill's caller to read ProcessState.
			_ = err
			return false
		case <-tick.C:
			if cond() {
				return true
			}
		}
	}
}

// kill sends SIGKILL and waits for the process; it reports 1 when the
// process died of it (and had not exited already).
func kill(cmd *exec.Cmd, exited <-chan error) int {
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 1
	}
	return 0
}
