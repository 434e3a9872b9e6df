package preview

import (
	"fmt"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/render"
)

// pageData is what the page template shows.
type pageData struct {
	Q       query
	Version int64
	Failure *failure
	Test    *testResult

	Built      bool // a good build exists
	IssueID    string
	Number     int
	Now        time.Time // the issue's clock
	BuiltAt    time.Time
	Took       time.Duration
	Empty      bool
	Warnings   []string
	View       *view
	ReaderNote string
	Sections   []issue.Section // as this reader gets them
	Count      int
	Sources    []sourceRow
	Left       []leftRow
	Size       sizeCheck
	Links      linkReport
	MissingAlt []Image
}

type sourceRow struct {
	pipeline.SourceResult
	Cached time.Time // when the copy in use was fetched, for cached remote sources
}

type leftRow struct {
	Article article.Article
	Reason  issue.Reason
	Detail  string
}

type sizeCheck struct {
	Bytes   int
	Limit   int // render.HTMLSizeLimit: the build warns above it
	Clip    int // GmailClip
	State   string
	Fit     int // articles that fit under Limit; -1 when all do
	Total   int
	FitErr  string
	Percent int // of Clip, for the bar
}

type linkReport struct {
	All                                 []LinkResult
	Problems                            []LinkResult // broken and redirecting, first
	OK, Redirect, Broken, Checking, Not int
}

// fill sets the data of one build and one reader's view of it.
func (d *pageData) fill(sn *snapshot, v *view, note string, links *LinkChecker, cache *SourceCache) {
	b := sn.built
	d.Built = true
	d.IssueID, d.Number = b.Issue.ID, b.Issue.Number
	d.Now, d.BuiltAt, d.Took = sn.now, sn.at, sn.took
	d.Empty = b.Empty()
	d.Warnings = b.Warnings
	d.View, d.ReaderNote = v, note
	d.Sections = b.Issue.Sections
	if v.Err == "" {
		d.Sections = v.Copy.Issue.Sections
	}
	for _, s := range d.Sections {
		d.Count += len(s.Articles)
	}
	fetched := cache.Fetched()
	for _, r := range b.Sources {
		d.Sources = append(d.Sources, sourceRow{SourceResult: r, Cached: fetched[r.Name]})
	}
	for _, o := range b.Issue.Left {
		d.Left = append(d.Left, leftRow{Article: o.Article, Reason: o.Reason, Detail: omissionDetail(o, b.Issue)})
	}
	if v.Err != "" {
		return
	}
	d.Size = sizeCheck{Bytes: len(v.Msg.HTML), Limit: render.HTMLSizeLimit, Clip: GmailClip, Fit: sn.fit, Total: b.Issue.Count()}
	if sn.fitErr != nil {
		d.Size.FitErr = sn.fitErr.Error()
	}
	switch {
	case d.Size.Bytes > GmailClip:
		d.Size.State = "clipped"
	case d.Size.Bytes > render.HTMLSizeLimit:
		d.Size.State = "near"
	default:
		d.Size.State = "ok"
	}
	d.Size.Percent = min(100, d.Size.Bytes*100/GmailClip)
	d.Links.All = links.Results(v.Scan.Links)
	for _, l := range d.Links.All {
		switch l.State {
		case LinkOK:
			d.Links.OK++
		case LinkRedirect:
			d.Links.Redirect++
			d.Links.Problems = append(d.Links.Problems, l)
		case LinkBroken:
			d.Links.Broken++
			d.Links.Problems = append(d.Links.Problems, l)
		case LinkChecking:
			d.Links.Checking++
		default:
			d.Links.Not++
		}
	}
	d.MissingAlt = v.Scan.MissingAlt()
}

// omissionDetail explains one omission in a sentence.
func omissionDetail(o issue.Omission, iss issue.Issue) string {
	switch o.Reason {
	case issue.Duplicate:
		return fmt.Sprintf("the same story as “%s” from %s, which came first", o.Original.Title, o.Original.Source)
	case issue.Draft:
		return "marked draft: true"
	case issue.AlreadySent:
		return "went out in issue " + o.SentIn
	case issue.BeforeWindow:
		return fmt.Sprintf("published %s; the window starts %s", stamp(o.Article.Published), stamp(iss.From))
	case issue.AfterNow:
		return fmt.Sprintf("dated %s, after the issue's time %s", stamp(o.Article.Published), stamp(iss.Date))
	case issue.OverLimit:
		return fmt.Sprintf("the issue holds the %d newest stories (digest.max_articles)", iss.Count())
	}
	return ""
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "(no date)"
	}
	return t.UTC().Format("2 Jan 2006 15:04 UTC")
}

func formatKB(n int) string {
	return fmt.Sprintf("%.1f KB", float64(n)/1024)
}
