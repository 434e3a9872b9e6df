package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/source"
)

// SourceRules are the editors' rules for one source (sources[].max_items,
// settle, settle_max, backfill).
type SourceRules struct {
	// Rules are the limits the selection applies (max_items, settle,
	// settle_max: see issue.Rules).
	issue.Rules
	// Backfill is how many of its stories a source brings the first time
	// it is seen, newest first; the older ones are recorded as seen and
	// never sent. Negative means all of them.
	Backfill int
}

// see dates the articles (date) and finds a new source's backlog
// (backlog), as seen at clock; with record, a source's first sight is
// recorded.
func (p *Pipeline) see(ctx context.Context, arts []article.Article, results []SourceResult, clock time.Time,
	record bool) (map[string]ledger.Observed, map[string]bool, error) {
	_, obs, err := p.date(ctx, arts, clock)
	if err != nil {
		return nil, nil, err
	}
	backlog, err := p.backlog(ctx, split(arts, results), results, obs, clock, record)
	if err != nil {
		return nil, nil, err
	}
	return obs, backlog, nil
}

// observe records in the store that the articles were seen at now, with a
// fingerprint of what a reader sees of each, and returns what the store
// knows of each (first sight, last change, backlog). A story that two
// sources carry is sighted as its first copy, which the selection keeps:
// the other copy's teaser is not a change.
func (p *Pipeline) observe(ctx context.Context, arts []article.Article, now time.Time) (map[string]ledger.Observed, error) {
	seen := make([]ledger.Sighting, 0, len(arts))
	sighted := make(map[string]bool, len(arts))
	for _, a := range arts {
		if !sighted[a.ID] {
			sighted[a.ID] = true
			seen = append(seen, ledger.Sighting{ID: a.ID, Fingerprint: fingerprint(a)})
		}
	}
	return p.Store.Observe(ctx, seen, now)
}

// fingerprint sums what a reader sees of a story and digest notices as a
// change: its title, teaser and link.
func fingerprint(a article.Article) string {
	link := ""
	if a.Link != "" {
		link = article.Canonical(a.Link)
	}
	sum := sha256.Sum256([]byte(a.Title + "\x00" + a.Teaser + "\x00" + link))
	return hex.EncodeToString(sum[:12])
}

// issueRules returns the selection's rules by source name.
func (p *Pipeline) issueRules() map[string]issue.Rules {
	if len(p.Rules) == 0 {
		return nil
	}
	out := make(map[string]issue.Rules, len(p.Rules))
	for name, r := range p.Rules {
		out[name] = r.Rules
	}
	return out
}

// seenByID turns what the store knows of the stories into the selection's
// terms.
func seenByID(obs map[string]ledger.Observed) map[string]issue.Seen {
	out := make(map[string]issue.Seen, len(obs))
	for id, o := range obs {
		out[id] = issue.Seen{First: o.FirstSeen, Changed: o.Changed}
	}
	return out
}

// backlog returns the IDs of the stories that are a new source's backlog,
// never to be sent: those the store marked so, and, for each source seen
// for the first time whose Backfill is not negative, its stories beyond
// the Backfill newest. perSource holds each source's articles (dated),
// in the order of results. With record, the first sight of each source
// that worked is recorded, with its backlog: a source removed and added
// again is not new.
func (p *Pipeline) backlog(ctx context.Context, perSource [][]article.Article, results []SourceResult,
	obs map[string]ledger.Observed, now time.Time, record bool) (map[string]bool, error) {
	out := map[string]bool{}
	for id, o := range obs {
		if o.Backlog {
			out[id] = true
		}
	}
	names := make([]string, len(results))
	for i, r := range results {
		names[i] = r.Name
	}
	known, err := p.Store.SourcesSeen(ctx, names)
	if err != nil {
		return nil, err
	}
	for i, r := range results {
		if _, ok := known[r.Name]; ok || source.Failed(r.Err) {
			continue
		}
		var older []string
		if rules, ok := p.Rules[r.Name]; ok && rules.Backfill >= 0 {
			older = beyondNewest(perSource[i], rules.Backfill, now)
		}
		for _, id := range older {
			out[id] = true
		}
		if !record {
			continue
		}
		if _, err := p.Store.SeeSource(ctx, r.Name, now, older); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// beyondNewest returns the IDs of the stories of arts (drafts and stories
// dated after now aside) older than the n newest.
func beyondNewest(arts []article.Article, n int, now time.Time) []string {
	var had []article.Article
	for _, a := range arts {
		if !a.Draft && !a.Published.After(now) {
			had = append(had, a)
		}
	}
	if len(had) <= n {
		return nil
	}
	sort.SliceStable(had, func(i, j int) bool { return had[i].Published.After(had[j].Published) })
	ids := make([]string, 0, len(had)-n)
	for _, a := range had[n:] {
		ids = append(ids, a.ID)
	}
	return ids
}

// split cuts the gathered articles into each source's, in the order of
// results (gather returns r.Articles of each, in order).
func split(arts []article.Article, results []SourceResult) [][]article.Article {
	out := make([][]article.Article, len(results))
	start := 0
	for i, r := range results {
		out[i] = arts[start : start+r.Articles]
		start += r.Articles
	}
	return out
}
