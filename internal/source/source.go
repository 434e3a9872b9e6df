// Package source turns the configured sources (feeds, folders of Markdown
// notes, later web pages) into articles: each Source fetches or reads its
// content and returns sanitized articles with plain-text teasers.
//
// A Source returns the articles it could make together with an error naming
// whatever failed, so that one bad item or file never hides the good ones.
package source

import (
	"context"
	"errors"
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
	Name    string
	Type    string // feed | markdown | page
	URL     string // feed: the feed's address
	Path    string // feed: a local feed file; markdown: the folder
	Section string // default: Name
	Timeout time.Duration
}

// Env holds what sources share. Every field is optional: nil Fetcher and
// Sanitizer get defaults, a nil Logger discards, a zero TeaserLength means
// DefaultTeaserLength and a nil Location means UTC.
type Env struct {
	Fetcher      *fetch.Client
	Sanitizer    *article.Sanitizer
	TeaserLength int
	Logger       *slog.Logger
	// Location is the zone of Markdown dates written without one.
	Location *time.Location
}

// ErrNotSupported is wrapped by New for source types that are known but not
// implemented yet.
var ErrNotSupported = errors.New("not supported yet")

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
		return nil, fmt.Errorf("source %s: type page: %w", spec.Name, ErrNotSupported)
	case "":
		return nil, fmt.Errorf("source %s: type is empty (want feed or markdown)", spec.Name)
	default:
		return nil, fmt.Errorf("source %s: unknown type %q (want feed or markdown)", spec.Name, spec.Type)
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
	return article.Teaser(article.PlainText(e.Sanitizer.HTML(html)), e.TeaserLength)
}
