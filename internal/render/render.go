// Package render turns an issue into its subject, HTML and plain-text parts
// through templates: the embedded defaults, overridable file by file.
//
// An issue is rendered once, with slot tokens where per-recipient values go
// (see Rendered); CSS is inlined once per issue.
package render

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode/utf8"

	"github.com/vanng822/go-premailer/premailer"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/schedule"
	"github.com/digest/digest/templates"
)

// Template file names.
const (
	HTMLFile    = "digest.html.tmpl"
	TextFile    = "digest.txt.tmpl"
	SubjectFile = "subject.tmpl"
)

// Newsletter is what templates know about the publication.
type Newsletter struct {
	Name       string
	Language   string // lang attribute of the HTML part; default "en"
	BaseURL    string
	Footer     string // postal / contact line
	ArchiveURL string // public URL of the archive folder, optional
	Location   *time.Location
}

// Data is the value templates are executed with.
type Data struct {
	Newsletter Newsletter
	Issue      IssueView
	Subscriber Subscriber
	URLs       URLs
	Subject    string // the rendered subject (empty while rendering it)
	Preheader  string // hidden preview text: the issue's first teasers
}

// IssueView is the issue as templates see it.
type IssueView struct {
	ID     string
	Number int
	Date   time.Time // the clock the issue was built for
	// Time is the time the issue is for: the scheduled time its id names
	// when the schedule sends more than one issue a day, else Date.
	Time time.Time
	// Clock is the time of day of an issue's id, "19:00" (or "19:00:05"
	// when the schedule fires more than once a minute), when the schedule
	// sends more than one issue a day; empty when its id is a date. The
	// default header shows it after the date.
	Clock     string
	Sections  []issue.Section
	Articles  []article.Article
	Count     int
	Lead      *article.Article // the first article, nil when empty
	Intro     htmltemplate.HTML
	IntroText string
}

// Subscriber is the recipient as templates see it: slot tokens, filled in per
// recipient.
type Subscriber struct {
	Name  string
	Email string
}

// URLs available to templates.
type URLs struct {
	Unsubscribe string // per recipient (slot token)
	Preferences string // per recipient (slot token): name, topics, leave
	Archive     string // archive index, when newsletter.archive_url is set
	WebVersion  string // this issue in the archive, when archive_url is set
}

// Renderer holds parsed templates. It is safe for concurrent use.
type Renderer struct {
	nl      Newsletter
	html    *htmltemplate.Template
	text    *texttemplate.Template
	subject *texttemplate.Template
	files   []file // the template sources, for Templates
}

// New parses the templates: files in dir (when it exists) override the
// embedded defaults of the same name. Errors name the file and line. The
// templates are also executed once against a sample issue, so a reference to a
// missing field fails here and not at send time.
func New(dir string, nl Newsletter) (*Renderer, error) {
	if nl.Language == "" {
		nl.Language = "en"
	}
	if nl.Location == nil {
		nl.Location = time.UTC
	}
	files, err := load(dir)
	if err != nil {
		return nil, err
	}
	return parse(files, nl)
}

// WithTemplates is a renderer of the same newsletter with a set of template
// sources as Templates returned them (a built issue's, kept in the store),
// parsed and checked as New does. Nothing is read from disk: an issue
// renders as it did when it was built, whatever the templates folder holds
// now.
func (r *Renderer) WithTemplates(t map[string]string) (*Renderer, error) {
	files := make([]file, 0, len(t))
	for name, body := range t {
		files = append(files, file{name: name, path: name + " (as built)", body: body})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return parse(files, r.nl)
}

// Templates returns the template sources the renderer was made from, by
// file name: what WithTemplates takes.
func (r *Renderer) Templates() map[string]string {
	out := make(map[string]string, len(r.files))
	for _, f := range r.files {
		out[f.name] = f.body
	}
	return out
}

// parse makes a renderer of files, sorted by name.
func parse(files []file, nl Newsletter) (*Renderer, error) {
	funcs := funcMap(nl.Location)
	r := &Renderer{nl: nl, files: files}

	r.html = htmltemplate.New(HTMLFile).Funcs(htmltemplate.FuncMap(funcs))
	r.text = texttemplate.New(TextFile).Funcs(funcs)
	r.subject = texttemplate.New(SubjectFile).Funcs(funcs)
	if err := r.parse(files); err != nil {
		return nil, err
	}
	// A sample with an intro, an image and every URL takes every branch of
	// the default templates.
	if _, err := r.Render(sample(), "<p>Sample <a href=\"https://example.org/\">intro</a>.</p>"); err != nil {
		return nil, fmt.Errorf("templates: checking against a sample issue: %w%s", err, overridden(files, err))
	}
	return r, nil
}

// parse parses every file into its set, then checks that the three main
// templates are there and that each partial defines its own name.
func (r *Renderer) parse(files []file) error {
	for _, f := range files {
		var err error
		switch {
		// A main file parses into its set's root: New with the root's own
		// name would detach the function map from later templates.
		case f.name == SubjectFile:
			_, err = r.subject.Parse(f.body)
		case f.name == HTMLFile:
			_, err = r.html.Parse(f.body)
		case f.name == TextFile:
			_, err = r.text.Parse(f.body)
		case strings.HasSuffix(f.name, ".html.tmpl"):
			_, err = r.html.New(f.name).Parse(f.body)
		case strings.HasSuffix(f.name, ".txt.tmpl"):
			_, err = r.text.New(f.name).Parse(f.body)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
	}
	for _, need := range []string{HTMLFile, TextFile, SubjectFile} {
		if !has(files, need) {
			return fmt.Errorf("templates: %s is missing", need)
		}
	}
	return r.checkPartials(files)
}

// checkPartials checks that each partial file defines the template it is
// named after.
func (r *Renderer) checkPartials(files []file) error {
	for _, f := range files {
		name, ok := strings.CutSuffix(f.name, ".html.tmpl")
		isHTML := ok
		if !ok {
			name, ok = strings.CutSuffix(f.name, ".txt.tmpl")
		}
		if !ok || !isPartial(name) {
			continue
		}
		if (isHTML && r.html.Lookup(name) == nil) || (!isHTML && r.text.Lookup(name) == nil) {
			return fmt.Errorf("%s: no {{define %q}} in this partial", f.path, name)
		}
	}
	return nil
}

// isPartial tells the names of the partial templates, each in a file of its
// own (name.html.tmpl, name.txt.tmpl) that defines it.
func isPartial(name string) bool {
	switch name {
	case "header", "section", "article", "footer":
		return true
	}
	return false
}

// overridden names the files behind the template names an error mentions
// when they are not the embedded ones, since template errors name only the
// template ("article.html.tmpl:3:2").
func overridden(files []file, err error) string {
	var where []string
	for _, f := range files {
		if !strings.HasSuffix(f.path, "(embedded)") && strings.Contains(err.Error(), f.name+":") {
			where = append(where, f.path)
		}
	}
	if len(where) == 0 {
		return ""
	}
	return " (in " + strings.Join(where, ", ") + ")"
}

type file struct{ name, path, body string }

func has(files []file, name string) bool {
	for _, f := range files {
		if f.name == name {
			return true
		}
	}
	return false
}

// load reads every *.tmpl of the embedded defaults and of dir, dir winning.
func load(dir string) ([]file, error) {
	byName := map[string]file{}
	embedded, err := fs.Glob(templates.FS, "*.tmpl")
	if err != nil {
		return nil, err
	}
	for _, name := range embedded {
		b, err := fs.ReadFile(templates.FS, name)
		if err != nil {
			return nil, err
		}
		byName[name] = file{name: name, path: name + " (embedded)", body: string(b)}
	}
	if dir != "" {
		paths, err := filepath.Glob(filepath.Join(dir, "*.tmpl"))
		if err != nil {
			return nil, fmt.Errorf("templates %s: %w", dir, err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("templates: %w", err)
			}
			if !utf8.Valid(b) {
				return nil, fmt.Errorf("%s: not valid UTF-8", p)
			}
			name := filepath.Base(p)
			byName[name] = file{name: name, path: p, body: string(b)}
		}
	}
	out := make([]file, 0, len(byName))
	for _, f := range byName {
		out = append(out, f)
	}
	// The main files first, so that their name is the set's entry point,
	// then partials in a stable order.
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// Render renders the issue once, with slot tokens for the recipient. intro is
// the editor's introduction as safe HTML (already rendered from Markdown).
func (r *Renderer) Render(iss issue.Issue, intro string) (*Rendered, error) {
	d := Data{
		Newsletter: r.nl,
		Issue:      r.view(iss, intro),
		Subscriber: Subscriber{Name: TokenName, Email: TokenEmail},
		URLs:       URLs{Unsubscribe: TokenUnsubscribeURL, Preferences: TokenPreferencesURL},
	}
	if base := strings.TrimRight(r.nl.ArchiveURL, "/"); base != "" {
		d.URLs.Archive = base + "/"
		d.URLs.WebVersion = base + "/" + iss.ID + "/digest.html"
	}
	d.Preheader = preheader(d.Issue.Articles, 140)

	var buf bytes.Buffer
	if err := r.subject.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("render %s: %w", SubjectFile, err)
	}
	d.Subject = strings.Join(strings.Fields(buf.String()), " ")
	if French(r.nl.Language) {
		d.Subject = frenchSpacing(d.Subject) // the subject's truncate made its spaces plain
	}

	buf.Reset()
	if err := r.html.ExecuteTemplate(&buf, HTMLFile, d); err != nil {
		return nil, fmt.Errorf("render %s: %w", HTMLFile, err)
	}
	html, err := inline(buf.String())
	if err != nil {
		return nil, fmt.Errorf("render %s: inlining CSS: %w", HTMLFile, err)
	}

	buf.Reset()
	if err := r.text.ExecuteTemplate(&buf, TextFile, d); err != nil {
		return nil, fmt.Errorf("render %s: %w", TextFile, err)
	}
	return NewRendered(d.Subject, html, tidyText(buf.String())), nil
}

func (r *Renderer) view(iss issue.Issue, intro string) IssueView {
	if French(r.nl.Language) {
		iss, intro = FrenchIssue(iss), frenchHTML(intro)
	}
	v := IssueView{
		ID:       iss.ID,
		Number:   iss.Number,
		Date:     iss.Date,
		Time:     iss.Date,
		Sections: iss.Sections,
		Articles: iss.Articles(),
		Count:    iss.Count(),
		Intro:    htmltemplate.HTML(intro), // rendered and sanitized by the caller
	}
	if len(v.Articles) > 0 {
		v.Lead = &v.Articles[0]
	}
	switch at, f, err := schedule.ParseIssueID(iss.ID, r.nl.Location); {
	case err != nil:
	case f == schedule.Minutely:
		v.Time, v.Clock = at, at.Format("15:04")
	case f == schedule.Secondly:
		v.Time, v.Clock = at, at.Format("15:04:05")
	}
	if intro != "" {
		v.IntroText = introText(intro, 72)
	}
	return v
}

// HTMLSizeLimit is the HTML size, in bytes, above which a run should warn:
// Gmail clips a message whose HTML exceeds about 102 KB, hiding the rest of
// the issue and the unsubscribe link behind "View entire message".
const HTMLSizeLimit = 90 * 1024

// FitArticles returns how many of the issue's articles, kept in order, fit
// in an HTML part of at most limit bytes (before personalization). It renders
// shortened issues, about log2(count) times, so call it only when
// Rendered.HTMLSize exceeds the limit. It returns the full count when the
// whole issue fits, and 0 when not even one article does.
func (r *Renderer) FitArticles(iss issue.Issue, intro string, limit int) (int, error) {
	size := func(n int) (int, error) {
		out, err := r.Render(firstArticles(iss, n), intro)
		if err != nil {
			return 0, err
		}
		return out.HTMLSize(), nil
	}
	// Invariant: lo articles fit (0 always counts as fitting), hi do not.
	lo, hi := 0, iss.Count()
	if s, err := size(hi); err != nil || s <= limit {
		return hi, err
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		s, err := size(mid)
		if err != nil {
			return 0, err
		}
		if s <= limit {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// firstArticles returns iss cut to its first n articles; sections left empty
// are dropped.
func firstArticles(iss issue.Issue, n int) issue.Issue {
	out := iss
	out.Sections = nil
	for _, s := range iss.Sections {
		if n <= 0 {
			break
		}
		if len(s.Articles) > n {
			s.Articles = s.Articles[:n]
		}
		n -= len(s.Articles)
		out.Sections = append(out.Sections, s)
	}
	return out
}

// inline moves the CSS of <style> blocks into style attributes; @media rules
// stay in a <style> block.
func inline(html string) (string, error) {
	p, err := premailer.NewPremailerFromString(html, premailer.NewOptions())
	if err != nil {
		return "", err
	}
	out, err := p.Transform()
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(strings.TrimSpace(strings.ToLower(out)), "<!doctype") {
		out = "<!DOCTYPE html>\n" + out
	}
	return out, nil
}

// tidyText trims trailing spaces and collapses runs of blank lines.
func tidyText(s string) string {
	lines := strings.Split(s, "\n")
	var b strings.Builder
	blank := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			blank++
			if blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return strings.TrimLeft(strings.TrimRight(b.String(), "\n"), "\n") + "\n"
}

func preheader(as []article.Article, max int) string {
	var parts []string
	n := 0
	for _, a := range as {
		t := a.Teaser
		if t == "" {
			t = a.Title
		}
		parts = append(parts, t)
		n += utf8.RuneCountInString(t)
		if n >= max {
			break
		}
	}
	return article.Teaser(strings.Join(parts, " "), max)
}

func sample() issue.Issue {
	at := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	return issue.Issue{
		ID: "2026-01-05", Number: 1, Date: at, From: at.Add(-168 * time.Hour),
		Sections: []issue.Section{{Name: "Sample", Articles: []article.Article{{
			ID: "sample", Title: "Sample story", Link: "https://example.org/sample",
			Source: "Sample", Section: "Sample", Published: at.Add(-time.Hour),
			Teaser: "A sample teaser.", Image: "https://example.org/sample.png",
		}}}},
	}
}
