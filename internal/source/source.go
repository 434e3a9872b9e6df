// Package source turns the configured sources (feeds, folders of Markdown
// notes, web pages read with CSS selectors) into articles: each Source
// fetches or reads its content and returns sanitized articles with
// plain-text teasers.
//
// A Source returns the articles it could make together with an error naming
// whatever failed, so that one bad item or file never hides the good ones.
//
// Remote sources use an optional Cache (see Env.Cache) for conditional GET
// and, when Env.StaleFallback allows it, fall back to the last good copy of
// a source that fails; Check and Reporter tell the caller which happened.
package source

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/fetch"
)

// DefaultTeaserLength is used when Env.TeaserLength is not positive.
const DefaultTeaserLength = 280

// Source yields the current articles of one configured source.
type Source interface {
	// Name is the source's name from the configuration.
	Name() string
	// Fetch returns the source's articles. It may return articles and a
	// non-nil error together (some items or files were bad); every error
	// names the source and the file or URL at fault.
	Fetch(ctx context.Context) ([]article.Article, error)
}

// Spec describes one source, as configured.
type Spec struct {
	Name string
	Type string // feed | markdown | page
	// URL is, for a feed, the feed's address or that of an HTML page that
	// advertises a feed (<link rel="alternate">); for a page, the page.
	URL     string
	Path    string // feed: a local feed file; markdown: the folder
	Section string // default: Name
	Timeout time.Duration
	// Selectors pick the articles out of a page source (type page only).
	Selectors Selectors
	// FetchTeasers (type page only): for an item without a teaser, fetch
	// the article's own page and use its og:description or description
	// meta. At most DefaultTeaserFetches at a time; cached in Env.Cache.
	FetchTeasers bool
}

// Selectors are the CSS selectors (goquery/cascadia syntax) of a page
// source. Item is required; the others are looked up inside each item.
type Selectors struct {
	// Item matches one element per article.
	Item string
	// Title is the headline; default: the first h1–h6 in the item, else
	// the text of its link.
	Title string
	// Link is an element with href, or one containing an a[href]; default:
	// the title's link, else the item's first a[href] (or the item itself
	// when it is a link).
	Link string
	// Teaser is the summary text; default: none (see Spec.FetchTeasers).
	Teaser string
	// Date is an element whose datetime or content attribute, or text,
	// holds the date; default: the item's first time element.
	Date string
	// Image is an img (src, data-src, srcset) or an element with content
	// or href; default: the item's first img.
	Image string
}

// Env holds what sources share. Every field is optional: nil Fetcher and
// Sanitizer get defaults, a nil Logger discards, a zero TeaserLength means
// DefaultTeaserLength, a nil Location means UTC, a nil Now means time.Now
// and a nil Cache means no caching.
type Env struct {
	Fetcher      *fetch.Client
	Sanitizer    *article.Sanitizer
	TeaserLength int
	Logger       *slog.Logger
	// Location is the zone of Markdown and page dates written without one.
	Location *time.Location
	// Cache keeps the last good copy of each fetched document, with its
	// validators, for conditional GET and StaleFallback; and the
	// descriptions fetched for FetchTeasers.
	Cache Cache
	// StaleFallback is how old the last good copy of a failing source may
	// be and still be used (the source's Fetch then returns its articles
	// with an error wrapping ErrStale). 0 turns the fallback off.
	StaleFallback time.Duration
	// Now is the clock that stamps cached copies and ages them.
	Now func() time.Time
}

// New returns the Source that spec describes.
func New(spec Spec, env Env) (Source, error) {
	if spec.Name == "" {
		return nil, fmt.Errorf("source (type %q): name is empty", spec.Type)
	}
	if spec.Section == "" {
		spec.Section = spec.Name
	}
	if env.Sanitizer == nil {
		env.Sanitizer = article.NewSanitizer()
	}
	if env.TeaserLength <= 0 {
		env.TeaserLength = DefaultTeaserLength
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	if env.Location == nil {
		env.Location = time.UTC
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	env.Logger = env.Logger.With("source", spec.Name)

	switch spec.Type {
	case "feed":
		if (spec.URL == "") == (spec.Path == "") {
			return nil, fmt.Errorf("source %s: a feed needs exactly one of url and path", spec.Name)
		}
		if spec.URL != "" && env.Fetcher == nil {
			env.Fetcher = fetch.New(fetch.Options{})
		}
		return &feed{spec: spec, env: env}, nil
	case "markdown":
		if spec.Path == "" {
			return nil, fmt.Errorf("source %s: a markdown source needs a path", spec.Name)
		}
		return newMarkdown(spec, env), nil
	case "page":
		if spec.URL == "" && spec.Path == "" {
			return nil, fmt.Errorf("source %s: a page source needs a url (or a path to a saved page)", spec.Name)
		}
		if env.Fetcher == nil {
			env.Fetcher = fetch.New(fetch.Options{})
		}
		return newPage(spec, env)
	case "":
		return nil, fmt.Errorf("source %s: type is empty (want feed, markdown or page)", spec.Name)
	default:
		return nil, fmt.Errorf("source %s: unknown type %q (want feed, markdown or page)", spec.Name, spec.Type)
	}
}

// withTimeout applies a source's own time limit, if it has one.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeoutCause(ctx, d, fmt.Errorf("timed out after %s (the source's timeout)", d))
	}
	return context.WithCancel(ctx)
}

// teaser makes a teaser from untrusted HTML.
func (e Env) teaser(html string) string {
	return article.HTMLTeaser(e.Sanitizer.HTML(html), e.TeaserLength)
}
