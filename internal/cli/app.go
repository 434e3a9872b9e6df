package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/digest/digest/internal/archive"
	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/config"
	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/fetch"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/metrics"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/render"
	"github.com/digest/digest/internal/source"
	"github.com/digest/digest/internal/store"
	"github.com/digest/digest/internal/subscriber"
	"github.com/digest/digest/internal/web"
)

// version is reported in the User-Agent.
const version = "0.1"

// env is one invocation: its output streams and what it opened.
type env struct {
	stdin          io.Reader // bounces receive
	stdout, stderr io.Writer
	configPath     string

	cfg     *config.Config
	log     *slog.Logger
	store   *store.Store
	metrics *metrics.Metrics
	// clock is --now as a clock, nil for the real time: set before load,
	// so that the store's own stamps follow it too.
	clock func() time.Time
	// hooks are the ESP webhooks, once the bounce intakes started.
	hooks atomic.Pointer[web.Hooks]
	// sleep replaces delivery's waits (backoff, polling) in tests; nil
	// means real waits.
	sleep func(ctx context.Context, d time.Duration) bool
}

// now is the command's clock: --now, or the real time.
func (e *env) now() time.Time {
	if e.clock != nil {
		return e.clock()
	}
	return time.Now()
}

// load reads and validates the configuration and opens the store.
func (e *env) load(ctx context.Context) error {
	cfg, err := config.Load(e.configPath, os.Getenv)
	if err != nil {
		return err
	}
	e.cfg = cfg
	e.log = newLogger(e.stderr, cfg.Log)
	e.metrics = metrics.New()
	// store.Open picks SQLite or Postgres from the value and names it
	// (without a password) in its errors.
	st, err := store.Open(ctx, cfg.Database, store.WithClock(e.clock))
	if err != nil {
		return fmt.Errorf("%s: database: %w", cfg.Path, err)
	}
	e.store = st
	return nil
}

func (e *env) close() {
	if e.store != nil {
		e.store.Close()
	}
}

// finish writes the run's metrics when metrics_file is configured. A
// failure to write them is logged, never the command's result.
func (e *env) finish(command string, err error) {
	if e.cfg == nil || e.cfg.MetricsFile == "" {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	e.metrics.Finished(command, result, time.Now())
	if werr := e.metrics.WriteFile(e.cfg.MetricsFile); werr != nil {
		e.log.Warn("writing metrics", "file", e.cfg.MetricsFile, "err", werr)
	}
}

// observe records what a build found, for the metrics.
func (e *env) observe(b *pipeline.Built) {
	for _, r := range b.Sources {
		e.metrics.Source(r.Name, string(r.Status), r.Articles, r.Took, r.Failed(), r.Streak)
	}
	if b.Rendered != nil {
		e.metrics.Issue(b.Issue.Count(), b.Rendered.HTMLSize())
		if !b.Loaded {
			e.metrics.IssueBuilt()
		}
	}
}

// sources builds every configured source. Fetched documents are cached in
// the store (conditional GET), and a failing source falls back to its last
// good copy while that is younger than the digest window.
func (e *env) sources() ([]source.Source, error) {
	fc := fetch.New(fetch.Options{UserAgent: "digest/" + version + " (+" + e.cfg.Newsletter.BaseURL + ")"})
	senv := source.Env{
		Fetcher: fc, Sanitizer: article.NewSanitizer(), TeaserLength: e.cfg.Digest.TeaserLength,
		Logger: e.log, Location: e.cfg.Location(), Cache: e.store, StaleFallback: e.cfg.Digest.Window,
		Now: e.now,
	}
	var out []source.Source
	for i, s := range e.cfg.Sources {
		sel := s.Selectors
		src, err := source.New(source.Spec{
			Name: s.Name, Type: s.Type, URL: s.URL, Path: s.Path, Section: s.Section, Timeout: s.Timeout,
			Selectors: source.Selectors{Item: sel.Item, Title: sel.Title, Link: sel.Link, Teaser: sel.Teaser,
				Date: sel.Date, Image: sel.Image},
			FetchTeasers: s.FetchTeasers,
		}, senv)
		if err != nil {
			return nil, fmt.Errorf("%s: sources[%d] (%s): %w", e.cfg.Path, i, s.Name, err)
		}
		out = append(out, src)
	}
	return out, nil
}

func (e *env) newsletter() render.Newsletter {
	n := e.cfg.Newsletter
	return render.Newsletter{
		Name: n.Name, Language: n.Language, BaseURL: n.BaseURL, Footer: n.Footer, ArchiveURL: n.ArchiveURL,
		Location: e.cfg.Location(),
	}
}

// pipeline wires the build stage.
func (e *env) pipeline() (*pipeline.Pipeline, error) {
	srcs, err := e.sources()
	if err != nil {
		return nil, err
	}
	r, err := render.New(e.cfg.Templates, e.newsletter())
	if err != nil {
		// A broken template is a configuration error: exit 2, nothing sent.
		return nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	var sections []string
	topics, anyTopic := map[string][]string{}, false
	for _, s := range e.cfg.Sources {
		sections = append(sections, s.Section)
		keys, _ := subscriber.NormalizeTopics(s.Topics) // validated by config.Load
		topics[s.Name], anyTopic = keys, anyTopic || len(keys) > 0
	}
	if !anyTopic {
		topics = nil // nobody can choose: everyone gets the whole issue
	}
	var intro func() (string, error)
	if path := e.cfg.Digest.Intro; path != "" {
		intro = func() (string, error) {
			md, err := os.ReadFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				return "", nil // no intro for this issue
			}
			if err != nil {
				return "", fmt.Errorf("digest.intro: %w", err)
			}
			html, err := render.Intro(md)
			if err != nil {
				return "", fmt.Errorf("digest.intro %s: %w", path, err)
			}
			return html, nil
		}
	}
	return &pipeline.Pipeline{
		Sources: srcs, Intro: intro, Store: e.store, BuildLock: e.store.WithBuildLock, Renderer: r, Archive: e.cfg.Archive,
		Location: e.cfg.Location(), Frequency: e.cfg.Frequency(), Window: e.cfg.Digest.Window, MaxArticles: e.cfg.Digest.MaxArticles,
		Sections: sections, SourceTopics: topics, Rules: sourceRules(e.cfg.Sources), Logger: e.log,
		UnsubscribePage: strings.TrimRight(e.cfg.Newsletter.BaseURL, "/") + "/unsubscribe",
		Site: archive.Meta{Name: e.cfg.Newsletter.Name, BaseURL: e.cfg.Newsletter.ArchiveURL,
			Language: e.cfg.Newsletter.Language},
	}, nil
}

// secret is the key that signs readers' links: secret (or DIGEST_SECRET),
// else the one generated once and kept in the store.
func (e *env) secret(ctx context.Context) ([]byte, error) {
	if e.cfg.Secret != "" {
		return []byte(e.cfg.Secret), nil
	}
	return e.store.Secret(ctx)
}

// composer builds messages, signing links with e.secret. clock stamps the
// Date header.
func (e *env) composer(ctx context.Context, clock func() time.Time) (*mail.Composer, error) {
	secret, err := e.secret(ctx)
	if err != nil {
		return nil, err
	}
	n := e.cfg.Newsletter
	opts := mail.Options{
		ListName: n.Name, From: n.From, ReplyTo: n.ReplyTo, BaseURL: n.BaseURL, Secret: secret,
		EnvelopeFrom: e.cfg.SMTP.EnvelopeFrom, Now: clock, Logger: e.log,
		BounceAddress: e.cfg.Bounces.Address,
	}
	if d := e.cfg.DKIM; d.Domain != "" {
		key, err := mail.ReadDKIMKey(d.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: dkim.private_key_file: %w", e.cfg.Path, err)
		}
		opts.DKIM = &mail.DKIMOptions{Domain: d.Domain, Selector: d.Selector, Key: key}
	}
	c, err := mail.NewComposer(opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.cfg.Path, err)
	}
	return c, nil
}

// wireDelivery gives the pipeline what delivery needs: the store's runs,
// the message encoder, the transport, the engine's options and the
// subscribers file sync.
func (e *env) wireDelivery(ctx context.Context, p *pipeline.Pipeline) error {
	comp, err := e.composer(ctx, e.now)
	if err != nil {
		return err
	}
	t, err := e.transport()
	if err != nil {
		return err
	}
	d := &p.Delivery
	d.Runs = runStore{e.store}
	d.PauseOnBounceRate = e.cfg.Delivery.PauseOnBounceRate
	d.Recorded = func(o ledger.Outcome) { e.metrics.Message(o.Status, o.Code, o.Enhanced) }
	d.Subscribers = e.store.List
	d.Encode = func(r *render.Rendered) (deliver.Builder, error) {
		prep, err := comp.Prepare(r)
		if err != nil {
			return nil, err
		}
		return prep, nil
	}
	d.Transport = t
	d.Engine = e.engineOptions(e.now)
	d.Process = e.store.Process()
	d.Clock = e.now
	d.Sleep = e.sleep
	d.Lease = e.cfg.Delivery.Lease
	if path := e.cfg.SubscribersCSV; path != "" {
		d.Sync = (&csvSync{e: e, path: path}).sync
	}
	return nil
}

// runStore adapts the store's runs to the pipeline's interface.
type runStore struct{ st *store.Store }

func (r runStore) BeginRun(ctx context.Context, info ledger.RunInfo, ttl time.Duration) (pipeline.Run, error) {
	run, err := r.st.BeginRun(ctx, info, ttl)
	if err != nil {
		return nil, err
	}
	return run, nil
}

func (r runStore) LiveRuns(ctx context.Context) ([]ledger.RunInfo, error) { return r.st.LiveRuns(ctx) }

// where names the configured transport for the summary.
func (e *env) where() string {
	if e.cfg.Delivery.Transport == "file" {
		return "files under " + relPath(e.cfg.Delivery.Outbox)
	}
	return fmt.Sprintf("SMTP %s:%d", e.cfg.SMTP.Host, e.cfg.SMTP.Port)
}

// transport opens the configured delivery transport (e.where names it).
func (e *env) transport() (deliver.Transport, error) {
	if e.cfg.Delivery.Transport == "file" {
		return deliver.NewFile(e.cfg.Delivery.Outbox), nil
	}
	s := e.cfg.SMTP
	t, err := deliver.NewSMTP(deliver.SMTPOptions{
		Host: s.Host, Port: s.Port, Username: s.Username, Password: s.Password, TLS: s.TLS,
		InsecureSkipVerify: s.InsecureSkipVerify, Timeout: s.Timeout, DataTimeout: s.DataTimeout, Auth: s.Auth,
		HELO: s.HELO,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: smtp: %w", e.cfg.Path, err)
	}
	return t, nil
}
