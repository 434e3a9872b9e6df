package pipeline

import (
	"context"
	"fmt"
	"time"

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
	// Articles left for a later issue do not count.
	Newest time.Time
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
	how, err := p.date(ctx, arts, now)
	if err != nil {
		return nil, err
	}
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	out := make([]SourceCheck, len(results))
	start := 0
	for i, r := range results {
		// gather returns each source's articles in order, r.Articles each.
		end := start + r.Articles
		mine, dated := arts[start:end], how[start:end]
		start = end
		c := SourceCheck{SourceResult: r}
		c.InWindow = issue.Select(mine, issue.Options{Now: now, Location: loc, Window: p.Window}).Count()
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
			if a.Published.After(c.Newest) {
				c.Newest = a.Published
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
				count(c.Later, "item", "items"), ahead, c.LaterFrom.In(loc).Format("2006-01-02 15:04")))
		}
		out[i] = c
	}
	return out, nil
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
