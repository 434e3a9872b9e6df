// Package pipeline holds the use cases, in one place: Build gathers, selects,
// renders and archives an issue; Preview does the same without writing
// anything; Deliver picks the issue to send (building it when needed) and
// delivers it through the ledger under a lease, so that two processes never
// double a send; SendTest sends one test copy. The command line, the
// daemon's schedule and the preview all call these, and nothing else
// decides what is sent.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/digest/digest/internal/archive"
	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/render"
	"github.com/digest/digest/internal/schedule"
	"github.com/digest/digest/internal/source"
	"github.com/digest/digest/internal/subscriber"
)

// Store is what the pipeline needs of the store. Its errors wrap
// ledger.ErrNotFound for an unknown issue.
type Store interface {
	SaveIssue(ctx context.Context, iss ledger.Issue) (ledger.Issue, error)
	GetIssue(ctx context.Context, id string) (ledger.Issue, error)
	LatestIssue(ctx context.Context) (ledger.Issue, error)
	// IncompleteIssues lists up to limit issues whose delivery is not
	// complete, the latest first.
	IncompleteIssues(ctx context.Context, limit int) ([]string, error)
	// RetriesWaiting counts the issue's pending rows whose next attempt is
	// not due yet (a reader's own temporary failure), and when the first is.
	RetriesWaiting(ctx context.Context, issueID string) (int, time.Time, error)
	MarkIssueComplete(ctx context.Context, id string, at time.Time) error
	// DeleteUnsentIssue deletes an issue whose delivery never started; it
	// returns ErrNotFound otherwise.
	DeleteUnsentIssue(ctx context.Context, id string) error
	// Observe records the stories seen at now (first sight, changes) and
	// returns what is known of each; SourcesSeen and SeeSource keep when
	// each source was first seen, and mark a new source's backlog.
	Observe(ctx context.Context, seen []ledger.Sighting, now time.Time) (map[string]ledger.Observed, error)
	SourcesSeen(ctx context.Context, names []string) (map[string]time.Time, error)
	SeeSource(ctx context.Context, name string, now time.Time, backlog []string) (bool, error)
	SentBefore(ctx context.Context, ids []string, exceptIssue string) (map[string]string, error)
	MarkArticlesSent(ctx context.Context, issueID string, ids []string) error
	Enqueue(ctx context.Context, issueID string) (int, error)
	Counts(ctx context.Context, issueID string) (ledger.Counts, error)
	RecordSourceRun(ctx context.Context, name string, runErr error, at time.Time) (int, error)
	// SaveIssueContent and IssueContent keep what renders a built issue;
	// IssueContent's error wraps ErrNotFound when there is none.
	SaveIssueContent(ctx context.Context, id string, c ledger.IssueContent) error
	IssueContent(ctx context.Context, id string) (ledger.IssueContent, error)
	// IssueIDs lists the built issues, oldest first.
	IssueIDs(ctx context.Context) ([]string, error)
	// IssueOutcome counts the bounces and complaints about an issue.
	IssueOutcome(ctx context.Context, issueID string) (ledger.IssueOutcome, error)
}

// ErrDelivering is returned by Build when the issue's delivery has started:
// a built issue that people received is never rebuilt.
var ErrDelivering = errors.New("delivery of this issue has started; it is not rebuilt")

// FutureTolerance is how far ahead of the clock an article's date may be and
// still be taken as a clock error (dated when first seen instead).
const FutureTolerance = 48 * time.Hour

// Pipeline wires the stages. Build needs Sources, Store, Renderer, Archive,
// Location, Window and MaxArticles; Check needs only Sources, Store,
// Location and Window; the other fields are optional, and Delivery is for
// Deliver and SendTest.
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
	// Frequency is how often the schedule fires: it sets the form of issue
	// ids (schedule.IssueID). The zero value, Daily, names issues by date.
	Frequency schedule.Frequency
	// Rules are the editors' per-source rules, by source name; a source
	// not listed has none (and brings all its stories when new).
	Rules map[string]SourceRules
	// SourceTopics maps each source's name to its topics (lower case), so
	// that delivery sends each reader only the articles of their topics;
	// an empty list sends a source's articles to everyone. Nil: no topics,
	// everyone gets the whole issue.
	SourceTopics map[string][]string
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
	// BuildLock, when set, runs fn holding a lock that only one process at
	// a time can hold for issue id (store.WithBuildLock: an advisory lock
	// on Postgres, a lock file beside SQLite), so that several workers
	// starting at once build an issue once and the others load it.
	BuildLock func(ctx context.Context, id string, fn func(context.Context) error) error
	Logger    *slog.Logger

	// What delivery needs (Deliver, SendTest); Build and Preview do without.
	Delivery Delivery
}

// Delivery wires the delivery use case.
type Delivery struct {
	// Runs registers delivery runs and lists the live ones.
	Runs Runs
	// Subscribers lists subscribers for dry runs.
	Subscribers func(ctx context.Context, fn func(subscriber.Subscriber) error) error
	// Encode encodes a rendered issue once for all its recipients
	// (mail.Composer.Prepare).
	Encode func(r *render.Rendered) (deliver.Builder, error)
	// Transport is where messages go.
	Transport deliver.Transport
	// Engine tunes the delivery engine: connections, the list's rate and
	// caps, attempts, backoff, progress. Its Lease is set per run.
	Engine deliver.Options
	// Sync, when set, brings the subscribers file into the store before a
	// run that is alone (subscribers_csv).
	Sync func(ctx context.Context) error
	// Process names this process in its runs (store.Process: the store
	// then holds its liveness for them); an empty Host means "localhost".
	Process ledger.Process
	// Lease is the length of a run's lease; 0 means DefaultLease. It is
	// renewed every third of it.
	Lease time.Duration
	// LeaseClock is the real clock of leases; nil means time.Now. It is not
	// the issue's clock (Request.Now): a lease says whether a process is
	// alive, whatever date an issue is built for.
	LeaseClock func() time.Time
	// Sleep waits, for the tests; nil uses a timer.
	Sleep func(ctx context.Context, d time.Duration) bool
	// Clock stamps when an issue's delivery completed: the command's clock
	// (--now when given, so that a run is reproducible); nil means the real
	// time. Request.Now says which issue; this says when it finished.
	Clock func() time.Time
	// PauseOnBounceRate, when above 0, pauses a delivery once this share
	// of the issue's messages done failed or hard-bounced (see
	// checkBounceRate): delivery.pause_on_bounce_rate.
	PauseOnBounceRate float64
	// Recorded, when set, is told of every outcome once it is recorded
	// (the metrics count them).
	Recorded func(ledger.Outcome)
	// Chosen, when set, is told which issue a Deliver call picked (and
	// whether it continues an earlier one) before anything is sent, so
	// that a long delivery can be announced as it starts.
	Chosen func(b *Built, continued bool)
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
	Sources  []SourceResult // empty when the issue was loaded from the store
	Loaded   bool           // true when read back from the store, not gathered
	Warnings []string       // problems worth an editor's attention, such as size
	// Out, in a preview of the next issue (PreviewNext), is the issue
	// whose delivery has started, which this one follows.
	Out *Out

	// As built: the templates and the sources' topics the issue renders
	// with, kept in the store. Unset (built is false), the pipeline's own.
	renderer *render.Renderer
	topics   map[string][]string
	built    bool
}

// Empty reports whether the issue has no article (or there is no issue).
func (b *Built) Empty() bool { return b == nil || b.Issue.Count() == 0 }

func (p *Pipeline) log() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

// IssueID returns the id of the issue for time at (a scheduled time, or a
// manual run's own time): see schedule.IssueID.
func (p *Pipeline) IssueID(at time.Time) string { return schedule.IssueID(at, p.Location, p.Frequency) }

// Build gathers every source, selects the issue for now, renders it and
// archives it under Archive/<id>/. A failing source is reported in
// Built.Sources and the issue is built from the rest. An issue without
// articles is returned with Empty() true and is neither stored nor archived.
func (p *Pipeline) Build(ctx context.Context, now time.Time) (*Built, error) {
	var b *Built
	id := p.IssueID(now)
	err := p.lockBuild(ctx, id, func(ctx context.Context) error {
		var err error
		b, err = p.build(ctx, id, now, true)
		return err
	})
	return b, err
}

// lockBuild runs fn holding the build lock of issue id, when BuildLock is
// set: one process at a time builds an issue; the others wait.
func (p *Pipeline) lockBuild(ctx context.Context, id string, fn func(context.Context) error) error {
	if p.BuildLock == nil {
		return fn(ctx)
	}
	return p.BuildLock(ctx, id, fn)
}

// Preview builds the issue for now exactly as Build would (same sources,
// selection, templates and rendering) but writes nothing: no issue record,
// no archive, no source-run streaks; the issue number is the one it would
// get. It is the editors' preview of the next issue.
func (p *Pipeline) Preview(ctx context.Context, now time.Time) (*Built, error) {
	return p.build(ctx, p.IssueID(now), now, false)
}

// build builds issue id from what the sources hold at now.
func (p *Pipeline) build(ctx context.Context, id string, now time.Time, persist bool) (*Built, error) {
	return p.buildSeen(ctx, id, now, now, persist)
}

// buildSeen makes issue id for now; clock is the run's own time, when the
// stories are seen (their first sight, changes, a new source's backlog):
// the same as now but for the preview of a later issue (PreviewNext).
func (p *Pipeline) buildSeen(ctx context.Context, id string, now, clock time.Time, persist bool) (*Built, error) {
	if c, err := p.Store.Counts(ctx, id); err != nil {
		return nil, err
	} else if c.Total() > 0 && persist {
		return nil, fmt.Errorf("issue %s: %w", id, ErrDelivering)
	}
	arts, results := p.gather(ctx, now, persist)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	obs, backlog, err := p.see(ctx, arts, results, clock, persist)
	if err != nil {
		return nil, err
	}
	sentIn, err := p.sentIn(ctx, arts, id)
	if err != nil {
		return nil, err
	}
	iss := issue.Select(arts, issue.Options{
		Now: now, Location: p.Location, Window: p.Window, MaxArticles: p.MaxArticles,
		Sections: p.Sections, SentIn: sentIn, Rules: p.issueRules(), Seen: seenByID(obs), Backlog: backlog,
	})
	iss.ID = id // named by its time, which may be earlier than now
	b := &Built{Issue: iss, Sources: results, renderer: p.Renderer, topics: p.SourceTopics, built: true}
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
	if err := p.number(ctx, b, now, persist); err != nil {
		return nil, err
	}
	if err := p.render(b); err != nil {
		return nil, err
	}
	if err := p.checkSize(b); err != nil {
		return nil, err
	}
	if !persist {
		return b, nil
	}
	if err := p.saveContent(ctx, b); err != nil {
		return nil, err
	}
	if err := p.archive(b); err != nil {
		return nil, err
	}
	return b, nil
}

// sentIn maps each article that an earlier issue carried (by ID or
// canonical link) to that issue.
func (p *Pipeline) sentIn(ctx context.Context, arts []article.Article, id string) (map[string]string, error) {
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
	return sentIn, nil
}

// number gives b its number: saved with its record when persist (an
// unsent earlier issue is replaced), the one it would get otherwise.
func (p *Pipeline) number(ctx context.Context, b *Built, now time.Time, persist bool) error {
	iss := b.Issue
	if !persist {
		n, err := p.nextNumber(ctx, iss.ID)
		b.Issue.Number = n
		return err
	}
	if err := p.replaceUnsent(ctx, iss.ID); err != nil {
		return err
	}
	rec, err := p.Store.SaveIssue(ctx, ledger.Issue{ID: iss.ID, BuiltAt: now, Articles: iss.Count()})
	if err != nil {
		return err
	}
	b.Issue.Number = rec.Number
	return nil
}

// checkSize warns when the HTML part is over what Gmail shows unclipped.
func (p *Pipeline) checkSize(b *Built) error {
	size := b.Rendered.HTMLSize()
	if size <= render.HTMLSizeLimit {
		return nil
	}
	fit, err := p.rendererOf(b).FitArticles(b.Issue, b.Issue.Intro, render.HTMLSizeLimit)
	if err != nil {
		return err
	}
	b.Warnings = append(b.Warnings, fmt.Sprintf(
		"the HTML part is %d KB, over %d KB: Gmail clips messages over 102 KB; %d of the %d articles would fit (digest.max_articles)",
		size/1024, render.HTMLSizeLimit/1024, fit, b.Issue.Count()))
	return nil
}

// saveContent keeps in the store what renders b: any process with the
// database and the config can then deliver it, and the archive folder can
// be written again from it.
func (p *Pipeline) saveContent(ctx context.Context, b *Built) error {
	raw, err := json.Marshal(b.Issue)
	if err != nil {
		return fmt.Errorf("issue %s: %w", b.Issue.ID, err)
	}
	return p.Store.SaveIssueContent(ctx, b.Issue.ID, ledger.IssueContent{
		Issue: raw, Templates: b.renderer.Templates(), Topics: b.topics})
}

// unsentBefore returns the latest issue when it is not id and its delivery
// never started (built by `digest build`, say, and never sent): the next
// build replaces it rather than leaving it in the archive as if it had been
// published, its stories going out again in the next issue.
func (p *Pipeline) unsentBefore(ctx context.Context, id string) (ledger.Issue, bool, error) {
	last, err := p.Store.LatestIssue(ctx)
	if errors.Is(err, ledger.ErrNotFound) {
		return ledger.Issue{}, false, nil
	}
	// Ids sort in time order: only an issue for a later time replaces one.
	if err != nil || last.ID >= id || !last.CompletedAt.IsZero() {
		return last, false, err
	}
	c, err := p.Store.Counts(ctx, last.ID)
	return last, err == nil && c.Total() == 0, err
}

// replaceUnsent deletes the latest issue, record and archive folder, when
// it was never sent (see unsentBefore), before issue id is saved in its
// place; id then takes its number.
func (p *Pipeline) replaceUnsent(ctx context.Context, id string) error {
	old, unsent, err := p.unsentBefore(ctx, id)
	if err != nil || !unsent {
		return err
	}
	if dropped, err := p.dropUnsent(ctx, old.ID); err != nil || !dropped {
		return err // !dropped: its delivery started meanwhile; it stays
	}
	p.log().Warn("an issue built but never sent is replaced by the new one", "unsent", old.ID, "number", old.Number, "issue", id)
	return nil
}

// dropUnsent deletes issue id, its record and its archive folder, unless
// its delivery has started (dropped is then false).
func (p *Pipeline) dropUnsent(ctx context.Context, id string) (dropped bool, err error) {
	if err := p.Store.DeleteUnsentIssue(ctx, id); errors.Is(err, ledger.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if err := os.RemoveAll(archive.Dir(p.Archive, id)); err != nil {
		return true, fmt.Errorf("archive: %w", err)
	}
	return true, nil
}

// nextNumber is the number issue id has, or would get if built now.
func (p *Pipeline) nextNumber(ctx context.Context, id string) (int, error) {
	if rec, err := p.Store.GetIssue(ctx, id); err == nil {
		return rec.Number, nil
	} else if !errors.Is(err, ledger.ErrNotFound) {
		return 0, err
	}
	last, unsent, err := p.unsentBefore(ctx, id)
	switch {
	case err != nil:
		return 0, err
	case last.ID == "":
		return 1, nil
	case unsent:
		return last.Number, nil // it would replace that one
	}
	return last.Number + 1, nil
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

// Load reads a built issue back from the store, where its build kept it,
// and renders it as it was built: with the templates and the sources'
// topics of its build, whatever the templates folder and the config say
// now (a started issue keeps its rendering; a fix takes a new issue). The
// archive folder is not read: it is a publication. An issue built before
// the store kept issues is read from its archive folder, as then, and
// rendered with the current templates. The error wraps ledger.ErrNotFound
// (or os.ErrNotExist) when the issue was never built.
func (p *Pipeline) Load(ctx context.Context, id string) (*Built, error) {
	rec, err := p.Store.GetIssue(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", id, err)
	}
	b := &Built{Dir: archive.Dir(p.Archive, id), Loaded: true}
	c, err := p.Store.IssueContent(ctx, id)
	switch {
	case err == nil:
		if err := json.Unmarshal(c.Issue, &b.Issue); err != nil {
			return nil, fmt.Errorf("issue %s: stored content: %w", id, err)
		}
		if b.renderer, err = p.Renderer.WithTemplates(c.Templates); err != nil {
			return nil, fmt.Errorf("issue %s: its templates as built: %w", id, err)
		}
		b.topics, b.built = c.Topics, true
	case errors.Is(err, ledger.ErrNotFound):
		if b.Issue, err = archive.Load(p.Archive, id); err != nil {
			return nil, fmt.Errorf("issue %s: %w", id, err)
		}
	default:
		return nil, err
	}
	b.Issue.Number = rec.Number
	if err := p.render(b); err != nil {
		return nil, err
	}
	return b, nil
}

// Publish writes the archive folder of every built issue again from the
// store, then the archive's index and feed: `digest archive`, on any
// machine with the database and the config. Issues the store holds no
// content for (built by an older version) keep their folder as it is.
// It returns how many issues it wrote.
func (p *Pipeline) Publish(ctx context.Context) (int, error) {
	ids, err := p.Store.IssueIDs(ctx)
	if err != nil {
		return 0, err
	}
	n, latest := 0, time.Time{}
	for _, id := range ids {
		if _, err := p.Store.IssueContent(ctx, id); errors.Is(err, ledger.ErrNotFound) {
			continue
		} else if err != nil {
			return n, err
		}
		b, err := p.Load(ctx, id)
		if err != nil {
			return n, err
		}
		if err := p.saveFolder(b); err != nil {
			return n, err
		}
		n, latest = n+1, b.Issue.Date
	}
	// The feed's time is the latest issue's, as a build writes it: the
	// same store publishes the same archive.
	if latest.IsZero() {
		latest = p.clock()
	}
	if err := archive.Write(p.Archive, p.Site, latest); err != nil {
		return n, err
	}
	return n, nil
}

// rendererOf is the renderer b renders with: its build's, else the
// pipeline's.
func (p *Pipeline) rendererOf(b *Built) *render.Renderer {
	if b.built {
		return b.renderer
	}
	return p.Renderer
}

// topicsOf is the sources' topics b is delivered by: its build's, else
// the pipeline's.
func (p *Pipeline) topicsOf(b *Built) map[string][]string {
	if b.built {
		return b.topics
	}
	return p.SourceTopics
}

func (p *Pipeline) render(b *Built) error {
	r, err := p.rendererOf(b).Render(b.Issue, b.Issue.Intro)
	if err != nil {
		return fmt.Errorf("issue %s: %w", b.Issue.ID, err)
	}
	b.Rendered = r
	return nil
}

// archive writes the issue's folder and the archive's index and feed.
func (p *Pipeline) archive(b *Built) error {
	if err := p.saveFolder(b); err != nil {
		return err
	}
	// A broken older issue must not stop this one: the index is written from
	// the rest and the problem logged.
	if err := archive.Write(p.Archive, p.Site, b.Issue.Date); err != nil {
		p.log().Warn("archive index", "err", err)
	}
	return nil
}

// saveFolder writes the issue's folder: the web version (no recipient's
// name, a generic unsubscribe page) and issue.json.
func (p *Pipeline) saveFolder(b *Built) error {
	web := render.Personal{Email: "your address", UnsubscribeURL: p.UnsubscribePage, PreferencesURL: p.UnsubscribePage}
	dir, err := archive.Save(p.Archive, b.Issue, b.Rendered.HTML(web), b.Rendered.Text(web))
	if err != nil {
		return err
	}
	b.Dir = dir
	return nil
}

// gather fetches every source concurrently. Articles come back in source
// order, whatever order the fetches finish in. With record, each source's
// run is recorded (failure streaks) at now.
func (p *Pipeline) gather(ctx context.Context, now time.Time, record bool) ([]article.Article, []SourceResult) {
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
			switch {
			case source.Failed(err):
				p.log().Warn("source failed", "source", s.Name(), "status", rep.Status, "err", err)
			case err != nil:
				p.log().Warn("source skipped some items", "source", s.Name(), "status", rep.Status, "err", err)
			}
		}()
	}
	wg.Wait()
	for i := range results {
		if !record {
			continue
		}
		streak, err := p.Store.RecordSourceRun(ctx, results[i].Name, results[i].Err, now)
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
