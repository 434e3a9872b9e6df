package pipeline_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/source"
)

func TestBelieve(t *testing.T) {
	seen := t0.Add(-3 * time.Hour)
	east := time.FixedZone("UTC+1", 3600)
	west := time.FixedZone("UTC-14", -14*3600)
	tests := []struct {
		name string
		pub  time.Time
		want time.Time
		how  pipeline.Dating
	}{
		{"no date", time.Time{}, seen, pipeline.DatedFirstSeen},
		{"year 1 in another zone", time.Date(1, 1, 1, 0, 0, 0, 0, east), seen, pipeline.DatedFirstSeen},
		{"Unix time 0", time.Unix(0, 0), seen, pipeline.DatedFirstSeen},
		{"Unix time 0 west of UTC", time.Date(1970, 1, 1, 0, 0, 0, 0, west), seen, pipeline.DatedFirstSeen},
		{"1971", time.Date(1971, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(1971, 3, 1, 0, 0, 0, 0, time.UTC), pipeline.DatedBySource},
		{"yesterday", t0.Add(-24 * time.Hour), t0.Add(-24 * time.Hour), pipeline.DatedBySource},
		{"now", t0, t0, pipeline.DatedBySource},
		{"an hour ahead", t0.Add(time.Hour), seen, pipeline.DatedFirstSeen},
		{"just within the tolerance", t0.Add(pipeline.FutureTolerance), seen, pipeline.DatedFirstSeen},
		{"beyond the tolerance", t0.Add(pipeline.FutureTolerance + time.Second), t0.Add(pipeline.FutureTolerance + time.Second), pipeline.DatedLater},
		{"2099", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), pipeline.DatedLater},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, how := pipeline.Believe(tt.pub, seen, t0)
			if !got.Equal(tt.want) || how != tt.how {
				t.Errorf("Believe(%s) = %s, %d; want %s, %d", tt.pub, got, how, tt.want, tt.how)
			}
		})
	}
}

// The feed of testdata/dates.xml, at t0 with a week's window: a dated
// story, five without a date the builder believes (none, garbage, year 1
// twice, 1970), one a month old, one an hour ahead (a clock error) and
// one in 2099.
var (
	datesInWindow = []string{"dated", "undated", "garbage", "year-one", "year-one-east", "epoch", "skew"}
	datesCheck    = pipeline.SourceCheck{
		SourceResult: pipeline.SourceResult{Name: "Dates", Status: source.StatusOK, Articles: 9},
		InWindow:     7, Newest: t0, FirstSeen: 6, Later: 1, LaterFrom: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
	}
)

func datesSource(t *testing.T) source.Source {
	t.Helper()
	src, err := source.New(source.Spec{Name: "Dates", Type: "feed", Path: "testdata/dates.xml"}, source.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// links are the last path elements of the issue's article links.
func links(arts []article.Article) []string {
	var out []string
	for _, a := range arts {
		out = append(out, a.Link[strings.LastIndex(a.Link, "/")+1:])
	}
	slices.Sort(out)
	return out
}

func TestCheckAndBuildAgreeOnDates(t *testing.T) {
	ctx := context.Background()
	want := slices.Clone(datesInWindow)
	slices.Sort(want)
	for _, checkFirst := range []bool{true, false} {
		name := "build then check"
		if checkFirst {
			name = "check then build"
		}
		t.Run(name, func(t *testing.T) {
			p, _ := newPipeline(t, datesSource(t))
			var checks []pipeline.SourceCheck
			var built *pipeline.Built
			var err error
			for _, check := range []bool{checkFirst, !checkFirst} {
				if check {
					checks, err = p.Check(ctx, t0)
				} else {
					built, err = p.Build(ctx, t0)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if len(checks) != 1 {
				t.Fatalf("%d reports, want 1", len(checks))
			}
			c := checks[0]
			w := datesCheck
			if c.Name != w.Name || c.Status != w.Status || c.Articles != w.Articles || c.Err != nil ||
				c.InWindow != w.InWindow || !c.Newest.Equal(w.Newest) || c.FirstSeen != w.FirstSeen ||
				c.Later != w.Later || !c.LaterFrom.Equal(w.LaterFrom) {
				t.Errorf("check\n got %+v\nwant %+v", c, w)
			}
			if len(c.Warnings) != 2 || !strings.Contains(c.Warnings[0], "6 items dated when first seen") ||
				!strings.Contains(c.Warnings[1], "1 item dated more than 48 hours ahead (from 2099-01-01 00:00)") {
				t.Errorf("warnings %q", c.Warnings)
			}
			arts := built.Issue.Articles()
			if got := links(arts); !slices.Equal(got, want) {
				t.Errorf("issue holds %q, want what check counts in the window: %q", got, want)
			}
			newest := time.Time{}
			for _, a := range arts {
				if a.Published.After(newest) {
					newest = a.Published
				}
			}
			if !newest.Equal(c.Newest) {
				t.Errorf("newest in the issue %s, check says %s", newest, c.Newest)
			}
		})
	}
}

// A later check dates the undated items as the first one saw them: they
// leave the window instead of looking new on every run.
func TestCheckKeepsFirstSeenDates(t *testing.T) {
	ctx := context.Background()
	p, _ := newPipeline(t, datesSource(t))
	if _, err := p.Check(ctx, t0); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(200 * time.Hour)
	checks, err := p.Check(ctx, later)
	if err != nil {
		t.Fatal(err)
	}
	c := checks[0]
	// The clock-skew item is now in the past: its own date is believed.
	skew := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	if c.InWindow != 0 || !c.Newest.Equal(skew) || c.FirstSeen != 5 || c.Later != 1 {
		t.Errorf("check 200 hours later: %+v", c)
	}
	b, err := p.Build(ctx, later)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Empty() {
		t.Errorf("build 200 hours later holds %q", ids(b))
	}
}

func TestCheckReportsFailuresAndWarnings(t *testing.T) {
	ctx := context.Background()
	bad := &fakeSource{name: "bad", err: errors.New("feed bad: HTTP 500")}
	partial := &fakeSource{name: "notes", arts: []article.Article{story("n", t0.Add(-time.Hour))},
		err: &source.Error{Kind: "markdown", Source: "notes", Problems: []error{errors.New("b.md: line 2: no title")}, Partial: true}}
	p, _ := newPipeline(t, bad, partial)
	for run := 1; run <= 2; run++ {
		checks, err := p.Check(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		b, n := checks[0], checks[1]
		if !b.Failed() || b.Status != source.StatusError || b.Streak != run {
			t.Errorf("run %d: failing source %+v, want failed with streak %d", run, b, run)
		}
		if n.Failed() || n.Status != source.StatusPartial || n.Streak != 0 || n.InWindow != 1 || n.Err == nil {
			t.Errorf("run %d: source with a bad file %+v, want partial, not failed, no streak", run, n)
		}
	}
}
