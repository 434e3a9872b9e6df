package pipeline_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/render"
	"github.com/digest/digest/internal/source"
	"github.com/digest/digest/internal/store"
)

// fakeSource returns fixed articles, or an error.
type fakeSource struct {
	name string
	arts []article.Article
	err  error
}

var _ source.Source = (*fakeSource)(nil)

func (f *fakeSource) Name() string { return f.name }
func (f *fakeSource) Fetch(context.Context) ([]article.Article, error) {
	return append([]article.Article(nil), f.arts...), f.err
}

var t0 = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

func story(id string, published time.Time) article.Article {
	return article.Article{ID: id, Title: "Story " + id, Link: "https://example.org/" + id, Source: "S", Section: "News", Published: published, Teaser: "Teaser " + id}
}

func newPipeline(t *testing.T, srcs ...source.Source) (*pipeline.Pipeline, *store.Store) {
	t.Helper()
	return newPipelineWith(t, nil, srcs...)
}

// newPipelineWith opens the store with opts.
func newPipelineWith(t *testing.T, opts []store.Option, srcs ...source.Source) (*pipeline.Pipeline, *store.Store) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "digest.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r, err := render.New("", render.Newsletter{Name: "Test", BaseURL: "https://example.org"})
	if err != nil {
		t.Fatal(err)
	}
	return &pipeline.Pipeline{
		Sources: srcs, Store: st, Renderer: r, Archive: filepath.Join(dir, "digests"),
		Location: time.UTC, Window: 168 * time.Hour, MaxArticles: 30, Sections: []string{"News"},
	}, st
}

func ids(b *pipeline.Built) []string {
	var out []string
	for _, a := range b.Issue.Articles() {
		out = append(out, a.ID)
	}
	return out
}

func TestBuildArchivesAndReportsSources(t *testing.T) {
	ok := &fakeSource{name: "ok", arts: []article.Article{story("a", t0.Add(-time.Hour)), story("b", t0.Add(-2*time.Hour))}}
	bad := &fakeSource{name: "bad", err: errors.New("feed bad: HTTP 500")}
	p, _ := newPipeline(t, ok, bad)
	b, err := p.Build(context.Background(), t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(b); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("articles %q", got)
	}
	if b.Issue.Number != 1 || b.Issue.ID != "2026-11-30" {
		t.Errorf("issue %s #%d", b.Issue.ID, b.Issue.Number)
	}
	if len(b.Sources) != 2 || b.Sources[1].Err == nil || b.Sources[1].Status != source.StatusError || b.Sources[1].Streak != 1 {
		t.Errorf("source results %+v", b.Sources)
	}
	for _, f := range []string{"digest.html", "digest.txt", "issue.json", "../index.html", "../feed.xml"} {
		if _, err := os.Stat(filepath.Join(b.Dir, f)); err != nil {
			t.Error(err)
		}
	}
	// Load renders the archived issue again.
	l, err := p.Load(context.Background(), b.Issue.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Loaded || l.Rendered.Subject != b.Rendered.Subject || len(ids(l)) != 2 {
		t.Errorf("loaded %+v", l.Issue)
	}
}

func TestBuildDatesUndatedArticlesOnce(t *testing.T) {
	undated := story("u", time.Time{})
	src := &fakeSource{name: "s", arts: []article.Article{undated}}
	p, _ := newPipeline(t, src)
	first, err := p.Build(context.Background(), t0.Add(-100*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := first.Issue.Articles(); len(got) != 1 || !got[0].Published.Equal(t0.Add(-100*time.Hour)) {
		t.Fatalf("first build: %+v", got)
	}
	// 100 hours later the article keeps its first-seen date; 200 hours later
	// it has left the window instead of looking new forever.
	later, err := p.Build(context.Background(), t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := later.Issue.Articles(); len(got) != 1 || !got[0].Published.Equal(t0.Add(-100*time.Hour)) {
		t.Errorf("later build: %+v", got)
	}
	gone, err := p.Build(context.Background(), t0.Add(100*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !gone.Empty() {
		t.Errorf("undated article still in the window: %q", ids(gone))
	}
}

func TestNoRepeatsAcrossIssues(t *testing.T) {
	src := &fakeSource{name: "s", arts: []article.Article{story("old", t0.Add(-30*time.Hour))}}
	p, st := newPipeline(t, src)
	ctx := context.Background()
	first, err := p.Build(ctx, t0.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Delivery starting records the issue's articles.
	wire(t, p, st, nil)
	if _, err := p.Deliver(ctx, pipeline.Request{Now: t0.Add(-24 * time.Hour), IssueID: first.Issue.ID}); err != nil {
		t.Fatal(err)
	}
	// The feed republishes the story, once as it was and once under a new
	// GUID with a tracking parameter, and adds one.
	again := story("old-again", t0.Add(-2*time.Hour))
	again.Link = "https://EXAMPLE.org/old?utm_source=feed#top"
	src.arts = append(src.arts, again, story("new", t0.Add(-time.Hour)))
	second, err := p.Build(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(second); len(got) != 1 || got[0] != "new" {
		t.Errorf("second issue %q, want only the new story", got)
	}
	// Nothing new at all: the issue is empty and not archived.
	src.arts = src.arts[:2]
	third, err := p.Build(ctx, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !third.Empty() || third.Dir != "" {
		t.Errorf("third issue %q in %q, want empty and unarchived", ids(third), third.Dir)
	}
}

func TestBuildRefusesAnIssueBeingDelivered(t *testing.T) {
	src := &fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-time.Hour))}}
	p, st := newPipeline(t, src)
	ctx := context.Background()
	if _, err := st.Add(ctx, "reader@example.org", ""); err != nil {
		t.Fatal(err)
	}
	b, err := p.Build(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enqueue(ctx, b.Issue.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Build(ctx, t0); !errors.Is(err, pipeline.ErrDelivering) {
		t.Errorf("rebuild while delivering: %v, want ErrDelivering", err)
	}
}
