package pipeline_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/archive"
	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/render"
)

// A built issue lives in the store: with its archive folder gone and the
// templates changed, it loads as it was built (a started issue keeps its
// rendering), and Publish writes its folder again.
func TestBuiltIssueLivesInTheStore(t *testing.T) {
	ctx := context.Background()
	src := &fakeSource{name: "S", arts: []article.Article{story("a", t0.Add(-time.Hour))}}
	p, _ := newPipeline(t, src)
	b, err := p.Build(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := b.Rendered.Text(render.Personal{Name: "Ann", Email: "ann@example.org"})
	if err := os.RemoveAll(p.Archive); err != nil {
		t.Fatal(err)
	}

	tmpl := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmpl, render.SubjectFile), []byte("Changed {{.Issue.Number}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p.Renderer, err = render.New(tmpl, render.Newsletter{Name: "Test", BaseURL: "https://example.org"}); err != nil {
		t.Fatal(err)
	}
	got, err := p.Load(ctx, b.Issue.ID)
	if err != nil {
		t.Fatalf("load with the archive folder gone: %v", err)
	}
	if got.Rendered.Subject != b.Rendered.Subject || got.Rendered.Text(render.Personal{Name: "Ann", Email: "ann@example.org"}) != want {
		t.Errorf("loaded issue renders differently: subject %q, want %q", got.Rendered.Subject, b.Rendered.Subject)
	}
	if got.Issue.Number != b.Issue.Number || len(got.Issue.Articles()) != 1 {
		t.Errorf("loaded issue %+v", got.Issue)
	}

	n, err := p.Publish(ctx)
	if err != nil || n != 1 {
		t.Fatalf("publish: %d issues, %v", n, err)
	}
	for _, f := range []string{archive.HTMLFile, archive.TextFile, archive.IssueFile} {
		if _, err := os.Stat(filepath.Join(archive.Dir(p.Archive, b.Issue.ID), f)); err != nil {
			t.Errorf("published folder: %v", err)
		}
	}
	html, err := os.ReadFile(filepath.Join(archive.Dir(p.Archive, b.Issue.ID), archive.HTMLFile))
	if err != nil || !strings.Contains(string(html), "Story a") {
		t.Errorf("published HTML lacks the story: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p.Archive, "index.html")); err != nil {
		t.Errorf("index: %v", err)
	}
}
