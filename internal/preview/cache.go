package preview

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/source"
)

// SourceCache keeps what remote sources returned, so that a rebuild after
// an editor saves a note does not fetch every feed again. Clear (the
// page's "Refetch feeds" button) makes the next rebuild fetch them. It is
// safe for concurrent use and outlives the sessions that wrap their
// sources with it.
type SourceCache struct {
	now     func() time.Time
	mu      sync.Mutex
	entries map[string]*cached
}

// cached is one source's last fetch; done is closed when it is filled.
type cached struct {
	name string
	done chan struct{}
	arts []article.Article
	rep  source.Report
	err  error
	at   time.Time
}

// NewSourceCache returns an empty cache; now stamps fetches (nil means
// time.Now).
func NewSourceCache(now func() time.Time) *SourceCache {
	if now == nil {
		now = time.Now
	}
	return &SourceCache{now: now, entries: map[string]*cached{}}
}

// Wrap returns src answering from the cache under key: the first fetch
// goes to src, later ones get its articles, report and error (a failure is
// kept too: a feed that times out must not stall every rebuild) until
// Clear. The key must change when the source's configuration does (its
// URL, selectors): use the configured fields.
func (c *SourceCache) Wrap(key string, src source.Source) source.Source {
	return &cachedSource{cache: c, key: key, src: src}
}

// Clear forgets every cached fetch.
func (c *SourceCache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[string]*cached{}
}

// Fetched returns, by source name, when each cached copy was fetched.
func (c *SourceCache) Fetched() map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]time.Time{}
	for _, e := range c.entries {
		select {
		case <-e.done:
			if e.rep.Status != "" {
				out[e.name] = e.at
			}
		default:
		}
	}
	return out
}

type cachedSource struct {
	cache *SourceCache
	key   string
	src   source.Source
}

func (s *cachedSource) Name() string { return s.src.Name() }

func (s *cachedSource) Fetch(ctx context.Context) ([]article.Article, error) {
	arts, _, err := s.FetchReport(ctx)
	return arts, err
}

// FetchReport implements source.Reporter, so that the build reports the
// status (ok, not modified, stale, error) of the fetch the copy came from.
func (s *cachedSource) FetchReport(ctx context.Context) ([]article.Article, source.Report, error) {
	c := s.cache
	for {
		c.mu.Lock()
		e, ok := c.entries[s.key]
		if !ok {
			e = &cached{name: s.src.Name(), done: make(chan struct{})}
			c.entries[s.key] = e
			c.mu.Unlock()
			return s.fill(ctx, e)
		}
		c.mu.Unlock()
		select {
		case <-e.done:
			if e.arts != nil || e.err != nil || e.rep.Status != "" {
				return slices.Clone(e.arts), e.rep, e.err
			}
			// The fetch that was filling it was cancelled: try again.
		case <-ctx.Done():
			return nil, source.Report{Status: source.StatusError}, ctx.Err()
		}
	}
}

// fill fetches into e. A fetch cut short by ctx is not kept.
func (s *cachedSource) fill(ctx context.Context, e *cached) ([]article.Article, source.Report, error) {
	arts, rep, err := source.Check(ctx, s.src)
	c := s.cache
	c.mu.Lock()
	if ctx.Err() != nil {
		if c.entries[s.key] == e {
			delete(c.entries, s.key)
		}
	} else {
		e.arts, e.rep, e.err, e.at = slices.Clone(arts), rep, err, c.now()
		if e.rep.Status == "" {
			e.rep.Status = source.StatusOK
		}
	}
	c.mu.Unlock()
	close(e.done)
	return arts, rep, err
}
