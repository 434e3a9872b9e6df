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
	// reason, in the order of the input. It explains a build: the preview
	// shows it to editors, and issue.json keeps it (each story by id,
	// title, link and source) so that an archived issue says what it left
	// out and why.
	Left []Omission `json:"left,omitempty"`
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
	// Rules are the per-source limits, by source name (Article.Source); a
	// source not listed has none.
	Rules map[string]Rules
	// Seen says, by article ID, what digest knows of each story from
	// earlier runs; a story absent was first seen at Now and never changed.
	Seen map[string]Seen
	// Backlog holds the IDs of the stories a source already had when it
	// was first seen, beyond its backfill: they are never taken.
	Backlog map[string]bool
}

// Rules are one source's limits.
type Rules struct {
	// MaxItems is the most stories of the source in one issue, newest
	// first; 0 means no limit.
	MaxItems int
	// Settle is how long a story must have stayed unchanged before it is
	// taken; 0 takes it at once.
	Settle time.Duration
	// SettleMax caps the wait: a story first seen this long ago is taken
	// even if it still changes; 0 means no cap.
	SettleMax time.Duration
}

// Seen is what digest recorded of one story.
type Seen struct {
	First time.Time // when digest first saw it
	// Changed is the last time digest saw its title, teaser or link
	// change; zero when they never changed since the first sight.
	Changed time.Time
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
	// Backlog: the source already had the story when it was first seen,
	// and it is older than the source's backfill newest: never sent.
	Backlog Reason = "in a new source's backlog, beyond its backfill"
	// BeforeWindow: published at or before the window's start (Issue.From).
	BeforeWindow Reason = "before the window"
	// AfterNow: dated after the issue's time (Issue.Date).
	AfterNow Reason = "after the issue's time"
	// Settling: the story changed less than its source's settle ago
	// (Omission.Changed); it is taken once it stays unchanged.
	Settling Reason = "settling"
	// SourceLimit: over its source's MaxItems newest; it stays eligible
	// for the next issue while inside the window.
	SourceLimit Reason = "over the source's max_items, kept for the next issue"
	// OverLimit: in the window, but cut by MaxArticles, which keeps one
	// story of every source before any source gets a second; it stays
	// eligible for the next issue while inside the window.
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
	// Changed is the story's last change (Reason Settling): the later of
	// its own date and the last time digest saw it change.
	Changed time.Time
}

// ID returns the id of the issue built at now: its calendar date in loc.
func ID(now time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return now.In(loc).Format("2006-01-02")
}

// Select builds the issue from gathered articles: duplicates collapse to the
// first occurrence; drafts, articles already sent, a new source's backlog,
// articles outside the window and articles still settling are dropped; each
// source keeps its MaxItems newest; MaxArticles then cuts fairly (see
// fairCut); the rest is grouped by section in order, newest first within
// each section. Every article dropped is listed in Issue.Left with its
// reason.
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
		if om, out := o.omit(a, iss.From); out {
			left[i] = om
			continue
		}
		keep = append(keep, a)
		kept = append(kept, i)
	}
	// Newest first overall decides which articles survive the limits; the
	// stable sort keeps source order among equal times.
	sort.Stable(byNewest{keep, kept})
	keep, kept = o.sourceLimits(keep, kept, left)
	keep, _ = fairCut(keep, kept, o.MaxArticles, left)
	for i := range as {
		if om, ok := left[i]; ok {
			iss.Left = append(iss.Left, om)
		}
	}
	iss.Sections = sections(as, keep, o.Sections)
	return iss
}

// omit applies the reasons that concern one article alone, in order.
func (o Options) omit(a article.Article, from time.Time) (Omission, bool) {
	sentIn, sent := o.SentIn[a.ID]
	switch {
	case a.Draft:
		return Omission{Article: a, Reason: Draft}, true
	case sent:
		return Omission{Article: a, Reason: AlreadySent, SentIn: sentIn}, true
	case o.Backlog[a.ID]:
		return Omission{Article: a, Reason: Backlog}, true
	case !a.Published.After(from):
		return Omission{Article: a, Reason: BeforeWindow}, true
	case a.Published.After(o.Now):
		return Omission{Article: a, Reason: AfterNow}, true
	}
	if changed, settling := o.settling(a); settling {
		return Omission{Article: a, Reason: Settling, Changed: changed}, true
	}
	return Omission{}, false
}

// settling reports whether a is still settling under its source's rules,
// and its last change: the later of its own dates (published, updated) and
// the last time digest saw it change. The first sight is not a change; an
// undated story is dated when first seen, so for it the first sight is.
func (o Options) settling(a article.Article) (time.Time, bool) {
	r := o.Rules[a.Source]
	if r.Settle <= 0 {
		return time.Time{}, false
	}
	seen, ok := o.Seen[a.ID]
	if !ok || seen.First.IsZero() {
		seen.First = o.Now
	}
	last := a.Published
	if a.Updated.After(last) && !a.Updated.After(o.Now) {
		last = a.Updated
	}
	if seen.Changed.After(last) {
		last = seen.Changed
	}
	if o.Now.Sub(last) >= r.Settle {
		return last, false
	}
	if r.SettleMax > 0 && o.Now.Sub(seen.First) >= r.SettleMax {
		return last, false // waited long enough: taken as it stands
	}
	return last, true
}

// sourceLimits keeps each source's MaxItems newest of keep (sorted newest
// first) and records the others in left.
func (o Options) sourceLimits(keep []article.Article, kept []int, left map[int]Omission) ([]article.Article, []int) {
	if len(o.Rules) == 0 {
		return keep, kept
	}
	n := map[string]int{}
	var outA []article.Article
	var outI []int
	for j, a := range keep {
		n[a.Source]++
		if m := o.Rules[a.Source].MaxItems; m > 0 && n[a.Source] > m {
			left[kept[j]] = Omission{Article: a, Reason: SourceLimit}
			continue
		}
		outA, outI = append(outA, a), append(outI, kept[j])
	}
	return outA, outI
}

// fairCut keeps limit of keep (sorted newest first) when there are more,
// fairly: every source keeps its newest before any source gets a second,
// then its second before any gets a third, and so on; within one round
// the newer story goes first. The others are recorded in left. What it
// returns is still newest first.
func fairCut(keep []article.Article, kept []int, limit int, left map[int]Omission) ([]article.Article, []int) {
	if limit <= 0 || len(keep) <= limit {
		return keep, kept
	}
	rank := make([]int, len(keep)) // 0 for a source's newest, 1 for its second …
	n := map[string]int{}
	for j, a := range keep {
		rank[j] = n[a.Source]
		n[a.Source]++
	}
	order := make([]int, len(keep))
	for j := range order {
		order[j] = j
	}
	sort.SliceStable(order, func(x, y int) bool { return rank[order[x]] < rank[order[y]] })
	taken := make([]bool, len(keep))
	for _, j := range order[:limit] {
		taken[j] = true
	}
	var outA []article.Article
	var outI []int
	for j, a := range keep {
		if !taken[j] {
			left[kept[j]] = Omission{Article: a, Reason: OverLimit}
			continue
		}
		outA, outI = append(outA, a), append(outI, kept[j])
	}
	return outA, outI
}

// sections groups keep (newest first) by section: the configured order
// first, then sections in order of first appearance in all.
func sections(all, keep []article.Article, configured []string) []Section {
	order := map[string]int{}
	for _, name := range configured {
		if _, ok := order[name]; !ok {
			order[name] = len(order)
		}
	}
	for _, a := range all { // first appearance in source order
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
	var out []Section
	for _, name := range names {
		out = append(out, Section{Name: name, Articles: bySection[name]})
	}
	return out
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
