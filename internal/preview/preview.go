// Package preview serves the editors' live preview of the next issue: the
// message a chosen reader would get, taken apart from the very bytes that
// delivery sends (HTML at phone and desktop widths, light and dark, the
// plain-text part, subject, inbox text and headers), beside a report of the
// build (each source's status, every story left out and why) and the checks
// an editor runs before sending (size against Gmail's clip, links, alt
// text). It rebuilds when a note, the intro, a template or the config
// changes, and the open page refreshes itself over server-sent events.
//
// The package knows nothing of the configuration: the command line hands it
// a Load function that wires a Session from the configuration as it stands,
// on every rebuild, so that an edit to the config takes effect too. An
// error there (a template's syntax, a config key) is shown on the page with
// the last good build beside it; the server keeps running.
package preview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/render"
)

// Session is the newsletter wired from the configuration at one rebuild.
// The command line implements it with the pipeline's use cases, so that
// the preview builds and sends exactly as `digest send` does.
type Session interface {
	// Build gathers, selects and renders the issue that will go out next
	// (pipeline.PreviewNext: the issue for now, or, once that one went
	// out, the next scheduled one, with Built.Out set), without side
	// effects: nothing stored, archived, marked sent or counted as a
	// source's failure. An issue without articles comes back Empty, with
	// its report.
	Build(ctx context.Context, now time.Time) (*pipeline.Built, error)
	// Copy returns the message that r would get of the built issue, made
	// by the same code that delivery uses.
	Copy(ctx context.Context, b *pipeline.Built, r Reader) (Copy, error)
	// SendTest sends one test copy (subject prefixed [TEST], ledger
	// untouched) to addr through the configured transport, as
	// `digest send --to` does, and says where it went.
	SendTest(ctx context.Context, b *pipeline.Built, addr string) (string, error)
	// Reader looks a subscriber up by address; the error wraps
	// ErrNoReader when there is none.
	Reader(ctx context.Context, email string) (Reader, error)
	// Fit returns how many of the issue's articles fit in an HTML part of
	// at most limit bytes.
	Fit(b *pipeline.Built, limit int) (int, error)
	// Location is the newsletter's time zone, in which the page shows
	// dates and times.
	Location() *time.Location
	// Watch lists the files and folders the issue is made of (notes
	// folders, the intro, the templates folder, local feed files): a
	// change to any of them rebuilds.
	Watch() []string
}

// ErrNoReader is wrapped by Session.Reader when no subscriber has the
// address.
var ErrNoReader = errors.New("no subscriber with this address")

// Reader is who the preview shows the issue to: a subscriber, or the
// made-up sample reader.
type Reader struct {
	ID     int64 // subscriber id; 0 for the sample reader
	Email  string
	Name   string
	Status string // active, unsubscribed, bounced; "" for the sample reader
	// Topics are the subscriber's topics; empty means every topic. The
	// sections a reader gets are in Copy.Issue.
	Topics []string
	Sample bool
}

// SampleReader is the made-up reader shown until an editor picks a
// subscriber: a name with accents and a long address, to show how
// personal values fit the layout.
func SampleReader() Reader {
	return Reader{Email: "zoe.sample-reader@example.org", Name: "Zoë Ångström-Sample", Sample: true}
}

// Copy is one reader's message of an issue.
type Copy struct {
	// Issue is the issue as this reader gets it (only the sections of
	// their topics, where topics apply).
	Issue   issue.Issue
	Message mail.Message // the bytes delivery would send
}

// GmailClip is the size of an HTML part above which Gmail clips a message,
// hiding the rest (and the unsubscribe link) behind "View entire message".
const GmailClip = 102 * 1024

// Options configure a Server. Load is required.
type Options struct {
	// Load wires a Session from the current configuration; it is called on
	// every rebuild.
	Load func(ctx context.Context) (Session, error)
	// Now is the issue's clock (--now); nil means time.Now.
	Now func() time.Time
	// ConfigPath is the configuration file, watched even when it fails to
	// load.
	ConfigPath string
	// Cache keeps remote sources' fetches between rebuilds; Load should
	// wrap the sources it builds with it. Nil means a new cache.
	Cache *SourceCache
	// Token, when set, is required of every request (see Handler). A
	// listener that is not on loopback must have one (see NeedsToken).
	Token string
	// Debounce is how long to wait after a change for more changes before
	// rebuilding (an editor's save is several events); default 200ms.
	Debounce time.Duration
	// Links configure the link checker.
	Links  LinkOptions
	Logger *slog.Logger
}

// Server is the preview: it rebuilds on changes and serves the page.
type Server struct {
	opts   Options
	log    *slog.Logger
	cache  *SourceCache
	links  *LinkChecker
	events *broker
	watch  *watcher
	kicks  chan struct{}

	bg        context.Context // bounds background work (link checks) until Close
	stop      context.CancelFunc
	closeOnce sync.Once
	closeErr  error

	buildMu  sync.Mutex // one rebuild at a time
	watching bool       // the watcher has been given paths (under buildMu)

	mu      sync.Mutex
	snap    *snapshot // the last good build; nil before the first
	failure *failure  // the last build's error, nil when it worked
	version int64     // bumped by every change the page shows
	test    *testResult
}

// failure is a build that went wrong.
type failure struct {
	Err string
	At  time.Time
}

// testResult is the outcome of the last "Send test".
type testResult struct {
	To, Where, Err string
	At             time.Time
}

// New returns a Server; call Run to build and watch, and Close at the end.
func New(opts Options) (*Server, error) {
	if opts.Load == nil {
		return nil, errors.New("preview: Options.Load is nil")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 200 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: opts.Logger, cache: opts.Cache, events: newBroker(), kicks: make(chan struct{}, 1)}
	if s.cache == nil {
		s.cache = NewSourceCache(nil)
	}
	s.bg, s.stop = context.WithCancel(context.Background())
	s.links = NewLinkChecker(opts.Links, s.bump)
	w, err := newWatcher(s.kick, s.log)
	if err != nil {
		return nil, fmt.Errorf("preview: watching files: %w", err)
	}
	s.watch = w
	return s, nil
}

// Close stops background work (link checks, the file watcher) and ends
// the open event streams. Calling it again does nothing.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		s.links.Wait()
		s.closeErr = s.watch.close()
	})
	return s.closeErr
}

// Run builds the issue, then rebuilds after every change to the files it is
// made of (debounced) until ctx is done. Build errors are shown on the page,
// never returned: Run returns only when ctx ends.
func (s *Server) Run(ctx context.Context) error {
	go s.watch.run(ctx)
	_ = s.Rebuild(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.kicks:
		}
		// More events follow a save (temp file, rename, chmod): wait until
		// they stop.
		t := time.NewTimer(s.opts.Debounce)
	settle:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-s.kicks:
				t.Reset(s.opts.Debounce)
			case <-t.C:
				break settle
			}
		}
		_ = s.Rebuild(ctx)
	}
}

// kick asks Run for a rebuild.
func (s *Server) kick() {
	select {
	case s.kicks <- struct{}{}:
	default: // one is pending already
	}
}

// bump tells open pages that what they show changed.
func (s *Server) bump() {
	s.mu.Lock()
	s.version++
	v := s.version
	s.mu.Unlock()
	s.events.publish(event{name: "update", data: fmt.Sprint(v)})
}

// Rebuild loads the session and builds the issue now. On an error the last
// good build stays, and the page shows the error; the error is returned
// for callers that want it (tests).
func (s *Server) Rebuild(ctx context.Context) error {
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	s.events.publish(event{name: "building", data: "1"})
	start := time.Now()
	snap, watch, err := s.build(ctx)
	paths := []string{}
	if s.opts.ConfigPath != "" {
		paths = append(paths, s.opts.ConfigPath)
	}
	if watch != nil {
		s.watch.set(append(paths, watch...))
	} else if !s.watching {
		s.watch.set(paths) // the config at least, so that fixing it rebuilds
	}
	s.watching = true
	s.mu.Lock()
	if err != nil {
		s.failure = &failure{Err: err.Error(), At: time.Now()}
	} else {
		snap.took = time.Since(start)
		s.snap, s.failure = snap, nil
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("preview: build failed", "err", err)
	} else {
		s.log.Info("preview: built", "issue", snap.built.Issue.ID, "articles", snap.built.Issue.Count(), "took", snap.took.Round(time.Millisecond))
		// Check the sample reader's links at once, so that the results are
		// there when the page asks.
		if v := snap.view(ctx, SampleReader()); v.Err == "" {
			s.links.Check(s.bg, v.Scan.Links)
		}
	}
	s.bump()
	return err
}

// build wires a session and builds the issue; a panic in the wiring or a
// template function is an editor's mistake too, not a reason to exit.
func (s *Server) build(ctx context.Context) (snap *snapshot, watch []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("preview: the build panicked: %v\n%s", r, debug.Stack())
		}
	}()
	sess, err := s.opts.Load(ctx)
	if err != nil {
		return nil, nil, err
	}
	watch = sess.Watch()
	now := s.opts.Now()
	b, err := sess.Build(ctx, now)
	if err != nil {
		return nil, watch, err
	}
	snap = &snapshot{sess: sess, built: b, now: now, at: time.Now(), fit: -1, views: map[string]*view{}}
	if b.Rendered != nil && b.Rendered.HTMLSize() > render.HTMLSizeLimit {
		snap.fit, snap.fitErr = sess.Fit(b, render.HTMLSizeLimit)
	}
	return snap, watch, nil
}

// current returns the last good build, the last failure and the version.
func (s *Server) current() (*snapshot, *failure, int64, *testResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap, s.failure, s.version, s.test
}

// snapshot is one good build and the reader views made of it.
type snapshot struct {
	sess   Session
	built  *pipeline.Built
	now    time.Time // the issue's clock
	at     time.Time // when it was built
	took   time.Duration
	fit    int // articles that fit under render.HTMLSizeLimit; -1 when not computed (all fit)
	fitErr error

	mu    sync.Mutex
	views map[string]*view // by reader address; "" is the sample reader
}

// view is one reader's message of a build, taken apart.
type view struct {
	Reader  Reader
	Copy    Copy
	Msg     Parsed
	Scan    Scan
	HasDark bool
	Err     string // the message could not be made
}

// maxViews bounds the readers a snapshot remembers.
const maxViews = 32

// view returns r's message of the build, made once per snapshot.
func (sn *snapshot) view(ctx context.Context, r Reader) *view {
	key := r.Email
	if r.Sample {
		key = ""
	}
	sn.mu.Lock()
	v, ok := sn.views[key]
	sn.mu.Unlock()
	if ok {
		return v
	}
	v = &view{Reader: r}
	if sn.built.Rendered == nil {
		v.Err = "the issue has no articles: there is no message to show"
		return v
	}
	c, err := sn.sess.Copy(ctx, sn.built, r)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	v.Copy = c
	if v.Msg, err = ParseMessage(c.Message.Data); err != nil {
		v.Err = err.Error()
		return v
	}
	v.Scan = ScanHTML(v.Msg.HTML)
	v.HasDark = HasDarkStyles(v.Msg.HTML)
	sn.mu.Lock()
	if len(sn.views) < maxViews {
		sn.views[key] = v
	}
	sn.mu.Unlock()
	return v
}

// NeedsToken reports whether a listen address is reachable from other
// machines (not loopback), so that the preview, which shows unpublished
// notes and sends test mail, must require a token there.
func NeedsToken(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	return !mail.Loopback(host)
}

// Serve serves the preview on ln until ctx is done, running the rebuild
// loop beside it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx)
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		cancel()
		<-done
		return err
	}
	shut, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer stop()
	err := srv.Shutdown(shut) // event streams end with ctx, through BaseContext
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
