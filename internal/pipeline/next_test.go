package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/schedule"
)

// TestPreviewNextAfterDelivery: while the issue for now is unsent the
// preview shows it; once it went out, the preview shows the issue at the
// next scheduled time with only the stories not sent yet.
func TestPreviewNextAfterDelivery(t *testing.T) {
	ctx := context.Background()
	src := &fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-2*time.Hour)), story("b", t0.Add(-time.Hour))}}
	p, st := newPipeline(t, src)
	daily, err := schedule.Parse("0 8 * * *", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	before, err := p.PreviewNext(ctx, t0, daily.Next)
	if err != nil {
		t.Fatal(err)
	}
	if before.Out != nil || before.Issue.ID != "2026-11-30" || before.Issue.Number != 1 || len(ids(before)) != 2 {
		t.Fatalf("before delivery: issue %s #%d %q, out %+v", before.Issue.ID, before.Issue.Number, ids(before), before.Out)
	}
	wire(t, p, st, nil)
	addReaders(t, st, "ann@example.org", "bob@example.org")
	if _, err := p.Deliver(ctx, pipeline.Request{Now: t0}); err != nil {
		t.Fatal(err)
	}
	src.arts = append(src.arts, story("c", t0.Add(30*time.Minute)))
	after, err := p.PreviewNext(ctx, t0.Add(time.Hour), daily.Next)
	if err != nil {
		t.Fatal(err)
	}
	if after.Out == nil || after.Out.ID != "2026-11-30" || after.Out.Number != 1 || after.Out.Counts.Sent != 2 || after.Out.Completed.IsZero() {
		t.Fatalf("after delivery: out %+v", after.Out)
	}
	if after.Issue.ID != "2026-12-01" || after.Issue.Number != 2 || !after.Issue.Date.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("next issue %s #%d at %s, want 2026-12-01 #2 at the next scheduled time", after.Issue.ID, after.Issue.Number, after.Issue.Date)
	}
	if diff := cmp.Diff([]string{"c"}, ids(after)); diff != "" {
		t.Errorf("next issue's stories (-want +got):\n%s", diff)
	}
}
