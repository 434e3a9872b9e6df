package archive

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/issue"
)

// TestFrenchArchive: in French the index and the feed show the headlines
// with the narrow no-break space the issue had, and lang="fr".
func TestFrenchArchive(t *testing.T) {
	dir := t.TempDir()
	writeIssue(t, dir, issue.Issue{ID: "2026-01-05", Number: 1, Date: testNow, Sections: []issue.Section{
		{Name: "Monde", Articles: []article.Article{{Title: "Le col rouvre enfin!", Link: "https://example.org/a"}}}}})
	if err := Write(dir, Meta{Name: "Hebdo", Language: "fr"}, testNow); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{IndexFile, FeedFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "enfin\u202F!") || !strings.Contains(string(b), `lang="fr"`) {
			t.Errorf("%s lacks the French spacing or lang:\n%s", f, b)
		}
	}
}
