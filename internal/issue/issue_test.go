package issue_test

import (
	"testing"
	"time"

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

func TestSelect(t *testing.T) {
	week := 168 * time.Hour
	draft := art("draft", "A", time.Hour)
	draft.Draft = true
	dup := art("dup", "B", 2*time.Hour)
	dup.Link = "https://example.org/a1"
	tests := []struct {
		name string
		in   []article.Article
		opts issue.Options
		want []string
	}{
		{
			name: "window drops old and future articles, keeps the edge inside",
			in:   []article.Article{art("old", "A", week+time.Minute), art("edge", "A", week-time.Minute), art("future", "A", -time.Hour), art("new", "A", time.Hour)},
			opts: issue.Options{Window: week},
			want: []string{"A:new", "A:edge"},
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
			name: "drafts and excluded articles are dropped",
			in:   []article.Article{draft, art("sent", "A", time.Hour), art("keep", "A", time.Hour)},
			opts: issue.Options{Window: week, Exclude: map[string]bool{"sent": true}},
			want: []string{"A:keep"},
		},
		{
			name: "duplicates by link keep the first source's copy",
			in:   []article.Article{art("a1", "A", 3*time.Hour), dup},
			opts: issue.Options{Window: week},
			want: []string{"A:a1"},
		},
		{
			name: "limit keeps the newest overall",
			in:   []article.Article{art("a-old", "A", 50*time.Hour), art("b-new", "B", time.Hour), art("a-new", "A", 2*time.Hour)},
			opts: issue.Options{Window: week, MaxArticles: 2, Sections: []string{"A", "B"}},
			want: []string{"A:a-new", "B:b-new"},
		},
		{
			name: "nothing in the window gives an empty issue",
			in:   []article.Article{art("old", "A", 2*week)},
			opts: issue.Options{Window: week},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Now = now
			iss := issue.Select(tt.in, tt.opts)
			got := titles(iss)
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			}
			if iss.Count() != len(tt.want) {
				t.Errorf("Count() = %d, want %d", iss.Count(), len(tt.want))
			}
		})
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
