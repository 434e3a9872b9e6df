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
	// Left lists every gathered article that Select did not take, with the
	// reason, in the order of the input. It explains a build (the preview
	// shows it to editors) and is not part of the archived issue.
	Left []Omission `json:"-"`
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
	// SentIn maps the IDs of articles that went out in an earlier issue to
	// that issue's ID: they must not appear again, and the omission names
	// the issue.
	SentIn map[string]string
}

// Reason says why Select left an article out.
type Reason string

// The reasons, in the order Select applies them: a duplicate is recognised
// before anything else is looked at, as the first copy of a story wins.
const (
	// Duplicate: an earlier article has the same ID or canonical link
	// (Omission.Original).
	Duplicate Reason = "duplicate"
	// Draft: the article is marked draft: true.
	Draft Reason = "draft"
	// AlreadySent: the article went out in issue Omission.SentIn.
	AlreadySent Reason = "already sent"
	// BeforeWindow: published at or before the window's start (Issue.From).
	BeforeWindow Reason = "before the window"
	// AfterNow: dated after the issue's time (Issue.Date).
	AfterNow Reason = "after the issue's time"
	// OverLimit: in the window, but older than the MaxArticles newest.
	OverLimit Reason = "over max_articles"
)

// Omission is one article that Select left out, and why.
type Omission struct {
	Article article.Article
	Reason  Reason
	// Original is the article this one duplicates (Reason Duplicate): the
	// first with the same ID or canonical link, which may itself have been
	// left out for another reason.
	Original *article.Article
	// SentIn is the ID of the issue that carried the article (Reason
	// AlreadySent).
	SentIn string
}

// ID returns the id of the issue built at now: its calendar date in loc.
func ID(now time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return now.In(loc).Format("2006-01-02")
}

// Select builds the issue from gathered articles: duplicates collapse to the
// first occurrence, drafts, articles already sent and articles outside the
// window are dropped, the newest MaxArticles remain, grouped by section in
// order and newest first within each section. Every article dropped is
// listed in Issue.Left with its reason.
func Select(as []article.Article, o Options) Issue {
	iss := Issue{ID: ID(o.Now, o.Location), Date: o.Now, From: o.Now.Add(-o.Window)}
	var keep []article.Article
	var kept []int // input index of each kept article
	left := map[int]Omission{}
	dups := newDuplicates(len(as))
	for i, a := range as {
		if orig, ok := dups.check(i, a); ok {
			left[i] = Omission{Article: a, Reason: Duplicate, Original: &as[orig]}
			continue
		}
		switch sentIn, sent := o.SentIn[a.ID]; {
		case a.Draft:
			left[i] = Omission{Article: a, Reason: Draft}
		case sent:
			left[i] = Omission{Article: a, Reason: AlreadySent, SentIn: sentIn}
		case !a.Published.After(iss.From):
			left[i] = Omission{Article: a, Reason: BeforeWindow}
		case a.Published.After(o.Now):
			left[i] = Omission{Article: a, Reason: AfterNow}
		default:
			keep = append(keep, a)
			kept = append(kept, i)
		}
	}
	// Newest first overall decides which articles survive the limit; the
	// stable sort keeps source order among equal times.
	sort.Stable(byNewest{keep, kept})
	if o.MaxArticles > 0 && len(keep) > o.MaxArticles {
		for j, a := range keep[o.MaxArticles:] {
			left[kept[o.MaxArticles+j]] = Omission{Article: a, Reason: OverLimit}
		}
		keep = keep[:o.MaxArticles]
	}
	for i := range as {
		if om, ok := left[i]; ok {
			iss.Left = append(iss.Left, om)
		}
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

// byNewest sorts articles newest first, carrying their input indexes along.
type byNewest struct {
	as  []article.Article
	idx []int
}

func (b byNewest) Len() int           { return len(b.as) }
func (b byNewest) Less(i, j int) bool { return b.as[i].Published.After(b.as[j].Published) }
func (b byNewest) Swap(i, j int) {
	b.as[i], b.as[j] = b.as[j], b.as[i]
	b.idx[i], b.idx[j] = b.idx[j], b.idx[i]
}

// duplicates recognises an article seen before by ID or by canonical link
// (the one rule of deduplication), and remembers which article came first.
type duplicates struct {
	byID, byLink map[string]int
}

func newDuplicates(n int) duplicates {
	return duplicates{byID: make(map[string]int, n), byLink: make(map[string]int, n)}
}

// check returns the index of the first article that a (at index i)
// duplicates, or records a as a first copy and returns false.
func (d duplicates) check(i int, a article.Article) (int, bool) {
	link := ""
	if a.Link != "" {
		link = article.Canonical(a.Link)
	}
	if j, ok := d.byID[a.ID]; ok && a.ID != "" {
		return j, true
	}
	if j, ok := d.byLink[link]; ok && link != "" {
		return j, true
	}
	if a.ID != "" {
		d.byID[a.ID] = i
	}
	if link != "" {
		d.byLink[link] = i
	}
	return 0, false
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
