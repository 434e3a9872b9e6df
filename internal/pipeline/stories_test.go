package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/source"
)

// from is a story of the named source.
func from(src, id string, published time.Time) article.Article {
	a := story(id, published)
	a.Source = src
	return a
}

// reasons flattens a build's omissions into "id: reason".
func reasons(b *pipeline.Built) []string {
	var out []string
	for _, o := range b.Issue.Left {
		out = append(out, o.Article.ID+": "+string(o.Reason))
	}
	return out
}

// TestBackfillOnFirstSightOnly: a new source brings its backfill newest
// stories, the older ones are never sent; a preview shows the same without
// recording the first sight; removed and added again, the source is not new.
func TestBackfillOnFirstSightOnly(t *testing.T) {
	h := time.Hour
	ctx := context.Background()
	blog := &fakeSource{name: "Blog", arts: []article.Article{
		from("Blog", "b1", t0.Add(-1*h)), from("Blog", "b2", t0.Add(-2*h)), from("Blog", "b3", t0.Add(-3*h)), from("Blog", "b4", t0.Add(-4*h)),
	}}
	other := &fakeSource{name: "Other", arts: []article.Article{from("Other", "o1", t0.Add(-5*h))}}
	p, st := newPipeline(t, blog, other)
	p.Rules = map[string]pipeline.SourceRules{"Blog": {Backfill: 2}, "Other": {Backfill: -1}}
	backlog := []string{"b3: " + string(issue.Backlog), "b4: " + string(issue.Backlog)}

	for _, step := range []string{"preview", "preview again", "build"} {
		var b *pipeline.Built
		var err error
		if step == "build" {
			b, err = p.Build(ctx, t0)
		} else {
			b, err = p.Preview(ctx, t0)
		}
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"b1", "b2", "o1"}, ids(b)); diff != "" {
			t.Errorf("%s: issue (-want +got):\n%s", step, diff)
		}
		if diff := cmp.Diff(backlog, reasons(b)); diff != "" {
			t.Errorf("%s: left out (-want +got):\n%s", step, diff)
		}
	}
	if err := st.MarkArticlesSent(ctx, "2026-11-30", []string{"b1", "b2", "o1"}); err != nil {
		t.Fatal(err)
	}

	// The next day Blog is gone from the config; the day after it is back
	// with four new stories, all taken: it does not backfill again, and its
	// backlog stays unsent.
	p.Sources = []source.Source{other}
	if _, err := p.Build(ctx, t0.Add(24*h)); err != nil {
		t.Fatal(err)
	}
	day3 := t0.Add(48 * h)
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		blog.arts = append(blog.arts, from("Blog", id, day3.Add(-h)))
	}
	p.Sources = []source.Source{blog, other}
	b, err := p.Build(ctx, day3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"n1", "n2", "n3", "n4"}, ids(b)); diff != "" {
		t.Errorf("re-added: issue (-want +got):\n%s", diff)
	}
	want := []string{"b1: already sent", "b2: already sent", "b3: " + string(issue.Backlog), "b4: " + string(issue.Backlog), "o1: already sent"}
	if diff := cmp.Diff(want, reasons(b)); diff != "" {
		t.Errorf("re-added: left out (-want +got):\n%s", diff)
	}
}

// TestSettleWaitsForChangesToStop: a story is held until it has stayed
// unchanged for settle, a change seen in between restarts the wait, and
// settle_max from first sight ends it.
func TestSettleWaitsForChangesToStop(t *testing.T) {
	ctx := context.Background()
	fresh := from("Blog", "fresh", t0.Add(-30*time.Minute))
	busy := from("Blog", "busy", t0.Add(-30*time.Minute))
	old := from("Blog", "old", t0.Add(-6*24*time.Hour)) // a new feed's story from last week
	blog := &fakeSource{name: "Blog", arts: []article.Article{fresh, busy, old}}
	p, _ := newPipeline(t, blog)
	p.Rules = map[string]pipeline.SourceRules{"Blog": {Rules: issue.Rules{Settle: 2 * time.Hour, SettleMax: 5 * time.Hour}, Backfill: -1}}
	steps := []struct {
		after   time.Duration // from t0
		edit    bool          // busy's title changes before this run
		want    []string
		changed time.Duration // busy's last change, before the run's time, when held
	}{
		{0, false, []string{"old"}, 30 * time.Minute},
		{time.Hour, true, []string{"old"}, 0},                       // changed as this run saw it
		{2 * time.Hour, false, []string{"fresh", "old"}, time.Hour}, // fresh: 2h30 unchanged
		{3 * time.Hour, true, []string{"fresh", "old"}, 0},
		{5 * time.Hour, true, []string{"fresh", "busy", "old"}, -1}, // settle_max from first sight at t0
	}
	for _, st := range steps {
		if st.edit {
			blog.arts[1].Title += " (updated)"
		}
		now := t0.Add(st.after)
		b, err := p.Preview(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st.want, ids(b)); diff != "" {
			t.Errorf("at t0+%s: issue (-want +got):\n%s", st.after, diff)
		}
		for _, o := range b.Issue.Left {
			if o.Article.ID == "busy" && (o.Reason != issue.Settling || now.Sub(o.Changed) != st.changed) {
				t.Errorf("at t0+%s: busy %s, changed %s ago, want settling, changed %s ago", st.after, o.Reason, now.Sub(o.Changed), st.changed)
			}
		}
	}
}

// TestSettleIgnoresASecondCopy: a story two sources carry, with different
// teasers, is not seen as changing from one copy to the other.
func TestSettleIgnoresASecondCopy(t *testing.T) {
	ctx := context.Background()
	a := from("Blog", "shared", t0.Add(-5*time.Hour))
	b := a
	b.Source, b.Teaser = "Mirror", "Another teaser"
	p, _ := newPipeline(t, &fakeSource{name: "Blog", arts: []article.Article{a}}, &fakeSource{name: "Mirror", arts: []article.Article{b}})
	p.Rules = map[string]pipeline.SourceRules{"Blog": {Rules: issue.Rules{Settle: 2 * time.Hour, SettleMax: 24 * time.Hour}, Backfill: -1}}
	for _, at := range []time.Duration{0, time.Hour} {
		got, err := p.Preview(ctx, t0.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"shared"}, ids(got)); diff != "" {
			t.Errorf("at t0+%s (-want +got):\n%s", at, diff)
		}
	}
}

// TestCheckCountsHeldOverLimitAndBacklog: Check reports, per source, the
// stories held by settle, over max_items and in a new source's backlog,
// and its newest date leaves drafts out.
func TestCheckCountsHeldOverLimitAndBacklog(t *testing.T) {
	h := time.Hour
	draft := from("Wire", "draft", t0.Add(-10*time.Minute))
	draft.Draft = true
	wire := &fakeSource{name: "Wire", arts: []article.Article{
		draft, from("Wire", "fresh", t0.Add(-20*time.Minute)), from("Wire", "w1", t0.Add(-3*h)), from("Wire", "w2", t0.Add(-4*h)), from("Wire", "w3", t0.Add(-5*h)),
	}}
	blog := &fakeSource{name: "Blog", arts: []article.Article{from("Blog", "b1", t0.Add(-h)), from("Blog", "b2", t0.Add(-2*h))}}
	p, _ := newPipeline(t, wire, blog)
	p.Rules = map[string]pipeline.SourceRules{
		"Wire": {Rules: issue.Rules{MaxItems: 2, Settle: time.Hour, SettleMax: 24 * h}, Backfill: -1},
		"Blog": {Backfill: 1},
	}
	checks, err := p.Check(context.Background(), t0)
	if err != nil {
		t.Fatal(err)
	}
	type counts struct {
		InWindow, Held, OverLimit, Backlog int
		Newest                             time.Time
	}
	var got []counts
	for _, c := range checks {
		got = append(got, counts{c.InWindow, c.Held, c.OverLimit, c.Backlog, c.Newest})
	}
	want := []counts{{2, 1, 1, 0, t0.Add(-20 * time.Minute)}, {1, 0, 0, 1, t0.Add(-h)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
	if w := checks[1].Warnings; len(w) != 1 || w[0] != "1 item older than the source's backfill when it was first seen: never sent" {
		t.Errorf("Blog's warnings %q", w)
	}
	// Check recorded no first sight: the build after it still finds Blog new.
	b, err := p.Build(context.Background(), t0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b1", "w1", "w2"}, ids(b)); diff != "" {
		t.Errorf("build after check (-want +got):\n%s", diff)
	}
}
