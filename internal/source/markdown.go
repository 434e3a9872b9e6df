package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
	"gopkg.in/yaml.v3"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/fetch"
)

// markdown is a folder of notes: every *.md (or *.markdown) file under Path,
// recursively, skipping files and folders whose names start with "." or "_".
// Each note starts with YAML front matter between "---" lines.
type markdown struct {
	spec Spec
	env  Env
	md   goldmark.Markdown
}

func newMarkdown(spec Spec, env Env) *markdown {
	// goldmark's defaults are safe: raw HTML is omitted, javascript: links
	// emptied. Keep it that way (no html.WithUnsafe).
	md := goldmark.New(
		goldmark.WithExtensions(extension.GFM),
		goldmark.WithParserOptions(parser.WithASTTransformers(util.Prioritized(dropRawContent{}, 100))),
	)
	return &markdown{spec: spec, env: env, md: md}
}

// dropRawContent removes the text between an inline <script> or <style> and
// its end tag: goldmark omits the tags themselves but would keep
// "alert(1)" as visible text. (Block-level script is dropped whole.)
type dropRawContent struct{}

func (dropRawContent) Transform(doc *ast.Document, reader text.Reader, _ parser.Context) {
	src := reader.Source()
	var raws []*ast.RawHTML
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if r, ok := n.(*ast.RawHTML); ok && entering {
			raws = append(raws, r)
		}
		return ast.WalkContinue, nil
	})
	for _, r := range raws {
		tag := rawTag(r, src)
		if tag != "<script" && tag != "<style" {
			continue
		}
		parent := r.Parent()
		if parent == nil {
			continue // removed with an earlier one
		}
		for n := r.NextSibling(); n != nil; {
			next := n.NextSibling()
			if c, ok := n.(*ast.RawHTML); ok && rawTag(c, src) == "</"+tag[1:] {
				break
			}
			parent.RemoveChild(parent, n)
			n = next
		}
	}
}

// rawTag is the lower-cased start of a raw HTML node, up to its name's end.
func rawTag(r *ast.RawHTML, src []byte) string {
	if r.Segments.Len() == 0 {
		return ""
	}
	seg := r.Segments.At(0)
	s := strings.ToLower(string(seg.Value(src)))
	start := 1
	if strings.HasPrefix(s, "</") {
		start = 2
	}
	if len(s) <= start {
		return s
	}
	if end := strings.IndexAny(s[start:], " \t\r\n/>"); end >= 0 {
		return s[:start+end]
	}
	return s
}

func (m *markdown) Name() string { return m.spec.Name }

// Fetch reads every note. A bad note does not stop the others: the good
// notes' articles come back with an *Error listing one problem per bad file
// (its path and, where known, line), marked Partial when any note was good,
// so that one broken note is a warning and not a failed source. A folder
// that cannot be read, or whose every note is bad, fails.
// Drafts are returned with Draft set; selection decides what to do with them.
func (m *markdown) Fetch(ctx context.Context) ([]article.Article, error) {
	ctx, cancel := withTimeout(ctx, m.spec.Timeout)
	defer cancel()

	root := m.spec.Path
	var arts []article.Article
	var errs []error
	walkErr := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			errs = append(errs, err)
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		ext := strings.ToLower(filepath.Ext(name))
		if d.IsDir() || !d.Type().IsRegular() || (ext != ".md" && ext != ".markdown") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			rel = name
		}
		a, err := m.note(path, filepath.ToSlash(strings.TrimSuffix(rel, filepath.Ext(rel))))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			return nil
		}
		arts = append(arts, a)
		return nil
	})
	if walkErr != nil {
		return arts, newError("markdown", m.spec.Name, append(errs, walkErr)...)
	}
	if len(errs) == 0 {
		return arts, nil
	}
	e := newError("markdown", m.spec.Name, errs...)
	e.Partial = len(arts) > 0
	return arts, e
}

// frontMatter is the YAML head of a note; other keys are ignored.
type frontMatter struct {
	Title   string    `yaml:"title"`
	Date    yaml.Node `yaml:"date"`
	URL     string    `yaml:"url"`
	Summary string    `yaml:"summary"`
	Tags    yaml.Node `yaml:"tags"`
	Draft   bool      `yaml:"draft"`
	Image   string    `yaml:"image"`
}

// note reads one file; stem is its path below the folder, without extension.
func (m *markdown) note(path, stem string) (article.Article, error) {
	data, err := readFile(path, fetch.DefaultMaxBytes)
	if err != nil {
		return article.Article{}, err
	}
	head, body, offset, err := splitFrontMatter(data)
	if err != nil {
		return article.Article{}, err
	}
	var fm frontMatter
	if err := yaml.Unmarshal(head, &fm); err != nil {
		return article.Article{}, fmt.Errorf("front matter: %s", shiftLines(err.Error(), offset))
	}

	a := article.Article{
		Title:   article.Clean(fm.Title),
		Source:  m.spec.Name,
		Section: m.spec.Section,
		Draft:   fm.Draft,
	}
	if a.Title == "" {
		return article.Article{}, errors.New("front matter: title is missing")
	}
	if a.Published, err = parseDate(&fm.Date, m.env.Location, offset); err != nil {
		return article.Article{}, err
	}
	if a.Tags, err = parseTags(&fm.Tags, offset); err != nil {
		return article.Article{}, err
	}
	a.Tags = tags(a.Tags)

	if u := strings.TrimSpace(fm.URL); u != "" {
		if a.Link = article.WebURL(u); a.Link == "" {
			return article.Article{}, fmt.Errorf("front matter: url %q is not an absolute http(s) URL", u)
		}
		a.ID = article.Canonical(a.Link)
	} else {
		a.ID = "md:" + m.spec.Name + "/" + stem
	}
	if img := strings.TrimSpace(fm.Image); img != "" {
		if a.Image = article.WebURL(article.Resolve(a.Link, img)); a.Image == "" {
			m.env.Logger.Warn("note image dropped: not an absolute http(s) URL", "file", path, "image", img)
		}
	}

	// The summary is Markdown too ("a *short* note").
	if strings.TrimSpace(fm.Summary) != "" {
		body = []byte(fm.Summary)
	}
	var buf bytes.Buffer
	if err := m.md.Convert(body, &buf); err != nil {
		return article.Article{}, fmt.Errorf("rendering: %w", err)
	}
	text := article.PlainText(m.env.Sanitizer.HTML(buf.String()))
	// A note that opens with its title as a heading: skip the repeat.
	if rest, ok := strings.CutPrefix(text, a.Title+" "); ok {
		text = rest
	}
	a.Teaser = article.Teaser(text, m.env.TeaserLength)
	return a, nil
}

// splitFrontMatter separates the YAML between the opening "---" line and the
// closing "---" (or "...") line from the body. offset is the number of file
// lines before the YAML, to turn YAML line numbers into file line numbers.
func splitFrontMatter(data []byte) (head, body []byte, offset int, err error) {
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	line, rest, _ := bytes.Cut(data, []byte("\n"))
	if string(bytes.TrimRight(line, " \t\r")) != "---" {
		return nil, nil, 0, errors.New("line 1: no front matter (the file must start with a --- line)")
	}
	start := len(data) - len(rest)
	for pos := start; pos < len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		next := len(data)
		if end >= 0 {
			next = pos + end + 1
		} else {
			end = len(data) - pos
		}
		l := string(bytes.TrimRight(data[pos:pos+end], " \t\r"))
		if l == "---" || l == "..." {
			return data[start:pos], data[next:], 1, nil
		}
		pos = next
	}
	return nil, nil, 0, errors.New("front matter: no closing --- line")
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// shiftLines renumbers "line N" in a YAML error to file lines.
func shiftLines(msg string, offset int) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	return yamlLine.ReplaceAllStringFunc(msg, func(s string) string {
		n, err := strconv.Atoi(strings.TrimPrefix(s, "line "))
		if err != nil {
			return s
		}
		return "line " + strconv.Itoa(n+offset)
	})
}

// dateLayouts are the accepted forms of a front-matter date, besides RFC 3339.
var dateLayouts = []string{
	"2006-01-02 15:04:05",
	"2006-01-02 15:04",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04 -0700",
}

// parseDate reads the required date: a YAML date or timestamp, RFC 3339, or
// "2006-01-02 15:04"; dates without a zone are in loc.
func parseDate(n *yaml.Node, loc *time.Location, offset int) (time.Time, error) {
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return time.Time{}, errors.New("front matter: date is missing")
	}
	line := n.Line + offset
	if n.Kind != yaml.ScalarNode {
		return time.Time{}, fmt.Errorf("line %d: date is not a single value", line)
	}
	v := strings.TrimSpace(n.Value)
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range dateLayouts {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t.UTC(), nil
		}
	}
	if n.Tag == "!!timestamp" { // the other forms YAML allows
		var t time.Time
		if err := n.Decode(&t); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("line %d: date %q: want YYYY-MM-DD, YYYY-MM-DD HH:MM or RFC 3339", line, v)
}

// parseTags accepts a YAML list or a comma-separated string.
func parseTags(n *yaml.Node, offset int) ([]string, error) {
	switch n.Kind {
	case 0:
		return nil, nil
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, nil
		}
		return strings.Split(n.Value, ","), nil
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: tags: want a list of words", c.Line+offset)
			}
			out = append(out, c.Value)
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: tags: want a list or a comma-separated string", n.Line+offset)
}
