package source

import (
	"bytes"
	"strings"

	"github.com/mmcdole/gofeed"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/digest/digest/internal/article"
)

// feedTypes are the <link type> values of an advertised feed.
var feedTypes = map[string]bool{
	"application/rss+xml":   true,
	"application/atom+xml":  true,
	"application/feed+json": true,
	"application/json":      false, // too vague to follow
}

// discover returns the absolute URL of the feed an HTML page advertises
// with <link rel="alternate" type="application/rss+xml|atom+xml|feed+json">
// (the first one, resolved against <base href> or pageURL), or "" when body
// is a feed itself, not HTML, or advertises none.
func discover(body []byte, contentType, pageURL string) string {
	if !looksHTML(body, contentType) ||
		gofeed.DetectFeedType(bytes.NewReader(body)) != gofeed.FeedTypeUnknown {
		return ""
	}
	base := pageURL
	z := html.NewTokenizer(bytes.NewReader(body))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			t := z.Token()
			switch t.DataAtom {
			case atom.Body:
				return "" // feeds are advertised in the head
			case atom.Base:
				if h := attr(t, "href"); h != "" {
					base = article.Resolve(pageURL, h)
				}
			case atom.Link:
				typ, _, _ := strings.Cut(strings.ToLower(attr(t, "type")), ";")
				if !hasToken(attr(t, "rel"), "alternate") || !feedTypes[strings.TrimSpace(typ)] {
					continue
				}
				if u := article.WebURL(article.Resolve(base, attr(t, "href"))); u != "" {
					return u
				}
			}
		}
	}
}

// attr is the value of t's attribute key (lower case), or "".
func attr(t html.Token, key string) string {
	for _, a := range t.Attr {
		if a.Key == key {
			return strings.TrimSpace(a.Val)
		}
	}
	return ""
}

// hasToken reports whether the space-separated list has tok, ignoring case.
func hasToken(list, tok string) bool {
	for _, f := range strings.Fields(list) {
		if strings.EqualFold(f, tok) {
			return true
		}
	}
	return false
}
