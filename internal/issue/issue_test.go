package issue_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/issue"
)

var now = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

func art(id, section string, age time.Duration) article.Article {
	return article.Article{ID: id, Title: id, Link: "https://example.org/" + id, Section: section, Published: now.Add(-age)}
}

// titles flattens an issue into "section:id" strings in order.
func titles(iss issue.Issue) []string {
	var out []string
	for _, s := range iss.Sections {
		for _, a := range s.Articles {
			out = append(out, s.Name+":"+a.ID)
		}
	}
	return out
}

// left flattens the omissions into "id: reason" strings, with the original
// of a duplicate and the issue of an article already sent.
func left(iss issue.Issue) []string {
	var out []string
	for _, o := range iss.Left {
		s := fmt.Sprintf("%s: %s", o.Article.ID, o.Reason)
		switch {
		case o.Original != nil:
			s += " of " + o.Original.ID
		case o.SentIn != "":
			s += " in " + o.SentIn
		}
		out = append(out, s)
	}
	return out
}

func TestSelect(t *testing.T) {
	week := 168 * time.Hour
	draft := art("draft", "A", time.Hour)
	draft.Draft = true
	dup := art("dup", "B", 2*time.Hour)
	dup.Link = "https://example.org/a1?utm_source=feed"
	sameID := art("a1", "B", time.Hour)
	sameID.Link = "https://example.org/elsewhere"
	draftCopy := art("draft-copy", "A", time.Hour)
	draftCopy.Link = draft.Link
	noIdentity := func(title string) article.Article {
		return article.Article{Title: title, Section: "A", Published: now.Add(-time.Hour)}
	}
	tests := []struct {
		name string
		in   []article.Article
		opts issue.Options
		want []string
		left []string
	}{
		{
			name: "window drops old and future articles, keeps the edge inside",
			in:   []article.Article{art("old", "A", week+time.Minute), art("edge", "A", week-time.Minute), art("future", "A", -time.Hour), art("new", "A", time.Hour)},
			opts: issue.Options{Window: week},
			want: []string{"A:new", "A:edge"},
			left: []string{"old: before the window", "future: after the issue's time"},
		},
		{
			name: "published exactly at the window's start is outside",
			in:   []article.Article{art("start", "A", week), art("now", "A", 0)},
			opts: issue.Options{Window: week},
			want: []string{"A:now"},
			left: []string{"start: before the window"},
		},
		{
			name: "sections in configured order, newest first within each",
			in:   []article.Article{art("b1", "B", 5*time.Hour), art("a1", "A", 3*time.Hour), art("b2", "B", time.Hour), art("a2", "A", 2*time.Hour)},
			opts: issue.Options{Window: week, Sections: []string{"A", "B"}},
			want: []string{"A:a2", "A:a1", "B:b2", "B:b1"},
		},
		{
			name: "unlisted sections follow in order of first appearance",
			in:   []article.Article{art("c1", "C", time.Hour), art("b1", "B", time.Hour), art("a1", "A", time.Hour)},
			opts: issue.Options{Window: week, Sections: []string{"A"}},
			want: []string{"A:a1", "C:c1", "B:b1"},
		},
		{
			name: "drafts and articles already sent are dropped, naming the issue",
			in:   []article.Article{draft, art("sent", "A", time.Hour), art("keep", "A", time.Hour)},
			opts: issue.Options{Window: week, SentIn: map[string]string{"sent": "2026-11-23"}},
			want: []string{"A:keep"},
			left: []string{"draft: draft", "sent: already sent in 2026-11-23"},
		},
		{
			name: "a draft that was sent is reported as a draft",
			in:   []article.Article{draft},
			opts: issue.Options{Window: week, SentIn: map[string]string{"draft": "2026-11-23"}},
			left: []string{"draft: draft"},
		},
		{
			name: "an old article already sent is reported as sent",
			in:   []article.Article{art("old-sent", "A", 2*week)},
			opts: issue.Options{Window: week, SentIn: map[string]string{"old-sent": "2026-11-09"}},
			left: []string{"old-sent: already sent in 2026-11-09"},
		},
		{
			name: "duplicates by canonical link keep the first source's copy",
			in:   []article.Article{art("a1", "A", 3*time.Hour), dup},
			opts: issue.Options{Window: week},
			want: []string{"A:a1"},
			left: []string{"dup: duplicate of a1"},
		},
		{
			name: "duplicates by ID keep the first copy whatever the link",
			in:   []article.Article{art("a1", "A", 3*time.Hour), sameID},
			opts: issue.Options{Window: week},
			want: []string{"A:a1"},
			left: []string{"a1: duplicate of a1"},
		},
		{
			name: "a copy of a draft is a duplicate of the draft, as before",
			in:   []article.Article{draft, draftCopy},
			opts: issue.Options{Window: week},
			left: []string{"draft: draft", "draft-copy: duplicate of draft"},
		},
		{
			name: "articles without ID or link are never duplicates",
			in:   []article.Article{noIdentity("x"), noIdentity("y")},
			opts: issue.Options{Window: week},
			want: []string{"A:", "A:"},
		},
		{
			name: "limit keeps the newest overall, the rest are over max_articles in input order",
			in:   []article.Article{art("a-old", "A", 50*time.Hour), art("b-new", "B", time.Hour), art("a-mid", "A", 20*time.Hour), art("a-new", "A", 2*time.Hour)},
			opts: issue.Options{Window: week, MaxArticles: 2, Sections: []string{"A", "B"}},
			want: []string{"A:a-new", "B:b-new"},
			left: []string{"a-old: over max_articles", "a-mid: over max_articles"},
		},
		{
			name: "every reason at once, listed in input order",
			in: []article.Article{
				art("old", "A", 2*week), draft, art("keep2", "A", 2*time.Hour), art("sent", "A", time.Hour),
				art("keep1", "A", time.Hour), art("over", "A", 3*time.Hour), art("future", "A", -time.Hour), art("keep1", "B", time.Hour),
			},
			opts: issue.Options{Window: week, MaxArticles: 2, SentIn: map[string]string{"sent": "2026-11-16"}},
			want: []string{"A:keep1", "A:keep2"},
			left: []string{
				"old: before the window", "draft: draft", "sent: already sent in 2026-11-16", "over: over max_articles",
				"future: after the issue's time", "keep1: duplicate of keep1",
			},
		},
		{
			name: "nothing in the window gives an empty issue",
			in:   []article.Article{art("old", "A", 2*week)},
			opts: issue.Options{Window: week},
			want: nil,
			left: []string{"old: before the window"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Now = now
			iss := issue.Select(tt.in, tt.opts)
			if diff := cmp.Diff(tt.want, titles(iss)); diff != "" {
				t.Errorf("selected (-want +got):\n%s", diff)
			}
			if iss.Count() != len(tt.want) {
				t.Errorf("Count() = %d, want %d", iss.Count(), len(tt.want))
			}
			if diff := cmp.Diff(tt.left, left(iss)); diff != "" {
				t.Errorf("left out (-want +got):\n%s", diff)
			}
			if got, want := iss.Count()+len(iss.Left), len(tt.in); got != want {
				t.Errorf("%d selected + %d left out, want every one of the %d articles accounted for", iss.Count(), len(iss.Left), want)
			}
		})
	}
}

// TestSelectSameAsDedupe checks that the selection keeps exactly the
// articles the dedupe oracle keeps, on a mix of repeated IDs and links.
func TestSelectSameAsDedupe(t *testing.T) {
	var in []article.Article
	for i := range 60 {
		a := art(fmt.Sprintf("id%d", i%17), "A", time.Duration(i)*time.Minute)
		a.Link = fmt.Sprintf("https://example.org/%d?utm_campaign=x", i%23)
		if i%5 == 0 {
			a.ID = ""
		}
		in = append(in, a)
	}
	iss := issue.Select(in, issue.Options{Now: now, Window: 168 * time.Hour})
	var want []string
	for _, a := range dedupe(in) {
		want = append(want, a.ID+" "+a.Link)
	}
	// Ages grow with the index, so newest first is the input order.
	var got []string
	for _, a := range iss.Articles() {
		got = append(got, a.ID+" "+a.Link)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Select keeps other articles than the oracle (-dedupe +select):\n%s", diff)
	}
}

func TestID(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 29, 20, 0, 0, 0, time.UTC)
	if got := issue.ID(at, nil); got != "2026-11-29" {
		t.Errorf("UTC id = %s", got)
	}
	if got := issue.ID(at, tokyo); got != "2026-11-30" {
		t.Errorf("Tokyo id = %s, want the local date 2026-11-30", got)
	}
}
