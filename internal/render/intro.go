package render

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/digest/digest/internal/article"
)

// Intro renders the editor's introduction from Markdown (CommonMark with the
// GFM extensions and typographic quotes and dashes) to HTML that is safe to
// embed: raw HTML in the Markdown is dropped by goldmark and the result goes
// through the article sanitizer's allow-list. The result is meant for
// Renderer.Render's intro argument; blank input gives "".
func Intro(markdown []byte) (string, error) {
	if len(bytes.TrimSpace(markdown)) == 0 {
		return "", nil
	}
	md := goldmark.New(goldmark.WithExtensions(extension.GFM, extension.Typographer))
	var buf bytes.Buffer
	if err := md.Convert(markdown, &buf); err != nil {
		return "", fmt.Errorf("intro: %w", err)
	}
	return strings.TrimSpace(article.NewSanitizer().HTML(buf.String())), nil
}

// introText turns the intro's HTML into plain text wrapped at width columns:
// paragraphs separated by blank lines, list items marked "- " or "1. " with a
// hanging indent, quotes marked "> ", links followed by their URL in angle
// brackets, preformatted text kept as it is. A URL is never broken.
func introText(s string, width int) string {
	nodes, err := html.ParseFragment(strings.NewReader(s), &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body})
	if err != nil { // the tokenizer fails only on reader errors
		return Wrap(width, article.PlainText(s))
	}
	t := &textWriter{width: width}
	for _, n := range nodes {
		t.node(n, "", "")
	}
	t.flush()
	return strings.Join(t.paras, "\n\n")
}

type textWriter struct {
	width int
	paras []string
	// The paragraph being collected: its text and its line prefixes.
	inline      strings.Builder
	first, rest string
	tight       bool // joins the previous paragraph without a blank line (list items)
	// pending: first is a list item's mark not yet written; a paragraph
	// that opens inside the item must start with it.
	pending bool
}

func (t *textWriter) flush() {
	text := strings.TrimSpace(t.inline.String())
	t.inline.Reset()
	if text == "" {
		return
	}
	p := wrapPrefixed(t.width, t.first, t.rest, text)
	if t.tight && len(t.paras) > 0 {
		t.paras[len(t.paras)-1] += "\n" + p
	} else {
		t.paras = append(t.paras, p)
	}
	t.tight, t.pending = false, false
	t.first = t.rest
}

// block starts a new paragraph whose lines carry first / rest prefixes.
func (t *textWriter) block(first, rest string, tight bool) {
	t.flush()
	if t.pending {
		return
	}
	t.first, t.rest, t.tight = first, rest, tight
}

func (t *textWriter) node(n *html.Node, first, rest string) {
	switch n.Type {
	case html.TextNode:
		// Line breaks in the source are soft: white space collapses to a
		// space; <br> alone makes a line break.
		t.inline.WriteString(collapseSpace(n.Data))
	case html.ElementNode:
		t.element(n, first, rest)
	}
}

// element writes one element; first and rest are the prefixes of the
// lines of the paragraph it is in.
func (t *textWriter) element(n *html.Node, first, rest string) {
	switch n.DataAtom {
	case atom.Script, atom.Style, atom.Head, atom.Title, atom.Template, atom.Input:
	case atom.Br:
		t.inline.WriteString("\n")
	case atom.Img:
		t.inline.WriteString(attr(n, "alt"))
	case atom.Hr:
		t.block(first, rest, false)
		t.inline.WriteString("----")
		t.block(first, rest, false)
	case atom.Pre:
		t.pre(n, first, rest)
	case atom.Ul, atom.Ol:
		t.list(n, first, rest)
	case atom.Blockquote:
		t.block(rest+"> ", rest+"> ", false)
		t.children(n, rest+"> ", rest+"> ")
		t.block(first, rest, false)
	case atom.Tr:
		t.row(n, first, rest)
	case atom.A:
		t.link(n, first, rest)
	default:
		blockish := !inlineElement(n.DataAtom)
		if blockish {
			t.block(first, rest, false)
		}
		t.children(n, first, rest)
		if blockish {
			t.block(first, rest, false)
		}
	}
}

func (t *textWriter) children(n *html.Node, first, rest string) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		t.node(c, first, rest)
	}
}

// pre keeps preformatted text as it is, indented by four spaces.
func (t *textWriter) pre(n *html.Node, first, rest string) {
	t.block(first, rest, false)
	var b strings.Builder
	collectText(n, &b)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(rest+"    "+lines[i], " ")
	}
	t.paras = append(t.paras, strings.Join(lines, "\n"))
}

// list writes each item with its mark ("- ", or "3. " counting from the
// list's start) and a hanging indent; a list inside an item stays tight.
func (t *textWriter) list(n *html.Node, first, rest string) {
	t.flush()
	i := 0
	if v, err := strconv.Atoi(attr(n, "start")); err == nil {
		i = v - 1
	}
	tight := n.Parent != nil && n.Parent.DataAtom == atom.Li
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.DataAtom != atom.Li {
			continue
		}
		i++
		mark := "- "
		if n.DataAtom == atom.Ol {
			mark = strconv.Itoa(i) + ". "
		}
		indent := rest + strings.Repeat(" ", len(mark))
		t.block(rest+mark, indent, tight)
		t.pending = true
		t.children(c, indent, indent)
		t.flush()
		t.pending = false
		tight = true
	}
	t.first, t.rest, t.tight = first, rest, false
}

// row writes a table row as its cells' text separated by " | ".
func (t *textWriter) row(n *html.Node, first, rest string) {
	t.block(first, rest, t.tightRows(n))
	sep := ""
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.DataAtom == atom.Td || c.DataAtom == atom.Th {
			t.inline.WriteString(sep)
			var b strings.Builder
			collectText(c, &b)
			t.inline.WriteString(strings.Join(fields(b.String()), " "))
			sep = " | "
		}
	}
	t.flush()
}

// link writes the link's text followed by its URL in angle brackets,
// unless the text already is the URL (or the address of a mailto:).
func (t *textWriter) link(n *html.Node, first, rest string) {
	var b strings.Builder
	collectText(n, &b)
	t.children(n, first, rest)
	href := attr(n, "href")
	label := strings.TrimSpace(b.String())
	if href != "" && href != label && strings.TrimPrefix(href, "mailto:") != label {
		t.inline.WriteString(" <" + href + ">")
	}
}

// tightRows keeps the rows of a table together: every row but the first
// follows its predecessor without a blank line.
func (t *textWriter) tightRows(tr *html.Node) bool {
	for p := tr.PrevSibling; p != nil; p = p.PrevSibling {
		if p.DataAtom == atom.Tr {
			return true
		}
	}
	// The first row of a tbody that follows a thead.
	if tr.Parent != nil && tr.Parent.DataAtom == atom.Tbody {
		for p := tr.Parent.PrevSibling; p != nil; p = p.PrevSibling {
			if p.DataAtom == atom.Thead {
				return true
			}
		}
	}
	return false
}

// inlineElement tells the elements that stay within a paragraph's text.
func inlineElement(a atom.Atom) bool {
	switch a {
	case atom.A, atom.Abbr, atom.B, atom.Cite, atom.Code, atom.Del, atom.Em,
		atom.I, atom.Ins, atom.Kbd, atom.Mark, atom.Q, atom.S, atom.Small,
		atom.Span, atom.Strong, atom.Sub, atom.Sup, atom.Time, atom.U:
		return true
	}
	return false
}

func collapseSpace(s string) string {
	f := fields(s)
	if len(f) == 0 {
		if s == "" {
			return ""
		}
		return " "
	}
	out := strings.Join(f, " ")
	if isSpace(s[0]) {
		out = " " + out
	}
	if isSpace(s[len(s)-1]) {
		out += " "
	}
	return out
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

func collectText(n *html.Node, b *strings.Builder) {
	if n.Type == html.TextNode {
		b.WriteString(n.Data)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		collectText(c, b)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// wrapPrefixed wraps text at width columns, the first line starting with
// first and the others with rest. Hard line breaks in text are kept.
func wrapPrefixed(width int, first, rest, text string) string {
	var lines []string
	for i, line := range strings.Split(text, "\n") {
		prefix := rest
		if i == 0 {
			prefix = first
		}
		w := Wrap(width-len(prefix), line)
		for j, l := range strings.Split(w, "\n") {
			if i > 0 || j > 0 {
				prefix = rest
			}
			lines = append(lines, strings.TrimRight(prefix+l, " "))
		}
	}
	return strings.Join(lines, "\n")
}
