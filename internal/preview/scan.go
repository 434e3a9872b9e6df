package preview

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Image is one <img> of the HTML part.
type Image struct {
	Src string
	// Alt is the alt text; HasAlt is false when the attribute is missing
	// (screen readers then read the file name), true with an empty Alt for
	// an image marked decorative.
	Alt    string
	HasAlt bool
}

// Scan is what the preview checks in an HTML part.
type Scan struct {
	Links  []string // every distinct href, in order of first appearance
	Images []Image
	// InboxText is what an inbox shows after the subject: the start of the
	// body's text, hidden preheader included, without the invisible
	// padding that follows it.
	InboxText string
}

// inboxRunes is about what the widest inbox views show of a preheader.
const inboxRunes = 140

// ScanHTML reads the links, images and inbox preview text of an HTML part.
func ScanHTML(src string) Scan {
	var s Scan
	seen := map[string]bool{}
	var text strings.Builder
	z := html.NewTokenizer(strings.NewReader(src))
	inBody, skip := false, 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			s.InboxText = inboxText(text.String())
			return s
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			switch tok.DataAtom {
			case atom.Body:
				inBody = true
			case atom.Style, atom.Script, atom.Title, atom.Head:
				if tt == html.StartTagToken {
					skip++
				}
			case atom.A:
				if href, ok := attr(tok, "href"); ok && !seen[href] {
					seen[href] = true
					s.Links = append(s.Links, href)
				}
			case atom.Img:
				img := Image{}
				img.Src, _ = attr(tok, "src")
				img.Alt, img.HasAlt = attr(tok, "alt")
				s.Images = append(s.Images, img)
			}
		case html.EndTagToken:
			switch z.Token().DataAtom {
			case atom.Style, atom.Script, atom.Title, atom.Head:
				if skip > 0 {
					skip--
				}
			}
		case html.TextToken:
			if inBody && skip == 0 && utf8.RuneCountInString(text.String()) < 4*inboxRunes {
				text.Write(z.Text())
				text.WriteByte(' ')
			}
		}
	}
}

func attr(t html.Token, name string) (string, bool) {
	for _, a := range t.Attr {
		if a.Key == name {
			return strings.TrimSpace(a.Val), true
		}
	}
	return "", false
}

// inboxText is the start of a body's text as an inbox shows it: white
// space collapsed, cut at inboxRunes. The invisible characters that
// templates put after a preheader count, as they do in an inbox (that is
// their purpose: to keep the body's text out of the preview), and are then
// removed.
func inboxText(s string) string {
	s = strings.Join(strings.Fields(s), " ") // U+034F and U+200C are not space: they stay
	if utf8.RuneCountInString(s) > inboxRunes {
		s = string([]rune(s)[:inboxRunes])
	}
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\u034f', '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad':
			return -1
		case '\u00a0':
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// MissingAlt returns the images that have no alt attribute at all.
func (s Scan) MissingAlt() []Image {
	var out []Image
	for _, img := range s.Images {
		if !img.HasAlt {
			out = append(out, img)
		}
	}
	return out
}
