package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digest/digest/internal/issue"
)

// item is one story of a test feed.
type item struct {
	guid, title string
	published   string // RFC 3339
}

// feeds serves RSS feeds whose items a test changes between runs.
type feeds struct {
	mu    sync.Mutex
	items map[string][]item // by path, "/busy.xml"
	srv   *httptest.Server
}

func newFeeds(t *testing.T) *feeds {
	f := &feeds{items: map[string][]item{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		its, ok := f.items[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		var b strings.Builder
		b.WriteString(`<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>http://example.org/</link><description>d</description>`)
		for _, it := range its {
			at, _ := time.Parse(time.RFC3339, it.published)
			fmt.Fprintf(&b, "<item><guid>%s</guid><title>%s</title><link>http://example.org/%s</link><pubDate>%s</pubDate><description>About %s.</description></item>",
				it.guid, it.title, it.guid, at.Format(time.RFC1123Z), it.title)
		}
		b.WriteString("</channel></rss>")
		w.Header().Set("Content-Type", "application/rss+xml")
		w.Write([]byte(b.String()))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *feeds) set(path string, its ...item) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items[path] = its
}

// issueFile reads an archived issue.json back: its stories by guid, and
// its omissions as "guid: reason".
func issueFile(t *testing.T, w *world, id string) (stories, left []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(w.dir, "digests", id, "issue.json"))
	if err != nil {
		t.Fatal(err)
	}
	var iss issue.Issue
	if err := json.Unmarshal(raw, &iss); err != nil {
		t.Fatal(err)
	}
	for _, a := range iss.Articles() {
		stories = append(stories, a.ID)
	}
	for _, o := range iss.Left {
		left = append(left, o.Article.ID+": "+string(o.Reason))
	}
	return stories, left
}

// TestEditorsRulesOverThreeDays sends three daily issues from sources with
// max_items, settle and backfill, and a max_articles that cuts fairly.
func TestEditorsRulesOverThreeDays(t *testing.T) {
	w := newWorld(t, 3, "")
	f := newFeeds(t)
	config := func(sources ...string) {
		write(t, w.config, fmt.Sprintf(`newsletter:
  name: Editors Daily
  from: "Editors Daily <digest@example.org>"
  base_url: http://127.0.0.1:9
digest: {window: 72h, max_articles: 4}
schedule: "0 8 * * *"
sources:
%s
subscribers_csv: subscribers.csv
smtp: {host: 127.0.0.1, port: %d, tls: none}
`, strings.Join(sources, "\n"), w.smtp.Port()))
	}
	busy := fmt.Sprintf(`  - {name: Busy, type: feed, url: "%s/busy.xml", max_items: 2, settle: 2h, settle_max: 48h}`, f.srv.URL)
	quiet := fmt.Sprintf(`  - {name: Quiet, type: feed, url: "%s/quiet.xml"}`, f.srv.URL)
	late := fmt.Sprintf(`  - {name: Late, type: feed, url: "%s/late.xml", backfill: 1}`, f.srv.URL)
	send := func(now string) string {
		t.Helper()
		code, out, errOut := w.run("send", "--now", now)
		if code != 0 {
			t.Fatalf("send --now %s: exit %d\n%s\n%s", now, code, out, errOut)
		}
		return out
	}
	check := func(id string, wantStories, wantLeft []string) {
		t.Helper()
		stories, left := issueFile(t, w, id)
		if diff := cmp.Diff(wantStories, stories); diff != "" {
			t.Errorf("issue %s: stories (-want +got):\n%s", id, diff)
		}
		if diff := cmp.Diff(wantLeft, left); diff != "" {
			t.Errorf("issue %s: left out (-want +got):\n%s", id, diff)
		}
	}
	const (
		sourceLimit = ": over the source's max_items, kept for the next issue"
		settling    = ": settling"
	)

	// Day 1: Busy takes its two newest; b5, published 30 minutes before
	// the run, settles.
	b5 := item{"b5", "Busy five", "2026-11-30T07:30:00Z"}
	f.set("/busy.xml", item{"b1", "Busy one", "2026-11-29T10:00:00Z"}, item{"b2", "Busy two", "2026-11-29T12:00:00Z"},
		item{"b3", "Busy three", "2026-11-29T14:00:00Z"}, item{"b4", "Busy four", "2026-11-29T16:00:00Z"}, b5)
	f.set("/quiet.xml", item{"q1", "Quiet one", "2026-11-29T09:00:00Z"}, item{"q2", "Quiet two", "2026-11-29T08:30:00Z"})
	config(busy, quiet)
	out := send("2026-11-30T08:00:00Z")
	if want := "Held back: 2 stories over a source's max_items (kept for the next issue), 1 story settling; every reason is in issue.json.\n"; !strings.Contains(out, want) {
		t.Errorf("send output lacks %q:\n%s", want, out)
	}
	check("2026-11-30", []string{"b4", "b3", "q1", "q2"}, []string{"b1" + sourceLimit, "b2" + sourceLimit, "b5" + settling})
	if n := w.smtp.Total(); n != 3 {
		t.Fatalf("day 1: %d messages, want 3", n)
	}

	// The preview after day 1's delivery shows the next issue, without
	// what went out.
	base := (&previewWorld{config: w.config}).start(t, "--now", "2026-11-30T09:00:00Z")
	body := waitPage(t, base, "went out")
	for _, want := range []string{
		"Issue 2026-11-30 #1 went out at 08:00 to 3 readers.",
		"Next: issue <strong>2026-12-01</strong> (#2) as it would go out at 1 Dec 2026 08:00 UTC",
		// Settled by the next issue's time, b5 is in it; b1 waits again.
		"Busy five", "Busy two", "Busy one <span class=\"muted\">Busy</span></td><td><strong>over the source's max_items, kept for the next issue</strong>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("preview lacks %q", want)
		}
	}
	if stories := body[strings.Index(body, `id="stories"`):]; strings.Contains(stories[:strings.Index(stories, "</section>")], "Busy four") {
		t.Error("the preview's next issue has a story that went out")
	}

	// sources check before day 2 sees b5 change: its wait starts again.
	// Late is new, with three stories, of which it brings one.
	b5.title = "Busy five, corrected"
	f.set("/busy.xml", item{"b1", "Busy one", "2026-11-29T10:00:00Z"}, item{"b2", "Busy two", "2026-11-29T12:00:00Z"},
		item{"b3", "Busy three", "2026-11-29T14:00:00Z"}, item{"b4", "Busy four", "2026-11-29T16:00:00Z"}, b5)
	f.set("/late.xml", item{"l1", "Late one", "2026-11-30T20:00:00Z"}, item{"l2", "Late two", "2026-11-30T18:00:00Z"},
		item{"l3", "Late three", "2026-11-30T10:00:00Z"})
	config(busy, quiet, late)
	code, out, _ := w.run("sources", "check", "--now", "2026-12-01T07:00:00Z")
	if code != 0 || !strings.Contains(out, "HELD") || !regexp.MustCompile(`(?m)^Busy\s+ok\s+5\s+2\s+1\s+2\s`).MatchString(out) {
		t.Errorf("sources check: exit %d, want Busy with 2 in window, 1 held, 2 over the limit:\n%s", code, out)
	}
	if !strings.Contains(out, "2 items older than the source's backfill when it was first seen: never sent") {
		t.Errorf("sources check does not report Late's backlog:\n%s", out)
	}

	// Day 2: Busy's older two roll over; b5 changed an hour ago, still
	// settling; Late brings its newest only.
	send("2026-12-01T08:00:00Z")
	backlog := ": " + string(issue.Backlog)
	check("2026-12-01", []string{"b2", "b1", "l1"}, []string{
		"b3: already sent", "b4: already sent", "b5" + settling, "q1: already sent", "q2: already sent", "l2" + backlog, "l3" + backlog,
	})

	// Day 3: b5 has settled; six stories for four places: one of each
	// source before a second of any, newest first (without the fair cut,
	// q4 would take b5's place). The issue lists them by section.
	f.set("/busy.xml", item{"b1", "Busy one", "2026-11-29T10:00:00Z"}, b5, item{"b6", "Busy six", "2026-12-01T12:00:00Z"})
	f.set("/quiet.xml", item{"q3", "Quiet three", "2026-12-01T09:00:00Z"}, item{"q4", "Quiet four", "2026-12-01T10:00:00Z"},
		item{"q5", "Quiet five", "2026-12-01T11:00:00Z"}, item{"q6", "Quiet six", "2026-12-01T13:00:00Z"})
	config(busy, quiet)
	send("2026-12-02T08:00:00Z")
	check("2026-12-02", []string{"b6", "b5", "q6", "q5"}, []string{"b1: already sent", "q3: over max_articles", "q4: over max_articles"})
	if n := w.smtp.Total(); n != 9 {
		t.Errorf("after three issues: %d messages, want 9", n)
	}
}
