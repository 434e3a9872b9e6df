package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/fetch"
)

// Cached is the last good copy of a fetched document: a feed or page whose
// articles were made without error, or (under a "description " key) the
// description of an article page.
type Cached struct {
	// Validators of the response, sent back for a conditional GET.
	ETag         string
	LastModified string
	// URL is the document's final address (after redirects): the base of
	// its relative links. ContentType is as the server sent it.
	URL         string
	ContentType string
	// Body is UTF-8 (converted by fetch).
	Body []byte
	// FetchedAt is when the copy was fetched, or last confirmed by a 304.
	FetchedAt time.Time
}

// Cache stores Cached copies by key. The store implements it; a nil Cache
// in Env means no caching. Keys are the URL a source requested (for
// documents) and "description " + an article's URL (for fetched teasers).
// Implementations must be safe for concurrent use.
type Cache interface {
	// GetDocument returns the copy stored under key; ok is false when
	// there is none. An error means the cache could not be read (the
	// source then fetches unconditionally and logs it).
	GetDocument(ctx context.Context, key string) (c Cached, ok bool, err error)
	// PutDocument stores c under key, replacing any earlier copy.
	PutDocument(ctx context.Context, key string, c Cached) error
}

// DescriptionKey is the Cache key of the description fetched for the
// article at link (see Spec.FetchTeasers).
func DescriptionKey(link string) string { return "description " + link }

// ErrStale is wrapped, with the cause, by the error of a source that failed
// but whose last good copy (younger than Env.StaleFallback) gave the
// articles returned with it. Callers should use the articles and report the
// error.
var ErrStale = errors.New("using the last good copy")

// Status is the outcome of one fetch of a source.
type Status string

// The statuses of a Report.
const (
	// StatusOK: fetched (or read) and parsed.
	StatusOK Status = "ok"
	// StatusNotModified: the server answered 304; the cached copy was used.
	StatusNotModified Status = "not modified"
	// StatusStale: the fetch failed; the last good copy was used. It is a
	// failure all the same (the error wraps ErrStale).
	StatusStale Status = "stale"
	// StatusPartial: the source worked, but some of its items or files
	// were bad and skipped (the error is an *Error with Partial set: a
	// warning, not a failure).
	StatusPartial Status = "partial"
	// StatusError: the source failed.
	StatusError Status = "error"
)

// Report says how one fetch of a source went, for `sources check` and the
// run's report.
type Report struct {
	Status Status
	// Items is the number of articles returned.
	Items int
	// URL is the document the articles came from: the final address of
	// the feed (a discovered one, after redirects) or page; "" for local
	// sources.
	URL string
	// FetchedAt is when that document was fetched or confirmed by a 304;
	// for a stale copy, when it was last good. Zero for local sources.
	FetchedAt time.Time
	// Took is the time the fetch took.
	Took time.Duration
}

// Reporter is a Source that also says how its fetch went. Feed and page
// sources implement it.
type Reporter interface {
	Source
	// FetchReport is Fetch with a Report; the articles and error are
	// those Fetch would return.
	FetchReport(ctx context.Context) ([]article.Article, Report, error)
}

// Check fetches src and reports how it went: through FetchReport for a
// Reporter, otherwise from Fetch's result (error when it returned one, ok
// otherwise).
func Check(ctx context.Context, src Source) ([]article.Article, Report, error) {
	if r, ok := src.(Reporter); ok {
		return r.FetchReport(ctx)
	}
	start := time.Now()
	arts, err := src.Fetch(ctx)
	rep := Report{Status: StatusOK, Items: len(arts), Took: time.Since(start)}
	if err != nil {
		rep.Status = statusOf(err)
	}
	return arts, rep, err
}

func statusOf(err error) Status {
	switch {
	case err == nil:
		return StatusOK
	case errors.Is(err, ErrStale):
		return StatusStale
	case !Failed(err):
		return StatusPartial
	default:
		return StatusError
	}
}

// document is a body to parse: fresh, confirmed by a 304, or the last good
// copy of a source that failed.
type document struct {
	key         string // cache key: the URL requested
	url         string // final URL: the base of relative links
	contentType string
	body        []byte
	fetchedAt   time.Time
	validators  fetch.Validators
	notModified bool
	// stale is the fetch's error when body is the last good copy.
	stale error
	// prev is the cached copy, if any: the fallback when a fresh body
	// turns out to be bad.
	prev *Cached
}

// load fetches rawURL, conditionally when the cache has a copy. On failure
// it falls back to the cached copy when StaleFallback allows; the error is
// then in doc.stale, and err is nil.
func (e Env) load(ctx context.Context, rawURL string) (document, error) {
	doc := document{key: rawURL}
	var v fetch.Validators
	if e.Cache != nil {
		c, ok, err := e.Cache.GetDocument(ctx, rawURL)
		switch {
		case err != nil:
			e.Logger.Warn("cache read failed; fetching unconditionally", "url", rawURL, "err", err)
		case ok:
			doc.prev = &c
			v = fetch.Validators{ETag: c.ETag, LastModified: c.LastModified}
		}
	}
	resp, err := e.Fetcher.GetIf(ctx, rawURL, v)
	if err != nil {
		return e.fallback(doc, err)
	}
	if resp.NotModified {
		p := doc.prev
		doc.url, doc.contentType, doc.body = p.URL, p.ContentType, p.Body
		if doc.url == "" {
			doc.url = resp.URL
		}
		doc.fetchedAt = e.Now()
		doc.validators = fetch.Validators{ETag: resp.ETag, LastModified: resp.LastModified}
		doc.notModified = true
		return doc, nil
	}
	doc.url, doc.contentType, doc.body = resp.URL, resp.ContentType, resp.Body
	doc.fetchedAt = e.Now()
	doc.validators = fetch.Validators{ETag: resp.ETag, LastModified: resp.LastModified}
	return doc, nil
}

// fallback returns the last good copy of doc's URL in place of a fetch or
// parse that failed with cause, if StaleFallback allows; else cause.
func (e Env) fallback(doc document, cause error) (document, error) {
	p := doc.prev
	if e.StaleFallback <= 0 || p == nil || doc.stale != nil {
		return document{}, cause
	}
	if age := e.Now().Sub(p.FetchedAt); age >= e.StaleFallback {
		e.Logger.Debug("last good copy too old to use", "url", doc.key, "age", age.Round(time.Second))
		return document{}, cause
	}
	return document{
		key: doc.key, url: p.URL, contentType: p.ContentType, body: p.Body,
		fetchedAt: p.FetchedAt, validators: fetch.Validators{ETag: p.ETag, LastModified: p.LastModified},
		stale: cause, prev: p,
	}, nil
}

// keep stores a document whose articles were made without error as the
// last good copy. A stale copy is not stored again (its age must grow).
func (e Env) keep(ctx context.Context, doc document) {
	if e.Cache == nil || doc.stale != nil || doc.key == "" {
		return
	}
	err := e.Cache.PutDocument(ctx, doc.key, Cached{
		ETag: doc.validators.ETag, LastModified: doc.validators.LastModified,
		URL: doc.url, ContentType: doc.contentType, Body: doc.body, FetchedAt: doc.fetchedAt,
	})
	if err != nil {
		e.Logger.Warn("cache write failed", "url", doc.key, "err", err)
	}
}

// status is the Report status for articles made from doc.
func (d document) status() Status {
	switch {
	case d.stale != nil:
		return StatusStale
	case d.notModified:
		return StatusNotModified
	default:
		return StatusOK
	}
}

// staleError wraps the cause of a stale document's failure.
func (e Env) staleError(kind, name string, d document) error {
	age := e.Now().Sub(d.fetchedAt).Round(time.Second)
	return newError(kind, name, fmt.Errorf("%w (fetched %s ago): %w", ErrStale, age, d.stale))
}
