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

	Built      bool           // a good build exists
	Zone       *time.Location // the newsletter's, for every date shown
	Out        *pipeline.Out  // the issue that went out, when this is the next one
	IssueID    string
	Number     int
	Now        time.Time // the preview's clock
	IssueAt    time.Time // the issue's time: Now, or the next scheduled time once the issue for Now went out
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
	Label   string // the reason as shown: "settling (changed 20 min ago)"
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
	d.Zone = sn.sess.Location()
	if d.Zone == nil {
		d.Zone = time.UTC
	}
	d.Out = b.Out
	d.IssueID, d.Number = b.Issue.ID, b.Issue.Number
	d.Now, d.BuiltAt, d.Took = sn.now, sn.at, sn.took
	d.IssueAt = b.Issue.Date
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
		row := leftRow{Article: o.Article, Reason: o.Reason, Label: string(o.Reason), Detail: omissionDetail(o, b.Issue, d.Zone)}
		if o.Reason == issue.Settling {
			row.Label = fmt.Sprintf("settling (changed %s ago)", ago(sn.now.Sub(o.Changed)))
		}
		d.Left = append(d.Left, row)
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
func omissionDetail(o issue.Omission, iss issue.Issue, zone *time.Location) string {
	switch o.Reason {
	case issue.Duplicate:
		return fmt.Sprintf("the same story as “%s” from %s, which came first", o.Original.Title, o.Original.Source)
	case issue.Draft:
		return "marked draft: true"
	case issue.AlreadySent:
		return "went out in issue " + o.SentIn
	case issue.BeforeWindow:
		return fmt.Sprintf("published %s; the window starts %s", stamp(o.Article.Published, zone), stamp(iss.From, zone))
	case issue.AfterNow:
		return fmt.Sprintf("dated %s, after the issue's time %s", stamp(o.Article.Published, zone), stamp(iss.Date, zone))
	case issue.OverLimit:
		return fmt.Sprintf("the issue holds %d stories (digest.max_articles), one from every source before a second from any; kept for the next issue while in the window", iss.Count())
	case issue.SourceLimit:
		return "its source's newer stories fill its sources[].max_items; kept for the next issue while in the window"
	case issue.Settling:
		return fmt.Sprintf("last changed %s; its source waits for stories to stop changing (sources[].settle)", stamp(o.Changed, zone))
	case issue.Backlog:
		return "its source already had it when first seen, beyond sources[].backfill: never sent"
	}
	return ""
}

// stamp shows a date and time in the newsletter's zone.
func stamp(t time.Time, zone *time.Location) string {
	if t.IsZero() {
		return "(no date)"
	}
	if zone == nil {
		zone = time.UTC
	}
	return t.In(zone).Format("2 Jan 2006 15:04 MST")
}

// ago says a duration as people do: "20 min", "3 h 5 min", "2 days".
func ago(d time.Duration) string {
	d = d.Round(time.Minute)
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	}
	return fmt.Sprintf("%d days", int(d.Hours())/24)
}

// outLine says which issue went out, or is going out, before the one
// shown: "Issue 2026-12-04 #2 went out at 08:00 to 1,204 readers".
func outLine(o *pipeline.Out, now time.Time, zone *time.Location) string {
	c := o.Counts
	if o.Completed.IsZero() || !c.Done() {
		return fmt.Sprintf("Issue %s #%d is going out: %s of %s sent so far.", o.ID, o.Number,
			thousands(c.Sent), plural(c.Total()-c.Skipped, "reader", "readers"))
	}
	at := o.Completed.In(zone)
	when := at.Format("15:04")
	if y, m, d := now.In(zone).Date(); at.Year() != y || at.Month() != m || at.Day() != d {
		when = at.Format("2 Jan 2006 15:04")
	}
	line := fmt.Sprintf("Issue %s #%d went out at %s to %s", o.ID, o.Number, when, plural(c.Sent, "reader", "readers"))
	if c.Failed > 0 {
		line += fmt.Sprintf(" (%s failed)", thousands(c.Failed))
	}
	return line + "."
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return thousands(n) + " " + many
}

// thousands writes n with a comma between thousands: 1,204.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func formatKB(n int) string {
	return fmt.Sprintf("%.1f KB", float64(n)/1024)
}
