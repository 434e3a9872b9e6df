package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/plural"
)

func (e *env) build(ctx context.Context, args []string) error {
	f := newFlags(e, "build", true)
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	now := e.now()
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	p, err := e.pipeline()
	if err != nil {
		return err
	}
	b, err := p.Build(ctx, now)
	if errors.Is(err, pipeline.ErrDelivering) {
		id := p.IssueID(now)
		how := "is already being delivered"
		if c, cerr := e.store.Counts(ctx, id); cerr == nil && c.Done() {
			how = "was already delivered"
		}
		fmt.Fprintf(e.stdout, "Issue %s %s; it was not rebuilt (see digest status %s).\n", id, how, id)
		return nil
	}
	if err != nil {
		return err
	}
	e.observe(b)
	printBuilt(e.stdout, b)
	return failedSources(b)
}

// printBuilt prints what was built and where it is.
func printBuilt(w io.Writer, b *pipeline.Built) {
	if len(b.Sources) > 0 {
		printSources(w, b.Sources)
	}
	if b.Empty() {
		if b.AllSourcesFailed() {
			fmt.Fprintf(w, "Issue %s: every source failed; nothing built, nothing to send.\n", b.Issue.ID)
		} else {
			fmt.Fprintf(w, "Issue %s: no new articles in the window; nothing built, nothing to send.\n", b.Issue.ID)
		}
		return
	}
	how := "built"
	if b.Loaded {
		how = "already built"
	}
	fmt.Fprintf(w, "Issue %s (#%d) %s: %s in %s\n", b.Issue.ID, b.Issue.Number, how,
		plural.N(b.Issue.Count(), "story", "stories"), plural.N(len(b.Issue.Sections), "section", "sections"))
	if line := heldBack(b.Issue); line != "" {
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "Subject: %s\n", b.Rendered.Subject)
	for _, warn := range b.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
	if _, err := os.Stat(b.Dir); err != nil {
		// Loaded from the store on a machine whose archive folder does
		// not have it: digest archive publishes it here.
		return
	}
	fmt.Fprintf(w, "Files: %s (digest.html, digest.txt, issue.json)\n", relPath(b.Dir)+string(filepath.Separator))
}

// failedSources makes the exit status 1 when every source failed: an issue
// built from some sources is a success with warnings.
func failedSources(b *pipeline.Built) error {
	if !b.AllSourcesFailed() {
		return nil
	}
	return &exitError{code: ExitFailed, err: pipeline.ErrEverySourceFailed}
}
