package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/source"
)

// Failed reports whether the source failed in this run. A source that
// worked but skipped some bad items or files (status partial) has Err set
// as a warning and did not fail.
func (r SourceResult) Failed() bool { return source.Failed(r.Err) }

// SourceCheck is what Check found for one source: its run, and what the
// builder makes of its articles at that time.
type SourceCheck struct {
	SourceResult
	// InWindow counts the articles an issue built now would take from
	// this source alone, dated as the builder dates them: not drafts, not
	// outside the window (articles sent in earlier issues are counted).
	InWindow int
	// Newest is the newest date the builder believes; zero when none.
	// Drafts and articles left for a later issue do not count.
	Newest time.Time
	// Held counts the stories still settling (sources[].settle); OverLimit
	// those over the source's max_items, kept for a later issue; Backlog
	// those of its backlog when first seen, beyond sources[].backfill,
	// never sent.
	Held, OverLimit, Backlog int
	// FirstSeen counts the articles dated when digest first saw them (see
	// DatedFirstSeen).
	FirstSeen int
	// Later counts the articles dated more than FutureTolerance ahead,
	// left for a later issue; LaterFrom is the earliest of their dates.
	Later     int
	LaterFrom time.Time
	// Warnings say, in words, what the counts above mean for the issue.
	// Problems with the source's items or files are in Err.
	Warnings []string
}

// Check fetches every source as Build does (the same fan-out, the same
// record of each source's run and failure streak) and dates the articles by
// the builder's rule (Believe, recording when each was first seen), so that
// what it reports is what Build at now would find. It builds nothing.
// Check needs Sources, Store, Location and Window; the error is the
// context's, or the store's.
func (p *Pipeline) Check(ctx context.Context, now time.Time) ([]SourceCheck, error) {
	arts, results := p.gather(ctx, now, true)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	how, obs, err := p.date(ctx, arts, now)
	if err != nil {
		return nil, err
	}
	perSource := split(arts, results)
	backlog, err := p.backlog(ctx, perSource, results, obs, now, false)
	if err != nil {
		return nil, err
	}
	opts := issue.Options{Now: now, Location: p.Location, Window: p.Window, Rules: p.issueRules(), Seen: seenByID(obs), Backlog: backlog}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	out := make([]SourceCheck, len(results))
	start := 0
	for i, r := range results {
		out[i] = checkSource(r, perSource[i], how[start:start+r.Articles], opts)
		start += r.Articles
	}
	return out, nil
}

// checkSource is what Check reports of one source's articles (dated by
// the builder, dated[j] saying how for mine[j]).
func checkSource(r SourceResult, mine []article.Article, dated []Dating, opts issue.Options) SourceCheck {
	c := SourceCheck{SourceResult: r}
	iss := issue.Select(mine, opts)
	c.InWindow = iss.Count()
	for _, o := range iss.Left {
		switch o.Reason {
		case issue.Settling:
			c.Held++
		case issue.SourceLimit:
			c.OverLimit++
		case issue.Backlog:
			c.Backlog++
		}
	}
	for j, a := range mine {
		switch dated[j] {
		case DatedLater:
			c.Later++
			if c.LaterFrom.IsZero() || a.Published.Before(c.LaterFrom) {
				c.LaterFrom = a.Published
			}
			continue
		case DatedFirstSeen:
			c.FirstSeen++
		}
		if !a.Draft && a.Published.After(c.Newest) {
			c.Newest = a.Published
		}
	}
	for _, w := range []struct {
		n    int
		what string
	}{
		{c.Held, "still settling (sources[].settle): taken once unchanged long enough"},
		{c.OverLimit, "over the source's max_items: kept for the next issue"},
		{c.Backlog, "older than the source's backfill when it was first seen: never sent"},
	} {
		if w.n > 0 {
			c.Warnings = append(c.Warnings, count(w.n, "item", "items")+" "+w.what)
		}
	}
	ahead := fmt.Sprintf("%.0f hours", FutureTolerance.Hours())
	if c.FirstSeen > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf(
			"%s dated when first seen (no date, an unreadable one, one before 1970, or one up to %s ahead)",
			count(c.FirstSeen, "item", "items"), ahead))
	}
	if c.Later > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf(
			"%s dated more than %s ahead (from %s): left for a later issue",
			count(c.Later, "item", "items"), ahead, c.LaterFrom.In(opts.Location).Format("2006-01-02 15:04")))
	}
	return c
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
