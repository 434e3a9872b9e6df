package pipeline_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/render"
	"github.com/digest/digest/internal/store"
)

// leaseClock is a settable clock for leases.
type leaseClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *leaseClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *leaseClock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// runs adapts the store's runs to the pipeline (as cli does).
type runs struct{ st *store.Store }

func (r runs) BeginRun(ctx context.Context, info ledger.RunInfo, ttl time.Duration) (pipeline.Run, error) {
	run, err := r.st.BeginRun(ctx, info, ttl)
	if err != nil {
		return nil, err
	}
	return run, nil
}
func (r runs) LiveRuns(ctx context.Context) ([]ledger.RunInfo, error) { return r.st.LiveRuns(ctx) }

// flaky is a transport that fails to connect while down is set.
type flaky struct {
	deliver.Transport
	mu   sync.Mutex
	down bool
}

func (f *flaky) Open(ctx context.Context) (deliver.Conn, error) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return nil, errors.New("dial tcp 127.0.0.1:25: connection refused")
	}
	return f.Transport.Open(ctx)
}

// wire gives p a file transport under the test's folder, a composer, the
// store's runs, and fakes for every wait: nothing in these tests sleeps.
func wire(t *testing.T, p *pipeline.Pipeline, st *store.Store, clock *leaseClock) (outbox string, tr *flaky) {
	t.Helper()
	comp, err := mail.NewComposer(mail.Options{ListName: "Test", From: "news@example.org", BaseURL: "https://example.org", Secret: []byte("s")})
	if err != nil {
		t.Fatal(err)
	}
	outbox = filepath.Join(t.TempDir(), "outbox")
	tr = &flaky{Transport: deliver.NewFile(outbox)}
	noWait := func(ctx context.Context, _ time.Duration) bool { return ctx.Err() == nil }
	p.Delivery = pipeline.Delivery{
		Runs:        runs{st},
		Subscribers: st.List,
		Encode: func(r *render.Rendered) (deliver.Builder, error) {
			prep, err := comp.Prepare(r)
			if err != nil {
				return nil, err
			}
			return prep, nil
		},
		Transport: tr,
		Engine:    deliver.Options{Connections: 2, Backoff: func(int) time.Duration { return 0 }, OutageWait: 20 * time.Millisecond},
		Process:   ledger.Process{Host: "test", PID: 1},
		Sleep:     noWait,
	}
	if clock != nil {
		p.Delivery.LeaseClock = clock.now
	}
	return outbox, tr
}

func addReaders(t *testing.T, st *store.Store, emails ...string) {
	t.Helper()
	for _, e := range emails {
		if _, err := st.Add(context.Background(), e, ""); err != nil {
			t.Fatal(err)
		}
	}
}

func emlCount(t *testing.T, dir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

func TestDeliverFlow(t *testing.T) {
	src := &fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-time.Hour))}}
	p, st := newPipeline(t, src)
	ctx := context.Background()
	addReaders(t, st, "ann@example.org", "bob@example.org", "cy@example.org")
	outbox, _ := wire(t, p, st, nil)
	done := t0.Add(42 * time.Minute)
	p.Delivery.Clock = func() time.Time { return done }
	var recorded []string
	p.Delivery.Recorded = func(o ledger.Outcome) { recorded = append(recorded, o.Status) }

	res, err := p.Deliver(ctx, pipeline.Request{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recorded, []string{ledger.Sent, ledger.Sent, ledger.Sent}) {
		t.Errorf("Recorded was told %q, want three sent", recorded)
	}
	if res.Built == nil || res.Built.Issue.ID != "2026-11-30" || res.Enqueued != 3 || res.Summary.Sent != 3 ||
		res.Counts != (ledger.Counts{Sent: 3}) || !res.Counts.Done() || res.Run.ID == "" {
		t.Fatalf("result %+v", res)
	}
	if n := emlCount(t, filepath.Join(outbox, "2026-11-30")); n != 3 {
		t.Errorf("%d messages in the outbox, want 3", n)
	}
	rec, err := st.GetIssue(ctx, "2026-11-30")
	if err != nil || !rec.CompletedAt.Equal(done) {
		t.Errorf("issue record %+v (%v): want completed at the delivery clock's time", rec, err)
	}
	if live, _ := st.LiveRuns(ctx); len(live) != 0 {
		t.Errorf("runs still live after the call: %+v", live)
	}

	// Again: already delivered, nothing sent.
	res, err = p.Deliver(ctx, pipeline.Request{Now: t0.Add(time.Hour)})
	if err != nil || !res.Already || res.Summary.Sent != 0 {
		t.Errorf("second call: %+v, %v", res, err)
	}

	// A test copy goes beside the delivered ones, never over them, and
	// leaves the ledger alone.
	for range 2 {
		res, err = p.Deliver(ctx, pipeline.Request{Now: t0, IssueID: "2026-11-30", TestTo: "Ann@Example.org"})
		if err != nil || res.TestTo == "" {
			t.Fatalf("test copy: %+v, %v", res, err)
		}
	}
	if n := emlCount(t, filepath.Join(outbox, "2026-11-30", "test")); n != 2 {
		t.Errorf("%d test copies, want 2 side by side", n)
	}
	if n := emlCount(t, filepath.Join(outbox, "2026-11-30")); n != 3 {
		t.Errorf("delivered messages now %d, want 3", n)
	}
	if c, _ := st.Counts(ctx, "2026-11-30"); c != (ledger.Counts{Sent: 3}) {
		t.Errorf("a test copy touched the ledger: %+v", c)
	}
}

func TestDeliverRefusesWhileAnotherRunIsLive(t *testing.T) {
	src := &fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-time.Hour))}}
	clock := &leaseClock{t: time.Now()}
	p, st := newPipelineWith(t, []store.Option{store.WithLeaseClock(clock.now)}, src)
	ctx := context.Background()
	addReaders(t, st, "ann@example.org", "bob@example.org", "cy@example.org", "dee@example.org")
	outbox, _ := wire(t, p, st, clock)
	b, err := p.Build(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enqueue(ctx, b.Issue.ID); err != nil {
		t.Fatal(err)
	}
	// Another process claims two readers and dies (SIGKILL: no End).
	other, err := st.BeginRun(ctx, ledger.RunInfo{ID: "other", Host: "elsewhere", PID: 99, IssueID: b.Issue.ID}, pipeline.DefaultLease)
	if err != nil {
		t.Fatal(err)
	}
	held, err := other.Claim(ctx, b.Issue.ID, 2)
	if err != nil || len(held) != 2 {
		t.Fatalf("claim: %v %v", held, err)
	}

	// While its lease lasts: refused, with who and how far; nothing sent.
	res, err := p.Deliver(ctx, pipeline.Request{Now: t0})
	if err != nil || res.Busy == nil || res.Busy.Runs[0].PID != 99 || res.Busy.Runs[0].Claimed != 2 {
		t.Fatalf("result %+v, %v; want busy", res, err)
	}
	if n := emlCount(t, filepath.Join(outbox, b.Issue.ID)); n != 0 {
		t.Errorf("%d messages sent while another run was live", n)
	}

	// A worker joins: it sends the two free readers, never the two held,
	// and then waits; once the dead run's lease expires it takes them over.
	polls := 0
	p.Delivery.Engine.Sleep = func(ctx context.Context, d time.Duration) bool {
		polls++
		clock.add(d + pipeline.DefaultLease/3) // time passes while it waits
		return ctx.Err() == nil
	}
	res, err = p.Deliver(ctx, pipeline.Request{Now: t0, Worker: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Joined != 1 || res.Summary.Sent != 4 || res.Counts != (ledger.Counts{Sent: 4}) || polls == 0 {
		t.Errorf("worker result %+v after %d polls", res, polls)
	}
	if n := emlCount(t, filepath.Join(outbox, b.Issue.ID)); n != 4 {
		t.Errorf("%d messages, want 4 (each reader once)", n)
	}
}

func TestDeliverRelayDownThenResume(t *testing.T) {
	src := &fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-time.Hour))}}
	p, st := newPipeline(t, src)
	ctx := context.Background()
	addReaders(t, st, "ann@example.org", "bob@example.org")
	outbox, tr := wire(t, p, st, nil)
	tr.down = true

	res, err := p.Deliver(ctx, pipeline.Request{Now: t0})
	if err == nil || res.Counts.Done() || res.Counts != (ledger.Counts{Pending: 2}) {
		t.Fatalf("relay down: %+v, %v; want an error and everyone pending", res, err)
	}
	if live, _ := st.LiveRuns(ctx); len(live) != 0 {
		t.Errorf("the failed run is still live: %+v", live)
	}
	tr.down = false
	res, err = p.Deliver(ctx, pipeline.Request{Now: t0.Add(time.Hour)})
	if err != nil || !res.Counts.Done() || res.Counts != (ledger.Counts{Sent: 2}) {
		t.Fatalf("resume: %+v, %v", res, err)
	}
	if n := emlCount(t, filepath.Join(outbox, "2026-11-30")); n != 2 {
		t.Errorf("%d messages", n)
	}
}

func TestDeliverContinuesAnUnfinishedIssueFirst(t *testing.T) {
	src := &fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-time.Hour))}}
	p, st := newPipeline(t, src)
	ctx := context.Background()
	addReaders(t, st, "ann@example.org")
	_, tr := wire(t, p, st, nil)
	tr.down = true
	if _, err := p.Deliver(ctx, pipeline.Request{Now: t0}); err == nil {
		t.Fatal("want the relay error")
	}
	tr.down = false
	src.arts = append(src.arts, story("b", t0.Add(23*time.Hour)))
	res, err := p.Deliver(ctx, pipeline.Request{Now: t0.Add(24 * time.Hour)})
	if err != nil || !res.Continued || res.Built.Issue.ID != "2026-11-30" || res.Counts.Sent != 1 {
		t.Fatalf("next day: %+v, %v; want yesterday's issue finished first", res, err)
	}
	res, err = p.Deliver(ctx, pipeline.Request{Now: t0.Add(24 * time.Hour)})
	if err != nil || res.Continued || res.Built.Issue.ID != "2026-12-01" || res.Counts.Sent != 1 {
		t.Fatalf("then: %+v, %v; want today's issue", res, err)
	}
}

func TestPreviewWritesNothing(t *testing.T) {
	src := &fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-time.Hour))}}
	bad := &fakeSource{name: "bad", err: errors.New("HTTP 500")}
	p, st := newPipeline(t, src, bad)
	ctx := context.Background()
	b, err := p.Preview(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Empty() || b.Issue.Number != 1 || b.Dir != "" || b.Rendered == nil {
		t.Errorf("preview %+v", b)
	}
	if _, err := st.GetIssue(ctx, b.Issue.ID); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("preview saved the issue: %v", err)
	}
	if _, err := os.Stat(p.Archive); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("preview wrote the archive: %v", err)
	}
	// A failing source in previews does not count as a failed run.
	if built, err := p.Build(ctx, t0); err != nil || built.Sources[1].Streak != 1 {
		t.Errorf("first real build: streak %+v, %v", built.Sources, err)
	}
}

// countingSource counts its fetches.
type countingSource struct {
	fakeSource
	mu      sync.Mutex
	fetches int
}

func (c *countingSource) Fetch(ctx context.Context) ([]article.Article, error) {
	c.mu.Lock()
	c.fetches++
	c.mu.Unlock()
	return c.fakeSource.Fetch(ctx)
}

func TestWorkersStartingAtOnceBuildOnce(t *testing.T) {
	src := &countingSource{fakeSource: fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-time.Hour))}}}
	p, st := newPipeline(t, src)
	ctx := context.Background()
	addReaders(t, st, "ann@example.org", "bob@example.org", "cy@example.org")
	outbox, _ := wire(t, p, st, nil)
	var lock sync.Mutex
	p.BuildLock = func(ctx context.Context, _ string, fn func(context.Context) error) error {
		lock.Lock()
		defer lock.Unlock()
		return fn(ctx)
	}
	var wg sync.WaitGroup
	results := make([]pipeline.Result, 3)
	errs := make([]error, 3)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = p.Deliver(ctx, pipeline.Request{Now: t0, Worker: true}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	if src.fetches != 1 {
		t.Errorf("the issue was gathered %d times by 3 workers, want once", src.fetches)
	}
	sent := 0
	for _, r := range results {
		sent += r.Summary.Sent
	}
	if sent != 3 || emlCount(t, filepath.Join(outbox, "2026-11-30")) != 3 {
		t.Errorf("%d sent in all, want 3 (each reader once)", sent)
	}
}

func TestResumeOnlyContinuesAnUnfinishedIssue(t *testing.T) {
	src := &countingSource{fakeSource: fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-time.Hour))}}}
	p, st := newPipeline(t, src)
	ctx := context.Background()
	addReaders(t, st, "ann@example.org", "bob@example.org")
	_, tr := wire(t, p, st, nil)

	// Nothing built yet: nothing to resume, and nothing is built.
	res, err := p.Deliver(ctx, pipeline.Request{Now: t0, Resume: true})
	if err != nil || res.Built != nil || src.fetches != 0 {
		t.Fatalf("resume with no issue: %+v, %v, %d fetches", res, err, src.fetches)
	}
	tr.down = true
	if _, err := p.Deliver(ctx, pipeline.Request{Now: t0}); err == nil {
		t.Fatal("want the relay error")
	}
	tr.down = false
	res, err = p.Deliver(ctx, pipeline.Request{Now: t0.Add(48 * time.Hour), Resume: true})
	if err != nil || res.Built == nil || res.Built.Issue.ID != "2026-11-30" || res.Counts.Sent != 2 {
		t.Fatalf("resume: %+v, %v", res, err)
	}
	// Delivered: nothing more to resume, and still no new issue built.
	res, err = p.Deliver(ctx, pipeline.Request{Now: t0.Add(48 * time.Hour), Resume: true})
	if err != nil || res.Built != nil || src.fetches != 1 {
		t.Fatalf("resume after delivery: %+v, %v, %d fetches", res, err, src.fetches)
	}
}

func TestABuildNeverSentIsReplacedByTheNextIssue(t *testing.T) {
	src := &fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-time.Hour))}}
	p, st := newPipeline(t, src)
	ctx := context.Background()
	addReaders(t, st, "ann@example.org")
	outbox, _ := wire(t, p, st, nil)
	if _, err := p.Deliver(ctx, pipeline.Request{Now: t0}); err != nil {
		t.Fatal(err)
	}
	// digest build the next day, never sent.
	src.arts = append(src.arts, story("b", t0.Add(23*time.Hour)))
	ghost, err := p.Build(ctx, t0.Add(24*time.Hour))
	if err != nil || ghost.Issue.Number != 2 {
		t.Fatalf("build: %+v, %v", ghost, err)
	}
	// The day after, send: the new issue takes its place and its number,
	// with its stories; the unsent one is gone from the store and archive.
	src.arts = append(src.arts, story("c", t0.Add(47*time.Hour)))
	if b, err := p.Preview(ctx, t0.Add(48*time.Hour)); err != nil || b.Issue.Number != 2 {
		t.Errorf("preview would number it %d (%v), want 2", b.Issue.Number, err)
	}
	res, err := p.Deliver(ctx, pipeline.Request{Now: t0.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res.Built); res.Built.Issue.Number != 2 || len(got) != 2 {
		t.Errorf("issue #%d with %q, want #2 with b and c", res.Built.Issue.Number, got)
	}
	if _, err := st.GetIssue(ctx, ghost.Issue.ID); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("the unsent issue is still recorded: %v", err)
	}
	if _, err := os.Stat(ghost.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the unsent issue is still in the archive: %v", err)
	}
	if _, err := p.Deliver(ctx, pipeline.Request{Now: t0.Add(48 * time.Hour), IssueID: ghost.Issue.ID}); !errors.Is(err, pipeline.ErrNoSuchIssue) {
		t.Errorf("send --issue of the replaced issue: %v, want ErrNoSuchIssue", err)
	}
	if n := emlCount(t, filepath.Join(outbox, res.Built.Issue.ID)); n != 1 {
		t.Errorf("%d messages for the new issue", n)
	}
}

// fullBox is a transport whose recipient box answers 452 4.2.2 (its
// mailbox is full: the reader's own temporary failure) while full is set.
type fullBox struct {
	deliver.Transport
	box  string
	full atomic.Bool
}

func (f *fullBox) Open(ctx context.Context) (deliver.Conn, error) {
	c, err := f.Transport.Open(ctx)
	if err != nil {
		return nil, err
	}
	return fullBoxConn{Conn: c, f: f}, nil
}

type fullBoxConn struct {
	deliver.Conn
	f *fullBox
}

func (c fullBoxConn) Send(ctx context.Context, m *mail.Message, ready deliver.Ready) (bool, error) {
	if c.refused(m) {
		return false, &deliver.ReplyError{Command: "RCPT TO", Code: 452, Enhanced: "4.2.2", Message: "mailbox full"}
	}
	// A next message for the full box is not started on the connection:
	// this wrapper refuses it instead.
	return c.Conn.Send(ctx, m, func(canOpen bool) (*mail.Message, error) {
		next, err := ready(canOpen)
		if next != nil && c.refused(next) {
			next = nil
		}
		return next, err
	})
}

func (c fullBoxConn) refused(m *mail.Message) bool { return m.To == c.f.box && c.f.full.Load() }

// A reader waiting for a retry of their own does not hold up the next
// issue, and is retried in the earlier issue once the retry is due.
func TestRetriesWaitingDoNotHoldUpTheNextIssue(t *testing.T) {
	src := &fakeSource{name: "s", arts: []article.Article{story("a", t0.Add(-time.Hour))}}
	clock := &leaseClock{t: time.Now()}
	p, st := newPipelineWith(t, []store.Option{store.WithLeaseClock(clock.now)}, src)
	ctx := context.Background()
	addReaders(t, st, "ann@example.org", "bob@example.org")
	outbox, _ := wire(t, p, st, clock)
	tr := &fullBox{Transport: deliver.NewFile(outbox), box: "bob@example.org"}
	tr.full.Store(true)
	p.Delivery.Transport = tr

	res, err := p.Deliver(ctx, pipeline.Request{Now: t0})
	if err != nil || res.Counts != (ledger.Counts{Sent: 1, Pending: 1}) {
		t.Fatalf("first issue: %+v, %v; want ann sent, bob waiting", res.Counts, err)
	}
	tr.full.Store(false)
	clock.add(time.Minute) // each run has its own start (and name)
	src.arts = append(src.arts, story("b", t0.Add(23*time.Hour)))
	res, err = p.Deliver(ctx, pipeline.Request{Now: t0.Add(24 * time.Hour)})
	if err != nil || res.Continued || res.Built.Issue.ID != "2026-12-01" || res.Counts != (ledger.Counts{Sent: 2}) {
		t.Fatalf("next day before bob's retry is due: %+v, %v; want the new issue to everyone", res, err)
	}
	clock.add(time.Minute)
	res, err = p.Deliver(ctx, pipeline.Request{Now: t0.Add(24 * time.Hour), Resume: true})
	if err != nil || res.Built != nil {
		t.Fatalf("resume before the retry is due: %+v, %v; want nothing to do", res, err)
	}
	clock.add(5 * time.Minute) // bob's first retry is due 5 minutes after his try
	res, err = p.Deliver(ctx, pipeline.Request{Now: t0.Add(24 * time.Hour), Resume: true})
	if err != nil || res.Built == nil || res.Built.Issue.ID != "2026-11-30" || res.Counts != (ledger.Counts{Sent: 2}) {
		t.Fatalf("resume once due: %+v, %v; want bob's retry in the first issue", res, err)
	}
	if n := emlCount(t, filepath.Join(outbox, "2026-11-30")); n != 2 {
		t.Errorf("%d messages of the first issue, want 2", n)
	}
}
