package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	texttemplate "text/template"

	"github.com/digest/digest/internal/mail"
)

//go:embed templates
var templateFS embed.FS

// pageStyle is the one style sheet, inline in every page and allowed by
// its hash in the Content-Security-Policy.
const pageStyle = `body{margin:0;font:17px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1a1a1a;background:#fafafa}` +
	`main{max-width:34rem;margin:2rem auto;padding:0 1rem}` +
	`h1{font-size:1.6rem;line-height:1.25;margin:.2rem 0 1rem}h2{font-size:1.2rem;margin-top:2rem}` +
	`.list{color:#555;margin:0;font-size:.95rem}.hint{color:#555;font-size:.9rem}` +
	`.field{margin:1rem 0}label{display:block;font-weight:600;margin-bottom:.25rem}` +
	`.check{display:flex;gap:.5rem;align-items:center;margin:.3rem 0}.check label{display:inline;font-weight:400;margin:0}` +
	`input[type=email],input[type=text]{box-sizing:border-box;width:100%;font:inherit;padding:.5rem;border:1px solid #767676;border-radius:4px;background:#fff;color:#1a1a1a}` +
	`input[type=checkbox]{width:1.2rem;height:1.2rem}` +
	`fieldset{border:1px solid #c4c4c4;border-radius:4px;margin:1rem 0;padding:.5rem 1rem}legend{font-weight:600;padding:0 .3rem}` +
	`button{font:inherit;padding:.55rem 1.2rem;border:2px solid #1f4e79;border-radius:4px;background:#1f4e79;color:#fff;cursor:pointer}` +
	`button.secondary{background:#fff;color:#8a1c1c;border-color:#8a1c1c}` +
	`:focus-visible{outline:3px solid #f5a623;outline-offset:2px}a{color:#1f4e79}` +
	`.error{border-left:4px solid #8a1c1c;padding:.4rem .8rem;background:#fdecec}` +
	`.note{border-left:4px solid #2e7d32;padding:.4rem .8rem;background:#edf7ee}` +
	`.hp{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}` +
	`@media (prefers-color-scheme:dark){body{background:#161616;color:#eee}.list,.hint{color:#bbb}a{color:#9cc8f0}` +
	`input[type=email],input[type=text]{background:#222;color:#eee;border-color:#999}` +
	`.error{background:#3a1c1c}.note{background:#1c3a1e}button.secondary{background:#161616;color:#f19999;border-color:#f19999}}`

// pageNames are the page templates, each a "content" block in the layout.
var pageNames = []string{"message", "unsubscribe", "request", "subscribe", "confirm", "preferences"}

type pages struct{ t map[string]*template.Template }

func parsePages() (*pages, error) {
	base, err := template.ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: pages: %w", err)
	}
	p := &pages{t: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: page %s: %w", name, err)
		}
		p.t[name] = t
	}
	return p, nil
}

// view is what every page template gets; each uses the fields it needs.
type view struct {
	List, Title string
	Style       template.CSS
	Error       string   // a problem with what was sent, shown first
	Message     []string // paragraphs
	LinkURL     string
	LinkText    string

	Action      string // the form's action
	Email, Name string
	Status      string
	Topics      []topicBox
	FormToken   string
	PrefsURL    string
	DoubleOptIn bool
}

type topicBox struct {
	Key, Label string
	Checked    bool
}

// render writes page name with status code. It renders to a buffer
// first, so that a template error is a clean 500 and not half a page.
func (h *Handler) render(w http.ResponseWriter, code int, name string, v view) {
	v.List = h.opts.ListName
	v.Style = template.CSS(pageStyle)
	var b bytes.Buffer
	if err := h.pages.t[name].ExecuteTemplate(&b, "layout", v); err != nil {
		h.opts.Logger.Error("web: rendering page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

// message renders the message page.
func (h *Handler) message(w http.ResponseWriter, code int, title string, paragraphs ...string) {
	h.render(w, code, "message", view{Title: title, Message: paragraphs})
}

// mailTemplates are the text and HTML bodies of the notices.
type mailTemplates struct {
	text map[string]*texttemplate.Template
	html map[string]*template.Template
}

func parseMailTemplates() (*mailTemplates, error) {
	m := &mailTemplates{text: map[string]*texttemplate.Template{}, html: map[string]*template.Template{}}
	for _, kind := range []string{"confirm", "link"} {
		t, err := texttemplate.ParseFS(templateFS, "templates/mail/"+kind+".txt.tmpl")
		if err != nil {
			return nil, fmt.Errorf("web: mail %s: %w", kind, err)
		}
		m.text[kind] = t
		ht, err := template.ParseFS(templateFS, "templates/mail/"+kind+".html.tmpl")
		if err != nil {
			return nil, fmt.Errorf("web: mail %s: %w", kind, err)
		}
		m.html[kind] = ht
	}
	return m, nil
}

// mailData is what the notice templates get.
type mailData struct {
	List, Email, Name string
	URL, PrefsURL     string
}

// notice renders notice kind for d.
func (h *Handler) notice(kind, subject string, d mailData) (n mail.Notice, err error) {
	d.List = h.opts.ListName
	var text, html strings.Builder
	if err := h.mails.text[kind].Execute(&text, d); err != nil {
		return n, fmt.Errorf("web: mail %s: %w", kind, err)
	}
	if err := h.mails.html[kind].Execute(&html, d); err != nil {
		return n, fmt.Errorf("web: mail %s: %w", kind, err)
	}
	return mail.Notice{To: d.Email, Name: d.Name, Kind: kind, Subject: subject, Text: text.String(), HTML: html.String()}, nil
}
