package source

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/article"
)

func TestMarkdown(t *testing.T) {
	src, err := New(Spec{Name: "Notes", Type: "markdown", Path: "testdata/notes"}, Env{TeaserLength: 60})
	if err != nil {
		t.Fatal(err)
	}
	got, fetchErr := src.Fetch(context.Background())

	want := map[string]article.Article{
		"Nested note": {
			ID: "md:Notes/2024/nested", Published: date("2024-01-15T10:00:00Z"),
			Teaser: "日本語のテキストです。スペースのない文章でも正しく切れるべきです。",
		},
		"Editor's pick": {
			ID: "md:Notes/body-teaser", Published: date("2024-06-04T09:30:00Z"),
			Teaser: "Three things we read this week, with a link and code. first…",
			Tags:   []string{"picks", "weekly"},
		},
		"Work in progress": {
			ID: "md:Notes/draft", Published: date("2024-06-05T06:00:00Z"),
			Teaser: "Not ready yet.", Draft: true,
		},
		"Hello, readers": {
			ID:        "https://notes.example.org/hello",
			Link:      "https://notes.example.org/hello?utm_campaign=x",
			Published: date("2024-06-03T00:00:00Z"), Teaser: "A short welcome note.",
			Image: "https://notes.example.org/img/hello.png", Tags: []string{"welcome", "meta"},
		},
		"Raw HTML note": {
			ID: "md:Notes/script", Published: date("2024-06-06T00:00:00Z"),
			Teaser: "Before after. click",
		},
	}
	if len(got) != len(want) {
		t.Errorf("got %d articles, want %d: %+v", len(got), len(want), got)
	}
	for _, g := range got {
		w, ok := want[g.Title]
		if !ok {
			t.Errorf("unexpected article %+v", g)
			continue
		}
		w.Title, w.Source, w.Section = g.Title, "Notes", "Notes"
		if !equal(g, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", g.Title, g, w)
		}
		if strings.Contains(g.Teaser, "alert") || strings.Contains(g.Teaser, "owned") {
			t.Errorf("%s: script leaked into teaser %q", g.Title, g.Teaser)
		}
	}

	// One problem per bad file, each naming the file and, where known, the
	// line; the source is named once, and the good notes make it a warning.
	var se *Error
	if !errors.As(fetchErr, &se) {
		t.Fatalf("want an *Error for the bad notes, got %v", fetchErr)
	}
	if se.Kind != "markdown" || se.Source != "Notes" || !se.Partial || Failed(fetchErr) {
		t.Errorf("error %+v: want a partial markdown Notes error (a warning)", se)
	}
	reasons := Reasons(fetchErr)
	wantReasons := []string{
		filepath.Join("testdata/notes", "bad-date.md") + `: line 3: date "next tuesday"`,
		filepath.Join("testdata/notes", "bad-yaml.md") + ": front matter: line ",
		filepath.Join("testdata/notes", "no-title.md") + ": front matter: title is missing",
	}
	if len(reasons) != len(wantReasons) {
		t.Fatalf("got %d reasons, want %d:\n%s", len(reasons), len(wantReasons), strings.Join(reasons, "\n"))
	}
	for i, w := range wantReasons {
		if !strings.HasPrefix(reasons[i], w) || strings.Contains(reasons[i], "Notes") {
			t.Errorf("reason %d = %q, want it to start with %q and not name the source", i, reasons[i], w)
		}
	}
	// The log form names the source on each line.
	msg := fetchErr.Error()
	if n := strings.Count(msg, "markdown Notes: "); n != 3 || strings.Count(msg, "\n") != 2 {
		t.Errorf("error text:\n%s", msg)
	}
	if strings.Contains(msg, "_templates") || strings.Contains(msg, "readme") {
		t.Errorf("skipped files were read:\n%s", msg)
	}
}

func TestMarkdownFiles(t *testing.T) {
	tests := []struct {
		name    string
		content string
		check   func(t *testing.T, a article.Article)
		wantErr string
	}{
		{name: "YAML timestamp", content: "---\ntitle: T\ndate: 2024-03-01T10:00:00Z\n---\nbody",
			check: func(t *testing.T, a article.Article) {
				if !a.Published.Equal(date("2024-03-01T10:00:00Z")) {
					t.Errorf("Published = %s", a.Published)
				}
			}},
		{name: "zone-less date in the configured zone", content: "---\ntitle: T\ndate: 2024-03-01 10:00\n---\nbody",
			check: func(t *testing.T, a article.Article) {
				if !a.Published.Equal(date("2024-03-01T09:00:00Z")) { // Europe/Paris is UTC+1 in March
					t.Errorf("Published = %s", a.Published)
				}
			}},
		{name: "CRLF and BOM", content: "\xef\xbb\xbf---\r\ntitle: Windows\r\ndate: 2024-03-01\r\n---\r\nBody text.\r\n",
			check: func(t *testing.T, a article.Article) {
				if a.Title != "Windows" || a.Teaser != "Body text." {
					t.Errorf("got %+v", a)
				}
			}},
		{name: "closing dots", content: "---\ntitle: T\ndate: 2024-03-01\n...\nbody",
			check: func(t *testing.T, a article.Article) {
				if a.Teaser != "body" {
					t.Errorf("Teaser = %q", a.Teaser)
				}
			}},
		{name: "long body cut", content: "---\ntitle: T\ndate: 2024-03-01\n---\n" + strings.Repeat("word ", 100),
			check: func(t *testing.T, a article.Article) {
				if !strings.HasSuffix(a.Teaser, "word…") || len([]rune(a.Teaser)) > 61 {
					t.Errorf("Teaser = %q", a.Teaser)
				}
			}},
		{name: "inline script and style dropped", content: "---\ntitle: T\ndate: 2024-03-01\n---\nBefore <SCRIPT type=\"text/javascript\">evil()</SCRIPT> after <style>p{color:red}</style><b>bold</b> end",
			check: func(t *testing.T, a article.Article) {
				if a.Teaser != "Before after bold end" {
					t.Errorf("Teaser = %q", a.Teaser)
				}
			}},
		{name: "no front matter", content: "# Just markdown\n", wantErr: "line 1: no front matter"},
		{name: "unclosed front matter", content: "---\ntitle: T\ndate: 2024-03-01\n", wantErr: "no closing --- line"},
		{name: "missing date", content: "---\ntitle: T\n---\n", wantErr: "date is missing"},
		{name: "bad url", content: "---\ntitle: T\ndate: 2024-03-01\nurl: javascript:alert(1)\n---\n", wantErr: `url "javascript:alert(1)" is not`},
		{name: "bad draft", content: "---\ntitle: T\ndate: 2024-03-01\ndraft: maybe\n---\n", wantErr: "line 4: cannot unmarshal"},
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "note.md"), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			src, err := New(Spec{Name: "N", Type: "markdown", Path: dir}, Env{TeaserLength: 60, Location: paris})
			if err != nil {
				t.Fatal(err)
			}
			got, err := src.Fetch(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "note.md") {
					t.Fatalf("error = %v, want one naming note.md with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("got %d articles", len(got))
			}
			tt.check(t, got[0])
		})
	}
}

func TestMarkdownMissingFolder(t *testing.T) {
	src, err := New(Spec{Name: "N", Type: "markdown", Path: "testdata/nope"}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Fetch(context.Background())
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "markdown N: ") ||
		!strings.Contains(err.Error(), "testdata/nope") {
		t.Errorf("error = %v", err)
	}
}
