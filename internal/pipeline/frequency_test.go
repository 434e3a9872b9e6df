package pipeline_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/schedule"
)

// A schedule that fires more than once a day: each scheduled time that has
// new stories is its own issue, numbered in turn, named by its time; a time
// with nothing new sends nothing; an interrupted issue is finished before a
// new one; a manual send between times makes an issue of its own time.
func TestIssuePerScheduledTime(t *testing.T) {
	t.Parallel()
	src := &fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-time.Hour))}}
	p, st := newPipeline(t, src)
	p.Frequency = schedule.Minutely
	ctx := context.Background()
	addReaders(t, st, "ann@example.org", "bob@example.org")
	outbox, tr := wire(t, p, st, nil)

	// tick delivers the run scheduled at t0+h, started a few seconds late.
	tick := func(h time.Duration) (pipeline.Result, error) {
		return p.Deliver(ctx, pipeline.Request{Now: t0.Add(h + 3*time.Second), Scheduled: t0.Add(h)})
	}
	check := func(res pipeline.Result, err error, id string, number int, stories ...string) {
		t.Helper()
		if err != nil {
			t.Fatalf("issue %s: %v", id, err)
		}
		if res.Built == nil || res.Built.Issue.ID != id || res.Built.Issue.Number != number || !slices.Equal(ids(res.Built), stories) {
			t.Fatalf("got %+v, want issue %s #%d with %q", res.Built, id, number, stories)
		}
		if res.Summary.Sent != 2 || !res.Counts.Done() {
			t.Fatalf("issue %s: sent %d, counts %+v; want both readers", id, res.Summary.Sent, res.Counts)
		}
	}

	res, err := tick(0)
	check(res, err, "2026-11-30-0800", 1, "a")
	if res, err := tick(0); err != nil || !res.Already {
		t.Fatalf("the same time again: %+v, %v; want already delivered", res, err)
	}

	src.arts = append(src.arts, story("b", t0.Add(3*time.Hour)))
	res, err = tick(4 * time.Hour)
	check(res, err, "2026-11-30-1200", 2, "b")

	// Nothing new: nothing built, nothing sent.
	res, err = tick(8 * time.Hour)
	if err != nil || !res.Built.Empty() || res.Summary.Sent != 0 {
		t.Fatalf("nothing new: %+v, %v", res, err)
	}

	// A manual send between times: an issue named by its own time.
	src.arts = append(src.arts, story("c", t0.Add(9*time.Hour)))
	res, err = p.Deliver(ctx, pipeline.Request{Now: t0.Add(9*time.Hour + 23*time.Minute + 10*time.Second)})
	check(res, err, "2026-11-30-1723", 3, "c")

	// An issue the relay interrupts is finished before the next one starts.
	src.arts = append(src.arts, story("d", t0.Add(11*time.Hour)))
	tr.down = true
	if res, err := tick(12 * time.Hour); err == nil || res.Built.Issue.ID != "2026-11-30-2000" || res.Counts.Unfinished() != 2 {
		t.Fatalf("relay down: %+v, %v; want issue 2026-11-30-2000 left pending", res, err)
	}
	tr.down = false
	src.arts = append(src.arts, story("e", t0.Add(15*time.Hour)))
	res, err = tick(16 * time.Hour) // past midnight: 2026-12-01 00:00
	check(res, err, "2026-11-30-2000", 4, "d")
	if !res.Continued {
		t.Errorf("issue %s was not marked continued", res.Built.Issue.ID)
	}
	res, err = tick(20 * time.Hour)
	check(res, err, "2026-12-01-0400", 5, "e")

	// --issue works with every form of id.
	for _, id := range []string{"2026-11-30-0800", "2026-12-01-0400"} {
		if res, err := p.Deliver(ctx, pipeline.Request{Now: t0.Add(21 * time.Hour), IssueID: id}); err != nil || !res.Already {
			t.Errorf("--issue %s: %+v, %v; want already delivered", id, res, err)
		}
	}

	// One outbox folder and one archive folder per issue, each reader once
	// in each, no story twice.
	want := []string{"2026-11-30-0800", "2026-11-30-1200", "2026-11-30-1723", "2026-11-30-2000", "2026-12-01-0400"}
	for _, id := range want {
		if n := emlCount(t, filepath.Join(outbox, id)); n != 2 {
			t.Errorf("issue %s: %d messages, want 2", id, n)
		}
	}
	des, err := os.ReadDir(p.Archive)
	if err != nil {
		t.Fatal(err)
	}
	var folders []string
	for _, de := range des {
		if de.IsDir() {
			folders = append(folders, de.Name())
		}
	}
	if !slices.Equal(folders, want) {
		t.Errorf("archive folders %q, want %q", folders, want)
	}
	if last, err := st.LatestIssue(ctx); err != nil || last.ID != want[len(want)-1] || last.Number != len(want) {
		t.Errorf("latest issue %+v, %v", last, err)
	}
	if c, err := st.Counts(ctx, want[0]); err != nil || c != (ledger.Counts{Sent: 2}) {
		t.Errorf("first issue's ledger %+v, %v", c, err)
	}
}

// With a daily schedule the scheduled time names the issue by its date, as
// it always did: a second time of the day finds it delivered.
func TestDailyIDsUnchanged(t *testing.T) {
	t.Parallel()
	src := &fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-time.Hour))}}
	p, st := newPipeline(t, src)
	ctx := context.Background()
	addReaders(t, st, "ann@example.org")
	wire(t, p, st, nil)
	res, err := p.Deliver(ctx, pipeline.Request{Now: t0.Add(time.Second), Scheduled: t0})
	if err != nil || res.Built.Issue.ID != "2026-11-30" {
		t.Fatalf("%+v, %v", res.Built, err)
	}
	src.arts = append(src.arts, story("b", t0.Add(time.Hour)))
	res, err = p.Deliver(ctx, pipeline.Request{Now: t0.Add(2 * time.Hour)})
	if err != nil || !res.Already || res.Built.Issue.ID != "2026-11-30" {
		t.Fatalf("same day: %+v, %v; want already delivered", res, err)
	}
}

// An issue built for a later time and left unsent (another process found a
// run live, or `digest build` made it) is not sent with stories that an
// issue for an earlier time delivered meanwhile: it is built again from
// what is new; named with --issue, it is refused with the reason.
func TestStaleBuiltIssueIsBuiltAgain(t *testing.T) {
	t.Parallel()
	src := &fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-time.Hour))}}
	p, st := newPipeline(t, src)
	p.Frequency = schedule.Minutely
	ctx := context.Background()
	addReaders(t, st, "ann@example.org")
	wire(t, p, st, nil)

	later, err := p.Build(ctx, t0.Add(2*time.Hour))
	if err != nil || later.Issue.ID != "2026-11-30-1000" || !slices.Equal(ids(later), []string{"a"}) {
		t.Fatalf("build for 10:00: %+v, %v", later, err)
	}
	// The issue for 08:00 goes out first, with the same story.
	res, err := p.Deliver(ctx, pipeline.Request{Now: t0, Scheduled: t0})
	if err != nil || res.Built.Issue.ID != "2026-11-30-0800" || res.Summary.Sent != 1 {
		t.Fatalf("08:00: %+v, %v", res, err)
	}
	first := res.Built.Issue.Number

	if _, err := p.Deliver(ctx, pipeline.Request{Now: t0.Add(2 * time.Hour), IssueID: "2026-11-30-1000"}); err == nil ||
		!strings.Contains(err.Error(), "issue 2026-11-30-1000 was built before issue 2026-11-30-0800 delivered 1 story of it") {
		t.Fatalf("--issue of the stale issue: %v", err)
	}
	if c, _ := st.Counts(ctx, "2026-11-30-1000"); c.Total() != 0 {
		t.Fatalf("the refused issue was enqueued: %+v", c)
	}

	src.arts = append(src.arts, story("b", t0.Add(time.Hour)))
	res, err = p.Deliver(ctx, pipeline.Request{Now: t0.Add(2 * time.Hour), Scheduled: t0.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Built.Issue.ID != "2026-11-30-1000" || !slices.Equal(ids(res.Built), []string{"b"}) || res.Summary.Sent != 1 {
		t.Fatalf("10:00: %+v; want it built again with b only", res.Built)
	}
	if res.Built.Issue.Number <= first {
		t.Errorf("the rebuilt issue is #%d, want a number after 08:00's #%d", res.Built.Issue.Number, first)
	}
}
