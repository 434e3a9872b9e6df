package archive

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/digest/digest/internal/issue"
)

type atomFeed struct {
	XMLName   xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Lang      string      `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
	ID        string      `xml:"id"`
	Title     string      `xml:"title"`
	Updated   string      `xml:"updated"`
	Links     []atomLink  `xml:"link"`
	Author    atomPerson  `xml:"author"`
	Generator string      `xml:"generator"`
	Entries   []atomEntry `xml:"entry"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomEntry struct {
	ID        string     `xml:"id"`
	Title     string     `xml:"title"`
	Updated   string     `xml:"updated"`
	Published string     `xml:"published"`
	Links     []atomLink `xml:"link"`
	Summary   atomText   `xml:"summary"`
	Content   atomText   `xml:"content"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

// contentTemplate is an entry's content: the intro and every article with
// its teaser, by section. The result travels escaped inside the XML.
const contentTemplate = `{{if .Intro}}<div>{{.Intro}}</div>{{end}}
{{- range .Sections}}{{if .Name}}<h3>{{.Name}}</h3>{{end}}<ul>
{{- range .Articles}}<li>{{if .Link}}<a href="{{.Link}}">{{.Title}}</a>{{else}}{{.Title}}{{end}}{{if .Source}} <small>({{.Source}})</small>{{end}}{{if .Teaser}}<br>{{.Teaser}}{{end}}</li>{{end}}</ul>
{{- end}}`

type contentData struct {
	Intro    template.HTML // already safe: rendered from the editor's Markdown
	Sections []issue.Section
}

// newContentData drops article links that are not web links (javascript:,
// relative ones): a feed reader could not follow them anyway.
func newContentData(iss issue.Issue) contentData {
	d := contentData{Intro: template.HTML(iss.Intro)}
	for _, s := range iss.Sections {
		s.Articles = slices.Clone(s.Articles)
		for i, a := range s.Articles {
			if _, err := parseWebURL(a.Link); err != nil {
				s.Articles[i].Link = ""
			}
		}
		d.Sections = append(d.Sections, s)
	}
	return d
}

func renderFeed(m Meta, entries []entry, now time.Time) ([]byte, error) {
	t, err := template.New("content").Parse(contentTemplate)
	if err != nil {
		return nil, fmt.Errorf("archive: feed content template: %w", err)
	}
	f := atomFeed{
		Lang:      m.Language,
		Title:     m.Name,
		Author:    atomPerson{Name: m.Name},
		Generator: "digest",
		Updated:   now.Format(time.RFC3339),
	}
	if m.BaseURL != "" {
		f.ID = m.BaseURL + "/"
		f.Links = []atomLink{
			{Rel: "self", Type: "application/atom+xml", Href: m.BaseURL + "/" + FeedFile},
			{Rel: "alternate", Type: "text/html", Href: m.BaseURL + "/"},
		}
	} else {
		// A tag: URI needs a date on which its authority was held; any fixed
		// one gives ids that never change.
		f.ID = "tag:" + tagAuthority + ",2000:" + slug(m.Name)
		f.Links = []atomLink{
			{Rel: "self", Type: "application/atom+xml", Href: FeedFile},
			{Rel: "alternate", Type: "text/html", Href: IndexFile},
		}
	}
	if len(entries) > 0 {
		f.Updated = entries[0].iss.Date.Format(time.RFC3339)
	}
	if len(entries) > MaxFeedEntries {
		entries = entries[:MaxFeedEntries]
	}
	for _, e := range entries {
		var content bytes.Buffer
		if err := t.Execute(&content, newContentData(e.iss)); err != nil {
			return nil, fmt.Errorf("archive: feed entry %s: %w", e.dir, err)
		}
		date := e.iss.Date.Format(time.RFC3339)
		ae := atomEntry{
			Title:     title(m.Name, e),
			Updated:   date,
			Published: date,
			Summary:   atomText{Type: "text", Body: summary(e.iss)},
			Content:   atomText{Type: "html", Body: content.String()},
		}
		href := issueHref(e.dir)
		if m.BaseURL != "" {
			href = m.BaseURL + "/" + strings.TrimPrefix(href, "./")
			ae.ID = href
		} else {
			// From the folder, not the date: a rebuilt issue keeps its id.
			ae.ID = f.ID + "/" + url.PathEscape(e.dir)
		}
		ae.Links = []atomLink{{Rel: "alternate", Type: "text/html", Href: href}}
		f.Entries = append(f.Entries, ae)
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("archive: %s: %w", FeedFile, err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// tagAuthority names the minter of tag: ids when no base URL is known. The
// reserved .invalid domain cannot clash with anyone's real ids.
const tagAuthority = "digest.invalid"

// summary lists the issue's article titles on one line.
func summary(iss issue.Issue) string {
	var titles []string
	for _, a := range iss.Articles() {
		if t := strings.TrimSpace(a.Title); t != "" {
			titles = append(titles, t)
		}
	}
	return strings.Join(titles, " · ")
}

// slug reduces a name to lower-case ASCII letters, digits and dashes, for a
// stable tag: id.
func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	if b.Len() == 0 {
		return "digest"
	}
	return b.String()
}

// parseWebURL accepts only absolute http(s) URLs with a host.
func parseWebURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("want an absolute http(s) URL")
	}
	return u, nil
}
