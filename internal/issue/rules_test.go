package issue_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/issue"
)

// from is art with a source: stories of sources S1, S2, S3 in section A.
func from(src, id string, age time.Duration) article.Article {
	a := art(id, "A", age)
	a.Source = src
	return a
}

func TestSelectRules(t *testing.T) {
	week := 168 * time.Hour
	h := time.Hour
	undated := from("S1", "undated", 30*time.Minute) // dated when first seen, 30 minutes ago
	edited := from("S1", "edited", 3*h)
	edited.Updated = now.Add(-40 * time.Minute)
	skewed := from("S1", "skewed", 3*h)
	skewed.Updated = now.Add(time.Hour) // a clock error, not a change
	settle := map[string]issue.Rules{"S1": {Settle: 2 * h, SettleMax: 24 * h}}
	tests := []struct {
		name string
		in   []article.Article
		opts issue.Options
		want []string
		left []string
	}{
		{
			name: "max_items keeps a source's newest, the rest kept for the next issue",
			in:   []article.Article{from("S1", "s1-old", 9*h), from("S1", "s1-new", h), from("S1", "s1-mid", 5*h), from("S2", "s2", 7*h)},
			opts: issue.Options{Rules: map[string]issue.Rules{"S1": {MaxItems: 2}}},
			want: []string{"A:s1-new", "A:s1-mid", "A:s2"},
			left: []string{"s1-old: over the source's max_items, kept for the next issue"},
		},
		{
			name: "max_articles cuts fairly: one of every source before any gets a second",
			in: []article.Article{
				from("S1", "s1-1", 1*h), from("S1", "s1-2", 2*h), from("S1", "s1-3", 3*h), from("S1", "s1-4", 4*h),
				from("S2", "s2-1", 20*h), from("S2", "s2-2", 21*h),
				from("S3", "s3-1", 50*h),
			},
			opts: issue.Options{MaxArticles: 4},
			// Round one: s1-1, s2-1, s3-1; round two, newest first: s1-2.
			want: []string{"A:s1-1", "A:s1-2", "A:s2-1", "A:s3-1"},
			left: []string{"s1-3: over max_articles", "s1-4: over max_articles", "s2-2: over max_articles"},
		},
		{
			name: "fewer places than sources: the newest of each source's newest",
			in:   []article.Article{from("S1", "s1-1", 1*h), from("S1", "s1-2", 2*h), from("S2", "s2-1", 20*h), from("S3", "s3-1", 5*h)},
			opts: issue.Options{MaxArticles: 2},
			want: []string{"A:s1-1", "A:s3-1"},
			left: []string{"s1-2: over max_articles", "s2-1: over max_articles"},
		},
		{
			name: "max_items first, then the fair cut of max_articles across three sources",
			in: []article.Article{
				from("S1", "s1-1", 1*h), from("S1", "s1-2", 2*h), from("S1", "s1-3", 3*h),
				from("S2", "s2-1", 4*h), from("S2", "s2-2", 30*h), from("S2", "s2-3", 31*h),
				from("S3", "s3-1", 10*h), from("S3", "s3-2", 11*h),
			},
			opts: issue.Options{MaxArticles: 5, Rules: map[string]issue.Rules{"S1": {MaxItems: 1}, "S3": {MaxItems: 5}}},
			// S1 keeps one (max_items); round one: s1-1, s2-1, s3-1; round two: s3-2 (11h), s2-2 (30h).
			want: []string{"A:s1-1", "A:s2-1", "A:s3-1", "A:s3-2", "A:s2-2"},
			left: []string{
				"s1-2: over the source's max_items, kept for the next issue", "s1-3: over the source's max_items, kept for the next issue",
				"s2-3: over max_articles",
			},
		},
		{
			name: "settle: a fresh story waits, one from last week on a new feed does not",
			in:   []article.Article{from("S1", "fresh", 30*time.Minute), from("S1", "last-week", 6*24*h), from("S2", "other", 10*time.Minute)},
			opts: issue.Options{Rules: settle},
			want: []string{"A:other", "A:last-week"},
			left: []string{"fresh: settling (changed 30m0s ago)"},
		},
		{
			name: "settle: a change digest saw restarts the wait, until settle_max from first sight",
			in:   []article.Article{from("S1", "changed", 5*h), from("S1", "capped", 30*h), from("S1", "quiet", 5*h)},
			opts: issue.Options{Rules: settle, Seen: map[string]issue.Seen{
				"changed": {First: now.Add(-5 * h), Changed: now.Add(-20 * time.Minute)},
				"capped":  {First: now.Add(-25 * h), Changed: now.Add(-10 * time.Minute)},
				"quiet":   {First: now.Add(-5 * h)},
			}},
			want: []string{"A:quiet", "A:capped"},
			left: []string{"changed: settling (changed 20m0s ago)"},
		},
		{
			name: "settle: an undated story's first sight counts, a source's updated date too, not one ahead",
			in:   []article.Article{undated, edited, skewed},
			opts: issue.Options{Rules: settle, Seen: map[string]issue.Seen{"undated": {First: now.Add(-30 * time.Minute)}}},
			want: []string{"A:skewed"},
			left: []string{"undated: settling (changed 30m0s ago)", "edited: settling (changed 40m0s ago)"},
		},
		{
			name: "settle 0 takes every story at once",
			in:   []article.Article{from("S1", "fresh", time.Minute)},
			opts: issue.Options{Seen: map[string]issue.Seen{"fresh": {First: now, Changed: now}}},
			want: []string{"A:fresh"},
		},
		{
			name: "a new source's backlog is left out for good, before the window is looked at",
			in:   []article.Article{from("S1", "new", h), from("S1", "backlog", 2*h), from("S1", "ancient", 2*week)},
			opts: issue.Options{Backlog: map[string]bool{"backlog": true, "ancient": true}},
			want: []string{"A:new"},
			left: []string{"backlog: in a new source's backlog, beyond its backfill", "ancient: in a new source's backlog, beyond its backfill"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Now, tt.opts.Window = now, week
			iss := issue.Select(tt.in, tt.opts)
			if diff := cmp.Diff(tt.want, titles(iss)); diff != "" {
				t.Errorf("selected (-want +got):\n%s", diff)
			}
			var got []string
			for _, o := range iss.Left {
				s := o.Article.ID + ": " + string(o.Reason)
				if o.Reason == issue.Settling {
					s += " (changed " + now.Sub(o.Changed).String() + " ago)"
				}
				got = append(got, s)
			}
			if diff := cmp.Diff(tt.left, got); diff != "" {
				t.Errorf("left out (-want +got):\n%s", diff)
			}
			if got, want := iss.Count()+len(iss.Left), len(tt.in); got != want {
				t.Errorf("%d selected + %d left out, want every one of the %d articles accounted for", iss.Count(), len(iss.Left), want)
			}
		})
	}
}

// TestSelectRollover builds three daily issues from one growing feed whose
// source takes two stories an issue: what an issue cannot take goes in the
// next one while it is inside the window, and drops out once it is not.
func TestSelectRollover(t *testing.T) {
	day := 24 * time.Hour
	rules := map[string]issue.Rules{"S1": {MaxItems: 2}}
	feed := []article.Article{ // ages from the first issue's time
		from("S1", "a", 1*time.Hour), from("S1", "b", 2*time.Hour), from("S1", "c", 3*time.Hour),
		from("S1", "d", 4*time.Hour), from("S1", "e", 30*time.Hour),
	}
	sent := map[string]string{}
	var got [][]string
	for i := range 3 {
		at := now.Add(time.Duration(i) * day)
		iss := issue.Select(feed, issue.Options{Now: at, Window: 2 * day, Rules: rules, SentIn: sent})
		var ids []string
		for _, a := range iss.Articles() {
			ids = append(ids, a.ID)
			sent[a.ID] = iss.ID
		}
		got = append(got, ids)
	}
	// Day 2 takes c and d; e (54h old then) has left the 48h window, and
	// day 3 has nothing left to take.
	want := [][]string{{"a", "b"}, {"c", "d"}, nil}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("issues (-want +got):\n%s", diff)
	}
}

// TestOmissionJSON checks that issue.json keeps every omission with its
// reason, and reads it back.
func TestOmissionJSON(t *testing.T) {
	a := from("S1", "x", time.Hour)
	a.Teaser = "not kept"
	orig := from("S2", "first", time.Hour)
	iss := issue.Issue{ID: "2026-11-30", Left: []issue.Omission{
		{Article: a, Reason: issue.SourceLimit},
		{Article: a, Reason: issue.Duplicate, Original: &orig},
		{Article: a, Reason: issue.Settling, Changed: now.Add(-time.Minute)},
	}}
	raw, err := json.Marshal(iss)
	if err != nil {
		t.Fatal(err)
	}
	var back issue.Issue
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	a.Teaser, a.Section = "", ""
	want := []issue.Omission{
		{Article: a, Reason: issue.SourceLimit},
		{Article: a, Reason: issue.Duplicate, Original: &article.Article{ID: "first"}},
		{Article: a, Reason: issue.Settling, Changed: now.Add(-time.Minute)},
	}
	if diff := cmp.Diff(want, back.Left); diff != "" {
		t.Errorf("omissions read back (-want +got):\n%s\n%s", diff, raw)
	}
}
