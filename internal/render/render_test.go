package render_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/article"
	goldenfile "github.com/digest/digest/internal/golden"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/render"
)

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
	goldenfile.Check(t, name+".golden", []byte(got))
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
	if strings.Contains(html, "<style") && strings.Contains(html, ".teaser {") {
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
		{"broken HTML partial", "article.html.tmpl", "{{define \"article\"}}\n<tr><td>\n{{if}}</td></tr>{{end}}", "article.html.tmpl:3"},
		{"broken text partial", "footer.txt.tmpl", "{{define \"footer\"}}\nbye\n{{.URLs.Unsubscribe}\n{{end}}", "footer.txt.tmpl:3"},
		{"missing field in a partial names the file", "article.html.tmpl", "{{define \"article\"}}\n<tr><td>\n{{.Titel}}</td></tr>{{end}}", "article.html.tmpl:3:2"},
		{"partial without its define", "section.txt.tmpl", "{{range .Articles}}{{.Title}}{{end}}", `section.txt.tmpl: no {{define "section"}}`},
		{"not UTF-8", "subject.tmpl", "\xff\xfe", "not valid UTF-8"},
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
			if !strings.Contains(err.Error(), filepath.Join(dir, tt.file)) {
				t.Errorf("error %q does not give the path of %s", err, tt.file)
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

// rendered30 is a 30-article issue with the editor's intro, rendered once.
func rendered30(tb testing.TB) *render.Rendered {
	tb.Helper()
	r, err := render.New("", newsletter())
	if err != nil {
		tb.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join("testdata", "intro.md"))
	if err != nil {
		tb.Fatal(err)
	}
	intro, err := render.Intro(md)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := r.Render(bigFixture(30), intro)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// BenchmarkPersonalize is the per-recipient cost of both parts as strings.
func BenchmarkPersonalize(b *testing.B) {
	out := rendered30(b)
	b.SetBytes(int64(out.HTMLLen(reader) + out.TextLen(reader)))
	b.ReportAllocs()
	for b.Loop() {
		_ = out.HTML(reader)
		_ = out.Text(reader)
	}
}

// BenchmarkPersonalizeWrite streams both parts into a reused buffer, as a
// message writer would.
func BenchmarkPersonalizeWrite(b *testing.B) {
	out := rendered30(b)
	var buf bytes.Buffer
	b.SetBytes(int64(out.HTMLLen(reader) + out.TextLen(reader)))
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if _, err := out.WriteHTML(&buf, reader); err != nil {
			b.Fatal(err)
		}
		if _, err := out.WriteText(&buf, reader); err != nil {
			b.Fatal(err)
		}
	}
}

// bigFixture is an issue of n articles in three sections, every other one
// with an image: the shape of a full weekly issue.
func bigFixture(n int) issue.Issue {
	iss := fixture()
	names := []string{"World", "Science", "Around town"}
	iss.Sections = nil
	for i := range n {
		s := i * len(names) / n
		if len(iss.Sections) <= s {
			iss.Sections = append(iss.Sections, issue.Section{Name: names[s]})
		}
		a := article.Article{
			ID:        fmt.Sprintf("a%d", i),
			Title:     fmt.Sprintf("Story %d: council approves a new cycle lane along the river embankment", i+1),
			Link:      fmt.Sprintf("https://example.org/%s/story-%d?utm=x&ref=digest", strings.ToLower(names[s][:5]), i+1),
			Source:    names[s] + " desk",
			Section:   names[s],
			Published: when.Add(-time.Duration(i+1) * 3 * time.Hour),
			Teaser: "The two-kilometre lane links the station with the old harbour; work starts in spring " +
				"and the embankment stays open to walkers throughout, the council said on Tuesday…",
		}
		if i%2 == 0 {
			a.Image = fmt.Sprintf("https://example.org/img/%d.jpg", i+1)
		}
		iss.Sections[s].Articles = append(iss.Sections[s].Articles, a)
	}
	return iss
}

// TestWriteSamples writes a full 30-article issue's HTML and text into the
// folder named by DIGEST_RENDER_SAMPLES, for a look in a browser or a mail
// checker; it is skipped otherwise.
func TestWriteSamples(t *testing.T) {
	dir := os.Getenv("DIGEST_RENDER_SAMPLES")
	if dir == "" {
		t.Skip("DIGEST_RENDER_SAMPLES not set")
	}
	out := rendered30(t)
	for name, body := range map[string]string{"digest.html": out.HTML(reader), "digest.txt": out.Text(reader)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("HTML %d bytes, subject %q", out.HTMLSize(), out.Subject)
}

// cut is iss with its first n articles, as an editor would shorten it.
func cut(iss issue.Issue, n int) issue.Issue {
	out := iss
	out.Sections = nil
	for _, s := range iss.Sections {
		if n <= 0 {
			break
		}
		s.Articles = s.Articles[:min(n, len(s.Articles))]
		n -= len(s.Articles)
		out.Sections = append(out.Sections, s)
	}
	return out
}

func TestFitArticles(t *testing.T) {
	r, err := render.New("", newsletter())
	if err != nil {
		t.Fatal(err)
	}
	iss := bigFixture(30)
	size := func(n int) int {
		out, err := r.Render(cut(iss, n), "")
		if err != nil {
			t.Fatal(err)
		}
		return out.HTMLSize()
	}
	full := size(30)
	tests := []struct {
		name  string
		limit int
		want  int
	}{
		{"everything fits", full, 30},
		{"far above", render.HTMLSizeLimit * 10, 30},
		{"one byte short", full - 1, 29},
		{"exactly twelve", size(12), 12},
		{"between eleven and twelve", size(12) - 1, 11},
		{"not even one", size(0), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.FitArticles(iss, "", tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("FitArticles(limit %d) = %d, want %d", tt.limit, got, tt.want)
			}
		})
	}
}

// TestSizeGuard checks that a full issue stays well under the limit and that
// an oversized one is detected with a count that fits.
func TestSizeGuard(t *testing.T) {
	if n := rendered30(t).HTMLSize(); n > render.HTMLSizeLimit*2/3 {
		t.Errorf("a 30-article issue is %d bytes of HTML: the templates grew", n)
	}
	r, err := render.New("", newsletter())
	if err != nil {
		t.Fatal(err)
	}
	iss := bigFixture(120)
	out, err := r.Render(iss, "")
	if err != nil {
		t.Fatal(err)
	}
	if out.HTMLSize() <= render.HTMLSizeLimit {
		t.Fatalf("120 articles: %d bytes, expected over the limit", out.HTMLSize())
	}
	n, err := r.FitArticles(iss, "", render.HTMLSizeLimit)
	if err != nil {
		t.Fatal(err)
	}
	if n <= 30 || n >= 120 {
		t.Errorf("FitArticles = %d, want between 30 and 120", n)
	}
}

func TestTextPart(t *testing.T) {
	out := rendered30(t)
	text := out.Text(reader)
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, line := range lines {
		if n := len([]rune(line)); n > 72 && strings.ContainsAny(strings.Trim(line, "<>"), " \t") {
			t.Errorf("line %d is %d columns and not a lone URL: %q", i+1, n, line)
		}
		if line != strings.TrimRight(line, " ") {
			t.Errorf("line %d has trailing spaces", i+1)
		}
	}
	if last := lines[len(lines)-1]; last != reader.UnsubscribeURL {
		t.Errorf("last line = %q, want the unsubscribe URL", last)
	}
	for _, a := range bigFixture(30).Articles() {
		if !strings.Contains(text, "\n"+a.Link+"\n") {
			t.Errorf("link %s is not on a line of its own", a.Link)
		}
	}
	for _, h := range []string{"\nWORLD\n=====\n", "\nSCIENCE\n=======\n", "\nAROUND TOWN\n===========\n"} {
		if !strings.Contains(text, h) {
			t.Errorf("text lacks section heading %q", h)
		}
	}
	for _, want := range []string{"Example Weekly, 1 Harbour Street", "with ada@example.org.", "A note from the editor"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
}

// TestHTMLPart checks the email-safety rules that mail clients need.
func TestHTMLPart(t *testing.T) {
	r, err := render.New("", newsletter())
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Render(bigFixture(30), "")
	if err != nil {
		t.Fatal(err)
	}
	h := out.HTML(reader)
	for _, want := range []string{
		`<html lang="en"`, `name="viewport"`, `name="color-scheme" content="light dark"`,
		`name="supported-color-schemes"`, `class="preheader"`, "max-width:600px",
		"@media screen and (max-width: 620px)", "prefers-color-scheme: dark",
		`href="https://news.example.org/u/TOKEN?x=1&amp;y=2"`, "Example Weekly, 1 Harbour Street",
		"<!--[if mso]>",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "<link", "javascript:", "@import", "<style>\n  .story", "display:flex", "display:grid"} {
		if strings.Contains(strings.ToLower(h), strings.ToLower(bad)) {
			t.Errorf("HTML has %q", bad)
		}
	}
	if n, m := strings.Count(h, "<table"), strings.Count(h, `<table role="presentation"`); n != m {
		t.Errorf("%d of %d tables lack role=\"presentation\"", n-m, n)
	}
	if n, m := strings.Count(h, "<img "), strings.Count(h, `alt="`); n == 0 || m < n {
		t.Errorf("%d images, %d alt attributes", n, m)
	}
	// The preheader holds the first teaser.
	first := bigFixture(30).Articles()[0].Teaser[:40]
	if i, j := strings.Index(h, `class="preheader"`), strings.Index(h, first); i < 0 || j < i || j > i+600 {
		t.Error("the preheader does not start with the first teaser")
	}
}

func TestTextPartialOverride(t *testing.T) {
	dir := t.TempDir()
	body := `{{define "article"}}* {{.Title}} <{{.Link}}>{{end}}`
	if err := os.WriteFile(filepath.Join(dir, "article.txt.tmpl"), []byte(body), 0o644); err != nil {
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
	text := out.Text(reader)
	if !strings.Contains(text, "* Mountain pass reopens to freight after rockfall repairs <https://example.org/world/pass>") {
		t.Errorf("text partial not applied:\n%s", text)
	}
	if !strings.Contains(text, "WORLD\n=====") || !strings.Contains(text, "Unsubscribe with one click:") {
		t.Error("the other text partials were lost")
	}
	if strings.Contains(out.HTML(reader), "* Mountain") {
		t.Error("a text partial leaked into the HTML part")
	}
}

// A schedule that sends more than once a day: the header shows the time of
// the issue's id after its date (its scheduled time, not when the build
// ran); the subject carries the number, as for a daily issue.
func TestRenderGoldenSeveralADay(t *testing.T) {
	t.Parallel()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	nl := newsletter()
	nl.Location = paris
	r, err := render.New("", nl)
	if err != nil {
		t.Fatal(err)
	}
	iss := fixture()
	// Scheduled for 19:00 Paris, caught up after midnight UTC.
	iss.ID, iss.Number, iss.Date = "2026-11-30-1900", 12, time.Date(2026, 12, 1, 0, 5, 0, 0, time.UTC)
	out, err := r.Render(iss, "")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "subject.several.txt", out.Subject+"\n")
	html, text := out.HTML(reader), out.Text(reader)
	golden(t, "digest.several.html", html)
	golden(t, "digest.several.txt", text)
	if !strings.Contains(html, "Monday, 30 November 2026, 19:00") || !strings.Contains(text, "Monday, 30 November 2026, 19:00") {
		t.Error("the header does not show the issue's date and time")
	}

	iss.ID = "2026-11-30-190005"
	out, err = r.Render(iss, "")
	if err != nil {
		t.Fatal(err)
	}
	if text := out.Text(reader); !strings.Contains(text, "Monday, 30 November 2026, 19:00:05") {
		t.Errorf("more than once a minute: the header lacks the seconds:\n%s", text)
	}
	if html := out.HTML(reader); !strings.Contains(html, "https://news.example.org/archive/2026-11-30-190005/digest.html") {
		t.Error("the web version link lacks the issue's id")
	}
}
