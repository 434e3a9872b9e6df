// Package pipeline holds the use cases, in one place: Build gathers, selects,
// renders and archives an issue; Send drives its delivery. The command line,
// the daemon's schedule and the preview all call these.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/digest/digest/internal/archive"
	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/render"
	"github.com/digest/digest/internal/source"
	"github.com/digest/digest/internal/store"
)

// Store is what the pipeline needs of the store.
type Store interface {
	SaveIssue(ctx context.Context, iss store.Issue) (store.Issue, error)
	GetIssue(ctx context.Context, id string) (store.Issue, error)
	LatestIssue(ctx context.Context) (store.Issue, error)
	MarkIssueComplete(ctx context.Context, id string, at time.Time) error
	FirstSeen(ctx context.Context, ids []string, now time.Time) (map[string]time.Time, error)
	SentBefore(ctx context.Context, ids []string, exceptIssue string) (map[string]string, error)
	MarkArticlesSent(ctx context.Context, issueID string, ids []string) error
	Enqueue(ctx context.Context, issueID string) (int, error)
	Counts(ctx context.Context, issueID string) (ledger.Counts, error)
	RecordSourceRun(ctx context.Context, name string, runErr error, at time.Time) (int, error)
}

// ErrDelivering is returned by Build when the issue's delivery has started:
// a built issue that people received is never rebuilt.
var ErrDelivering = errors.New("delivery of this issue has started; it is not rebuilt")

// FutureTolerance is how far ahead of the clock an article's date may be and
// still be taken as a clock error (dated when first seen instead).
const FutureTolerance = 48 * time.Hour

// Pipeline wires the stages. All fields but Logger are required.
type Pipeline struct {
	Sources     []source.Source
	Store       Store
	Renderer    *render.Renderer
	Archive     string         // folder of built issues
	Location    *time.Location // newsletter time zone
	Window      time.Duration
	MaxArticles int
	// Sections lists the sources' sections in config order.
	Sections []string
	// Intro returns the editor's introduction for the next issue as safe
	// HTML; nil means none.
	Intro func() (string, error)
	// UnsubscribePage is where the archived web version's unsubscribe link
	// points (it has no reader to sign a link for).
	UnsubscribePage string
	// Site describes the archive folder's index.html and feed.xml, rewritten
	// after every build.
	Site archive.Meta
	// Concurrency bounds concurrent source fetches; 0 means 8.
	Concurrency int
	Logger      *slog.Logger
}

// SourceResult is what one source yielded in a run.
type SourceResult struct {
	Name     string
	Status   source.Status // ok, not modified, stale (last good copy used) or error
	Articles int
	Took     time.Duration
	Err      error
	// Streak is how many runs in a row the source has failed, this one
	// included; 0 when it worked.
	Streak int
}

// Failing reports whether the source has failed often enough in a row to be
// reported loudly.
func (r SourceResult) Failing(threshold int) bool { return threshold > 0 && r.Streak >= threshold }

// Built is an issue that is rendered and archived.
type Built struct {
	Issue    issue.Issue
	Rendered *render.Rendered
	Dir      string         // archive folder of the issue
	Sources  []SourceResult // empty when the issue was loaded from the archive
	Loaded   bool           // true when read back from the archive, not gathered
	Warnings []string       // problems worth an editor's attention, such as size
}

// Empty reports whether the issue has no article.
func (b *Built) Empty() bool { return b.Issue.Count() == 0 }

func (p *Pipeline) log() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

// IssueID returns the id of the issue built at now.
func (p *Pipeline) IssueID(now time.Time) string { return issue.ID(now, p.Location) }

// Build gathers every source, selects the issue for now, renders it and
// archives it under Archive/<id>/. A failing source is reported in
// Built.Sources and the issue is built from the rest. An issue without
// articles is returned with Empty() true and is neither stored nor archived.
func (p *Pipeline) Build(ctx context.Context, now time.Time) (*Built, error) {
	id := p.IssueID(now)
	if c, err := p.Store.Counts(ctx, id); err != nil {
		return nil, err
	} else if c.Total() > 0 {
		return nil, fmt.Errorf("issue %s: %w", id, ErrDelivering)
	}
	arts, results := p.gather(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ids := make([]string, len(arts))
	for i, a := range arts {
		ids[i] = a.ID
	}
	seen, err := p.Store.FirstSeen(ctx, ids, now)
	if err != nil {
		return nil, err
	}
	for i := range arts {
		// An undated article is dated when first seen, not "now" on every
		// run. A date slightly in the future is a feed's clock or zone error
		// and is not believed either; one further ahead is a story not yet
		// published, left for the issue whose window reaches it.
		pub := arts[i].Published
		if pub.IsZero() || (pub.After(now) && !pub.After(now.Add(FutureTolerance))) {
			if t, ok := seen[arts[i].ID]; ok {
				arts[i].Published = t
			}
		}
	}
	var keys []string
	for _, a := range arts {
		keys = append(keys, sentKeys(a)...)
	}
	sent, err := p.Store.SentBefore(ctx, keys, id)
	if err != nil {
		return nil, err
	}
	sentIn := map[string]string{}
	for _, a := range arts {
		for _, k := range sentKeys(a) {
			if in, ok := sent[k]; ok {
				sentIn[a.ID] = in
			}
		}
	}
	iss := issue.Select(arts, issue.Options{
		Now: now, Location: p.Location, Window: p.Window, MaxArticles: p.MaxArticles,
		Sections: p.Sections, SentIn: sentIn,
	})
	b := &Built{Issue: iss, Sources: results}
	if b.Empty() {
		return b, nil
	}
	if p.Intro != nil {
		intro, err := p.Intro()
		if err != nil {
			return nil, err
		}
		b.Issue.Intro = intro
	}
	rec, err := p.Store.SaveIssue(ctx, store.Issue{ID: iss.ID, BuiltAt: now, Articles: iss.Count()})
	if err != nil {
		return nil, err
	}
	b.Issue.Number = rec.Number
	if err := p.render(b); err != nil {
		return nil, err
	}
	if size := b.Rendered.HTMLSize(); size > render.HTMLSizeLimit {
		fit, err := p.Renderer.FitArticles(b.Issue, b.Issue.Intro, render.HTMLSizeLimit)
		if err != nil {
			return nil, err
		}
		b.Warnings = append(b.Warnings, fmt.Sprintf(
			"the HTML part is %d KB, over %d KB: Gmail clips messages over 102 KB; %d of the %d articles would fit (digest.max_articles)",
			size/1024, render.HTMLSizeLimit/1024, fit, b.Issue.Count()))
	}
	if err := p.archive(b); err != nil {
		return nil, err
	}
	return b, nil
}

// sentKeys are the identities under which an article is remembered once an
// issue carried it: its ID, and its canonical link. A story republished
// under a new GUID, or syndicated by another feed, is then still known.
func sentKeys(a article.Article) []string {
	keys := []string{a.ID}
	if a.Link != "" {
		keys = append(keys, "link:"+article.Canonical(a.Link))
	}
	return keys
}

// Load reads a built issue back from the archive and renders it again with
// the current templates (so an editor's fix to issue.json or a template
// before sending is honoured). It returns an error wrapping os.ErrNotExist
// when the issue was never built.
func (p *Pipeline) Load(ctx context.Context, id string) (*Built, error) {
	dir := filepath.Join(p.Archive, id)
	raw, err := os.ReadFile(filepath.Join(dir, "issue.json"))
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", id, err)
	}
	var iss issue.Issue
	if err := json.Unmarshal(raw, &iss); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "issue.json"), err)
	}
	rec, err := p.Store.GetIssue(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", id, err)
	}
	iss.Number = rec.Number
	b := &Built{Issue: iss, Dir: dir, Loaded: true}
	if err := p.render(b); err != nil {
		return nil, err
	}
	return b, nil
}

func (p *Pipeline) render(b *Built) error {
	r, err := p.Renderer.Render(b.Issue, b.Issue.Intro)
	if err != nil {
		return fmt.Errorf("issue %s: %w", b.Issue.ID, err)
	}
	b.Rendered = r
	return nil
}

// archive writes digest.html, digest.txt and issue.json. The archived parts
// are the web version: no recipient's name, a generic unsubscribe page.
func (p *Pipeline) archive(b *Built) error {
	b.Dir = filepath.Join(p.Archive, b.Issue.ID)
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	web := render.Personal{Email: "your address", UnsubscribeURL: p.UnsubscribePage}
	meta, err := json.MarshalIndent(b.Issue, "", "  ")
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
	}{
		{"digest.html", []byte(b.Rendered.HTML(web))},
		{"digest.txt", []byte(b.Rendered.Text(web))},
		{"issue.json", append(meta, '\n')},
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(b.Dir, f.name), f.data); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
	}
	// A broken older issue must not stop this one: the index is written from
	// the rest and the problem logged.
	if err := archive.Write(p.Archive, p.Site, b.Issue.Date); err != nil {
		p.log().Warn("archive index", "err", err)
	}
	return nil
}

// writeFile replaces path atomically.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// gather fetches every source concurrently. Articles come back in source
// order, whatever order the fetches finish in.
func (p *Pipeline) gather(ctx context.Context) ([]article.Article, []SourceResult) {
	n := p.Concurrency
	if n <= 0 {
		n = 8
	}
	results := make([]SourceResult, len(p.Sources))
	perSource := make([][]article.Article, len(p.Sources))
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, s := range p.Sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			arts, rep, err := source.Check(ctx, s)
			results[i] = SourceResult{Name: s.Name(), Status: rep.Status, Articles: len(arts), Took: rep.Took, Err: err}
			perSource[i] = arts
			if err != nil {
				p.log().Warn("source failed", "source", s.Name(), "status", rep.Status, "err", err)
			}
		}()
	}
	wg.Wait()
	for i := range results {
		streak, err := p.Store.RecordSourceRun(ctx, results[i].Name, results[i].Err, time.Now())
		if err != nil {
			p.log().Warn("recording source run", "source", results[i].Name, "err", err)
		}
		results[i].Streak = streak
	}
	var all []article.Article
	for _, arts := range perSource {
		all = append(all, arts...)
	}
	return all, results
}
