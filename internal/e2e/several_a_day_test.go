package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/smtptest"
)

// A schedule of a few seconds with notes added between ticks: each tick
// that finds a new story sends an issue of its own (named by its scheduled
// time, to the second), every reader gets each issue once, no story goes
// out twice, ticks with nothing new send nothing, and each issue has one
// archive folder; `digest status` lists the issues newest first.
func TestDaemonIssuePerTick(t *testing.T) {
	skipWithoutSignals(t)
	bin := buildBinary(t)
	srv := smtptest.New(t)
	site := newDaemonSite(t, srv, 4, 1, "@every 1s")
	d := startDaemon(t, bin, site.config, site.port)
	readers := len(site.emails)

	until(t, "the first issue delivered", func() bool { return srv.Total() >= readers })
	const extra = 2
	for k := 1; k <= extra; k++ {
		write(t, filepath.Join(site.dir, "notes", fmt.Sprintf("extra%d.md", k)), fmt.Sprintf(
			"---\ntitle: \"Extra note %d\"\ndate: %s\nurl: https://example.org/extra/%d\nsummary: \"Late news %d.\"\n---\nBody.\n",
			k, time.Now().UTC().Format(time.RFC3339), k, k))
		until(t, fmt.Sprintf("issue %d delivered", k+1), func() bool { return srv.Total() >= (k+1)*readers })
	}
	// Two more ticks with nothing new: nothing more is sent.
	last := d.health().LastRun.Scheduled
	until(t, "two more ticks", func() bool {
		h := d.health()
		return h.LastRun != nil && h.LastRun.Scheduled.Sub(last) >= 2*time.Second
	})
	d.stop()

	issues := 1 + extra
	idForm := regexp.MustCompile(`^\d{4}-\d\d-\d\d-\d{6}$`) // @every 1s: date and time to the second
	var folders []string
	des, err := os.ReadDir(filepath.Join(site.dir, "archive"))
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if de.IsDir() && idForm.MatchString(de.Name()) {
			folders = append(folders, de.Name())
		} else if de.IsDir() {
			t.Errorf("archive folder %q is not an issue id of a schedule that fires more than once a minute", de.Name())
		}
	}
	if len(folders) != issues {
		t.Errorf("archive folders %q, want %d, one per issue", folders, issues)
	}

	stories := []string{"Daemon note 0", "Daemon note 4", "Extra note 1", "Extra note 2"}
	for _, e := range site.emails {
		msgs := srv.Received(e)
		if len(msgs) != issues {
			t.Errorf("%s got %d messages, want %d (one per issue)", e, len(msgs), issues)
			continue
		}
		seen := map[string]bool{}
		for _, m := range msgs {
			text := strings.ReplaceAll(string(m), "=\r\n", "") // quoted-printable soft breaks
			id := header(text, "Message-ID")
			if id == "" || seen[id] {
				t.Errorf("%s got message %s twice", e, id)
			}
			seen[id] = true
		}
		for _, s := range stories {
			n := 0
			for _, m := range msgs {
				if strings.Contains(strings.ReplaceAll(string(m), "=\r\n", ""), s) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s got %q in %d issues, want 1", e, s, n)
			}
		}
	}

	// status lists the issues in the order of their times, newest first.
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "status", "--config", site.config)
	cmd.Dir = site.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	t.Logf("digest status:\n%s", out)
	slices.Sort(folders)
	pos := -1
	for i := len(folders) - 1; i >= 0; i-- {
		at := strings.Index(string(out), "  "+folders[i]+" ")
		if at < pos {
			t.Errorf("status lists %s out of order:\n%s", folders[i], out)
		}
		pos = at
	}
	if !strings.Contains(string(out), "Recent issues, newest first:") || !strings.Contains(string(out), fmt.Sprintf("Issue %s (#%d)", folders[len(folders)-1], issues)) {
		t.Errorf("status does not show the latest issue first, numbered %d:\n%s", issues, out)
	}
}

// header returns the value of a message's header (named in any case).
func header(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ": "); ok && strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
