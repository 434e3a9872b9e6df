package archive

import (
	"bytes"
	"fmt"
	"html/template"
	"net/url"
	"time"

	"github.com/digest/digest/internal/schedule"
)

// indexTemplate is the archive's home page: self-contained (no script, no
// external style sheet), readable on a phone and in dark mode. The list's
// name and the headlines take their direction from their own text
// (dir="auto"), so that a right-to-left headline reads right.
const indexTemplate = `<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Name}} – archive</title>
<link rel="alternate" type="application/atom+xml" title="{{.Name}}" href="feed.xml">
<style>
:root { color-scheme: light dark; --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --link: #0b57d0; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --link: #7cacf8; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); }
main { max-width: 44rem; margin: 0 auto; padding: 2rem 1rem; }
h1 { font-size: 1.75rem; margin: 0 0 .25rem; }
.sub { color: var(--muted); margin: 0 0 2rem; }
a { color: var(--link); }
ol { list-style: none; margin: 0; padding: 0; }
li { border-top: 1px solid var(--line); padding: 1rem 0; }
li a { display: block; font-size: 1.125rem; font-weight: 600; text-decoration: none; overflow-wrap: anywhere; }
li a:hover, li a:focus { text-decoration: underline; }
.meta { color: var(--muted); font-size: .875rem; }
@media (max-width: 30rem) { main { padding: 1rem .75rem; } h1 { font-size: 1.4rem; } }
</style>
</head>
<body>
<main>
<h1 dir="auto">{{.Name}}</h1>
<p class="sub">All issues, newest first · <a href="feed.xml">Atom feed</a></p>
{{- if .Issues}}
<ol>
{{- range .Issues}}
<li>
<a href="{{.Href}}" dir="auto">{{.Headline}}</a>
<span class="meta">{{if .Number}}#{{.Number}} · {{end}}<time datetime="{{.DateTime}}">{{.Date}}</time> · {{.Count}} {{if eq .Count 1}}article{{else}}articles{{end}}</span>
</li>
{{- end}}
</ol>
{{- else}}
<p>No issues yet.</p>
{{- end}}
</main>
</body>
</html>
`

type indexPage struct {
	Lang, Name string
	Issues     []indexRow
}

type indexRow struct {
	Href     string
	Headline string
	Number   int
	Date     string // as shown: 2006-01-02, or 2006-01-02 15:04 for an issue of several a day
	DateTime string // RFC 3339
	Count    int
}

// issueHref links to an issue's web version relative to the archive folder.
// The "./" keeps a folder name with a colon from reading as a URL scheme.
func issueHref(dir string) string { return "./" + url.PathEscape(dir) + "/digest.html" }

func renderIndex(m Meta, entries []entry) ([]byte, error) {
	t, err := template.New("index").Parse(indexTemplate)
	if err != nil {
		return nil, fmt.Errorf("archive: index template: %w", err)
	}
	page := indexPage{Lang: m.Language, Name: m.Name}
	for _, e := range entries {
		h := headline(e.iss)
		if h == "" {
			h = title(m.Name, e)
		}
		page.Issues = append(page.Issues, indexRow{
			Href:     issueHref(e.dir),
			Headline: h,
			Number:   e.iss.Number,
			Date:     displayDate(e),
			DateTime: e.iss.Date.Format(time.RFC3339),
			Count:    e.iss.Count(),
		})
	}
	var b bytes.Buffer
	if err := t.Execute(&b, page); err != nil {
		return nil, fmt.Errorf("archive: %s: %w", IndexFile, err)
	}
	return b.Bytes(), nil
}

// displayDate is the issue's calendar date, with the time of day when the
// schedule sends several issues a day: what its id names (in the
// newsletter's zone), else the date it was built for.
func displayDate(e entry) string {
	switch {
	case e.named.IsZero():
		return e.iss.Date.Format(time.DateOnly)
	case e.f == schedule.Minutely:
		return e.named.Format("2006-01-02 15:04")
	case e.f == schedule.Secondly:
		return e.named.Format(time.DateTime)
	}
	return e.dir
}
