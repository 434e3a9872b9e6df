package pipeline

import (
	"context"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/ledger"
)

// Dating says how the builder came by an article's date.
type Dating int

// The ways an article is dated (see Believe).
const (
	// DatedBySource: the date the source gave is believed.
	DatedBySource Dating = iota
	// DatedFirstSeen: the source gave no date, one that did not parse, one
	// before 2 January 1970, or one less than FutureTolerance ahead of the
	// clock; the article is dated when digest first saw it.
	DatedFirstSeen
	// DatedLater: the date is more than FutureTolerance ahead: a story not
	// yet published, left for the issue whose window reaches it.
	DatedLater
)

// noDateBefore is, in Unix seconds, 2 January 1970: earlier dates are what
// feed generators write when they have none (year 1, or Unix time 0 in any
// zone), never a story's publication.
const noDateBefore = 24 * 60 * 60

// Believe is the one date rule of the builder, which `sources check`
// applies too: the date given to an article that its source dated pub
// (zero when it gave none, as a date that does not parse), that digest
// first saw at seen, in an issue built at now.
//
// An undated article is dated when first seen, not "now" on every run. A
// date slightly in the future is a feed's clock or zone error and is not
// believed either; one further ahead is kept, so that the article waits
// for a later issue.
func Believe(pub, seen, now time.Time) (time.Time, Dating) {
	switch {
	case pub.Unix() < noDateBefore:
		return seen, DatedFirstSeen
	case !pub.After(now):
		return pub, DatedBySource
	case !pub.After(now.Add(FutureTolerance)):
		return seen, DatedFirstSeen
	default:
		return pub, DatedLater
	}
}

// date gives each article the date the builder believes (see Believe),
// recording in the store what digest saw of each (first sight, changes:
// see observe), and returns how each was dated and what the store knows of
// each.
func (p *Pipeline) date(ctx context.Context, arts []article.Article, now time.Time) ([]Dating, map[string]ledger.Observed, error) {
	seen, err := p.observe(ctx, arts, now)
	if err != nil {
		return nil, nil, err
	}
	how := make([]Dating, len(arts))
	for i := range arts {
		arts[i].Published, how[i] = Believe(arts[i].Published, seen[arts[i].ID].FirstSeen, now)
	}
	return how, seen, nil
}
