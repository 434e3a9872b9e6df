package issue_test

import (
	"slices"
	"testing"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/issue"
)

// dedupe is the rule of deduplication written as plainly as possible, an
// oracle for Select: in order, keep only the first article for each ID and
// for each canonical link.
func dedupe(as []article.Article) []article.Article {
	seenID, seenLink := map[string]bool{}, map[string]bool{}
	var out []article.Article
	for _, a := range as {
		link := ""
		if a.Link != "" {
			link = article.Canonical(a.Link)
		}
		if (a.ID != "" && seenID[a.ID]) || (link != "" && seenLink[link]) {
			continue
		}
		seenID[a.ID] = a.ID != ""
		seenLink[link] = link != ""
		out = append(out, a)
	}
	return out
}

// The oracle and Select keep the same stories on the hand-written cases.
func TestDedupe(t *testing.T) {
	t.Parallel()
	in := []article.Article{
		{ID: "a", Link: "https://ex.org/1?utm_source=x", Title: "first"},
		{ID: "b", Link: "https://EX.org/1#top", Title: "same link as first"},
		{ID: "a", Link: "https://ex.org/other", Title: "same id as first"},
		{ID: "c", Link: "", Title: "no link"},
		{ID: "d", Link: "", Title: "no link either"},
		{ID: "e", Link: "https://ex.org/2", Title: "second"},
		{ID: "", Link: "https://ex.org/2/", Title: "different path"},
	}
	for i := range in {
		in[i].Section = "A"
		in[i].Published = now.Add(-time.Duration(i) * time.Minute) // newest first is the input order
	}
	want := []string{"first", "no link", "no link either", "second", "different path"}
	if got := titlesOf(dedupe(in)); !slices.Equal(got, want) {
		t.Errorf("oracle keeps %q, want %q", got, want)
	}
	iss := issue.Select(in, issue.Options{Now: now, Window: 168 * time.Hour})
	if got := titlesOf(iss.Articles()); !slices.Equal(got, want) {
		t.Errorf("Select keeps %q, want %q", got, want)
	}
}

func titlesOf(as []article.Article) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Title)
	}
	return out
}
