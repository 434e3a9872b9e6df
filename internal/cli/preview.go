package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/digest/digest/internal/config"
	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/metrics"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/preview"
	"github.com/digest/digest/internal/store"
)

// previewTokenEnv holds the preview's token when --token is not given.
const previewTokenEnv = "DIGEST_PREVIEW_TOKEN"

// preview serves the editors' live preview until ctx ends (Ctrl-C). The
// configuration is read again on every rebuild, so that an edit to it
// takes effect; a broken one is shown on the page, never fatal.
func (e *env) preview(ctx context.Context, args []string) error {
	f := newFlags(e, "preview", true)
	addr := f.String("addr", "127.0.0.1:8080", "listen address; one off loopback needs --token")
	token := f.String("token", "", "required of every request (?token=T once, then a cookie); env "+previewTokenEnv)
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	if *token == "" {
		*token = os.Getenv(previewTokenEnv)
	}
	if preview.NeedsToken(*addr) && *token == "" {
		return usagef("preview --addr %s is reachable from other machines, and the preview shows unpublished notes and sends test mail: give --token T (or set %s)", *addr, previewTokenEnv)
	}
	// The log settings of the config as it is at start; a config that does
	// not load yet gets the defaults (its error shows on the page).
	logCfg := config.Log{}
	if cfg, err := config.Load(e.configPath, os.Getenv); err == nil {
		logCfg = cfg.Log
	}
	e.log = newLogger(e.stderr, logCfg)

	ws := &workspace{parent: e, cache: preview.NewSourceCache(e.now), stores: map[string]*store.Store{}}
	defer ws.close()
	srv, err := preview.New(preview.Options{
		Load: ws.load, Now: e.now, ConfigPath: e.configPath, Cache: ws.cache, Token: *token, Logger: e.log,
		Links: preview.LinkOptions{UserAgent: "digest/" + version + " preview (link check)"},
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("preview: %w", err)
	}
	host, all := browseHost(ln.Addr())
	url := "http://" + host + "/"
	if *token != "" {
		url += "?token=" + *token
	}
	fmt.Fprintf(e.stdout, "Preview of the next issue at %s (rebuilds when notes, the intro, templates or %s change; Ctrl-C to stop)\n",
		url, relPath(e.configPath))
	if all {
		fmt.Fprintln(e.stdout, "Listening on every interface: from another machine, use this one's name or address instead of 127.0.0.1.")
	}
	return srv.Serve(ctx, ln)
}

// browseHost is host:port to open in a browser for a listener's address:
// an unspecified address (0.0.0.0, ::) becomes loopback, since
// "http://[::]:8080" is not a URL a browser opens everywhere; all says it
// was one.
func browseHost(addr net.Addr) (hostport string, all bool) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return addr.String(), false
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port)), true
}

// workspace makes a preview session from the configuration at each
// rebuild. Stores stay open across rebuilds (one per database file), since
// the last good session keeps using its own while a newer one fails.
type workspace struct {
	parent *env
	cache  *preview.SourceCache

	mu     sync.Mutex
	stores map[string]*store.Store
}

func (w *workspace) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, st := range w.stores {
		st.Close()
	}
}

// store returns the open store of a database (a SQLite file or a
// postgres:// URL), opened once.
func (w *workspace) store(ctx context.Context, cfg *config.Config) (*store.Store, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st, ok := w.stores[cfg.Database]; ok {
		return st, nil
	}
	st, err := store.Open(ctx, cfg.Database, store.WithClock(w.parent.clock))
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", cfg.Database, err)
	}
	w.stores[cfg.Database] = st
	return st, nil
}

// load wires a session as send does: the same sources (remote ones behind
// the preview's cache), templates, message encoder and transport.
func (w *workspace) load(ctx context.Context) (preview.Session, error) {
	p := w.parent
	cfg, err := config.Load(p.configPath, os.Getenv)
	if err != nil {
		return nil, err
	}
	st, err := w.store(ctx, cfg)
	if err != nil {
		return nil, err
	}
	e := &env{stdout: p.stdout, stderr: p.stderr, configPath: p.configPath, clock: p.clock,
		cfg: cfg, log: p.log, store: st, metrics: metrics.New()}
	pl, err := e.pipeline()
	if err != nil {
		return nil, err
	}
	for i, s := range cfg.Sources {
		if s.URL != "" {
			// The key changes with anything that changes what the source
			// yields, so that editing it in the config refetches.
			pl.Sources[i] = w.cache.Wrap(fmt.Sprintf("%d %#v %d", i, s, cfg.Digest.TeaserLength), pl.Sources[i])
		}
	}
	if err := e.wireDelivery(ctx, pl); err != nil {
		return nil, err
	}
	watch := []string{cfg.Templates}
	if cfg.Digest.Intro != "" {
		watch = append(watch, cfg.Digest.Intro)
	}
	for _, s := range cfg.Sources {
		if s.Path != "" {
			watch = append(watch, s.Path) // notes folders, local feeds and pages
		}
	}
	sched, err := cfg.ParseSchedule()
	if err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	return &session{env: e, p: pl, watch: watch, next: sched.Next}, nil
}

// session is one configuration's preview: the pipeline's side-effect-free
// build, its message encoder and its test send.
type session struct {
	env   *env
	p     *pipeline.Pipeline
	watch []string
	next  func(time.Time) time.Time // the schedule's next time
}

var _ preview.Session = (*session)(nil)

func (s *session) Build(ctx context.Context, now time.Time) (*pipeline.Built, error) {
	return s.p.PreviewNext(ctx, now, s.next)
}

func (s *session) Location() *time.Location { return s.env.cfg.Location() }

// Copy builds r's message with the builder delivery uses, which picks the
// reader's part of the issue by their topics (or skips them: the error
// wraps deliver.ErrSkip).
func (s *session) Copy(ctx context.Context, b *pipeline.Built, r preview.Reader) (preview.Copy, error) {
	msgs, err := s.p.Encode(b)
	if err != nil {
		return preview.Copy{}, fmt.Errorf("issue %s: %w", b.Issue.ID, err)
	}
	iss := s.p.ReaderIssue(b.Issue, r.Topics)
	m, err := msgs.Build(nil, ledger.Recipient{IssueID: b.Issue.ID, SubscriberID: r.ID, Email: r.Email, Name: r.Name, Topics: r.Topics})
	if err != nil {
		return preview.Copy{Issue: iss}, fmt.Errorf("message to %s: %w", r.Email, err)
	}
	return preview.Copy{Issue: iss, Message: m}, nil
}

func (s *session) SendTest(ctx context.Context, b *pipeline.Built, addr string) (string, error) {
	if err := s.p.SendTest(ctx, b, ledger.Recipient{Email: addr}); err != nil {
		return "", err
	}
	if cfg := s.env.cfg; cfg.Delivery.Transport == "file" {
		// The folder the file transport keeps this issue's test copies in.
		rc := ledger.Recipient{IssueID: b.Issue.ID, Email: addr, Test: true}
		return "a file in " + relPath(filepath.Dir(deliver.NewFile(cfg.Delivery.Outbox).Path(rc))), nil
	}
	return s.env.where(), nil
}

func (s *session) Reader(ctx context.Context, email string) (preview.Reader, error) {
	sub, err := s.env.store.Get(ctx, email)
	if errors.Is(err, ledger.ErrNotFound) {
		return preview.Reader{}, preview.ErrNoReader
	}
	if err != nil {
		return preview.Reader{}, err
	}
	return preview.Reader{ID: sub.ID, Email: sub.Email, Name: sub.Name, Status: sub.Status, Topics: sub.Topics}, nil
}

func (s *session) Fit(b *pipeline.Built, limit int) (int, error) {
	return s.p.Renderer.FitArticles(b.Issue, b.Issue.Intro, limit)
}

func (s *session) Watch() []string { return s.watch }
