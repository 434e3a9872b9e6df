// Package issue selects the articles of one digest issue. It is pure: the
// same articles and options always give the same issue.
package issue

import (
	"sort"
	"time"

	"github.com/digest/digest/internal/article"
)

// Issue is one digest: the articles chosen for it, grouped in sections.
type Issue struct {
	ID       string    `json:"id"`     // date of the issue in the newsletter's zone, 2006-01-02
	Number   int       `json:"number"` // 1, 2, 3 …: assigned when the issue is first stored
	Date     time.Time `json:"date"`   // the clock the issue was built for
	From     time.Time `json:"from"`   // start of the window (exclusive)
	Sections []Section `json:"sections"`
	// Intro is the editor's introduction, already rendered to safe HTML.
	Intro string `json:"intro,omitempty"`
}

// Section is one group of articles, named after the sources' section.
type Section struct {
	Name     string            `json:"name"`
	Articles []article.Article `json:"articles"`
}

// Options drive the selection.
type Options struct {
	Now         time.Time
	Location    *time.Location // for the issue id; nil means UTC
	Window      time.Duration  // articles published in (Now-Window, Now]
	MaxArticles int            // 0 means no limit
	// Sections lists section names in the order they appear; sections not
	// listed follow in order of first appearance.
	Sections []string
	// Exclude holds article IDs that must not appear (sent in an earlier issue).
	Exclude map[string]bool
}

// ID returns the id of the issue built at now: its calendar date in loc.
func ID(now time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return now.In(loc).Format("2006-01-02")
}

// Select builds the issue from gathered articles: drafts, articles outside the
// window and excluded ones are dropped, duplicates collapse to the first
// occurrence, the newest MaxArticles remain, grouped by section in order and
// newest first within each section.
func Select(as []article.Article, o Options) Issue {
	iss := Issue{ID: ID(o.Now, o.Location), Date: o.Now, From: o.Now.Add(-o.Window)}
	var keep []article.Article
	for _, a := range article.Dedupe(as) {
		if a.Draft || o.Exclude[a.ID] {
			continue
		}
		if !a.Published.After(iss.From) || a.Published.After(o.Now) {
			continue
		}
		keep = append(keep, a)
	}
	// Newest first overall decides which articles survive the limit; the
	// stable sort keeps source order among equal times.
	sort.SliceStable(keep, func(i, j int) bool { return keep[i].Published.After(keep[j].Published) })
	if o.MaxArticles > 0 && len(keep) > o.MaxArticles {
		keep = keep[:o.MaxArticles]
	}

	order := map[string]int{}
	for _, name := range o.Sections {
		if _, ok := order[name]; !ok {
			order[name] = len(order)
		}
	}
	for _, a := range as { // first appearance in source order
		if _, ok := order[a.Section]; !ok {
			order[a.Section] = len(order)
		}
	}
	bySection := map[string][]article.Article{}
	for _, a := range keep {
		bySection[a.Section] = append(bySection[a.Section], a)
	}
	names := make([]string, 0, len(bySection))
	for name := range bySection {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return order[names[i]] < order[names[j]] })
	for _, name := range names {
		iss.Sections = append(iss.Sections, Section{Name: name, Articles: bySection[name]})
	}
	return iss
}

// Count is the number of articles in the issue.
func (i Issue) Count() int {
	n := 0
	for _, s := range i.Sections {
		n += len(s.Articles)
	}
	return n
}

// Articles returns all articles in order of appearance.
func (i Issue) Articles() []article.Article {
	var out []article.Article
	for _, s := range i.Sections {
		out = append(out, s.Articles...)
	}
	return out
}
