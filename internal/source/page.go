package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/fetch"
)

// Limits of Spec.FetchTeasers: how many article pages one page source
// fetches at a time for their descriptions, and how long it spends on them
// in all (the source's own Timeout, if shorter, wins). Teasers not fetched
// by then stay empty.
const (
	DefaultTeaserFetches = 4
	DefaultTeaserBudget  = 30 * time.Second
)

// page is a web page (a listing, or a related-stories block) read with CSS
// selectors.
type page struct {
	spec Spec
	env  Env
	sel  pageMatchers
	// teaserBudget is DefaultTeaserBudget (shorter in tests).
	teaserBudget time.Duration
}

// pageMatchers are the compiled selectors; a nil one means the default.
type pageMatchers struct {
	item, title, link, teaser, date, image goquery.Matcher
	// Defaults, compiled once per source.
	headings, anchor, time, img goquery.Matcher
}

func newPage(spec Spec, env Env) (*page, error) {
	if strings.TrimSpace(spec.Selectors.Item) == "" {
		return nil, fmt.Errorf("source %s: a page source needs selectors.item", spec.Name)
	}
	var m pageMatchers
	for _, f := range []struct {
		key string
		sel string
		dst *goquery.Matcher
	}{
		{"item", spec.Selectors.Item, &m.item},
		{"title", spec.Selectors.Title, &m.title},
		{"link", spec.Selectors.Link, &m.link},
		{"teaser", spec.Selectors.Teaser, &m.teaser},
		{"date", spec.Selectors.Date, &m.date},
		{"image", spec.Selectors.Image, &m.image},
	} {
		if strings.TrimSpace(f.sel) == "" {
			continue
		}
		c, err := cascadia.Compile(f.sel)
		if err != nil {
			return nil, fmt.Errorf("source %s: selectors.%s: invalid CSS selector %q: %w", spec.Name, f.key, f.sel, err)
		}
		*f.dst = c
	}
	m.headings = cascadia.MustCompile("h1, h2, h3, h4, h5, h6")
	m.anchor = cascadia.MustCompile("a[href]")
	m.time = cascadia.MustCompile("time")
	m.img = cascadia.MustCompile("img")
	return &page{spec: spec, env: env, sel: m, teaserBudget: DefaultTeaserBudget}, nil
}

func (p *page) Name() string { return p.spec.Name }

// Fetch downloads the page and makes an article of every element that
// selectors.item matches and that has a title or a link. A page where the
// item selector matches nothing fails (its layout has probably changed).
func (p *page) Fetch(ctx context.Context) ([]article.Article, error) {
	arts, _, err := p.FetchReport(ctx)
	return arts, err
}

// FetchReport implements Reporter.
func (p *page) FetchReport(ctx context.Context) ([]article.Article, Report, error) {
	start := time.Now()
	ctx, cancel := withTimeout(ctx, p.spec.Timeout)
	defer cancel()
	arts, rep, err := p.fetch(ctx)
	rep.Items, rep.Took = len(arts), time.Since(start)
	return arts, rep, err
}

func (p *page) fetch(ctx context.Context) ([]article.Article, Report, error) {
	if p.spec.Path != "" {
		return p.readPath(ctx)
	}
	doc, err := p.env.load(ctx, p.spec.URL)
	if err != nil {
		return nil, Report{Status: StatusError}, newError("page", p.spec.Name, err)
	}
	arts, err := p.parse(doc)
	if err != nil {
		stale, ferr := p.env.fallback(doc, err)
		if ferr != nil {
			return nil, Report{Status: StatusError, URL: doc.url}, newError("page", p.spec.Name, err)
		}
		doc = stale
		if arts, err = p.parse(doc); err != nil {
			return nil, Report{Status: StatusError, URL: doc.url}, newError("page", p.spec.Name, err)
		}
	}
	p.env.keep(ctx, doc)
	if p.spec.FetchTeasers {
		p.fetchTeasers(ctx, arts)
	}
	rep := Report{Status: doc.status(), URL: doc.url, FetchedAt: doc.fetchedAt}
	if doc.stale != nil {
		return arts, rep, p.env.staleError("page", p.spec.Name, doc)
	}
	return arts, rep, nil
}

// readPath reads a page saved as a local file (examples, tests, pages
// fetched by another tool); its links should be absolute or rely on <base>.
func (p *page) readPath(ctx context.Context) ([]article.Article, Report, error) {
	body, err := os.ReadFile(p.spec.Path)
	if err != nil {
		return nil, Report{Status: StatusError}, newError("page", p.spec.Name, err)
	}
	arts, err := p.parse(document{key: p.spec.Path, body: fetch.ToUTF8(body, "text/html")})
	if err != nil {
		return nil, Report{Status: StatusError}, newError("page", p.spec.Name, err)
	}
	if p.spec.FetchTeasers {
		p.fetchTeasers(ctx, arts)
	}
	return arts, Report{Status: StatusOK}, nil
}

// parse makes the articles of a page; errors name its URL.
func (p *page) parse(doc document) ([]article.Article, error) {
	gq, err := goquery.NewDocumentFromReader(bytes.NewReader(doc.body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", doc.key, err)
	}
	base := doc.url
	if h, ok := gq.Find("base[href]").First().Attr("href"); ok {
		base = article.Resolve(base, h)
	}
	items := gq.FindMatcher(p.sel.item)
	if items.Length() == 0 {
		return nil, fmt.Errorf("%s: selectors.item %q matches nothing", doc.key, p.spec.Selectors.Item)
	}
	var arts []article.Article
	seen := map[string]bool{}
	items.Each(func(i int, s *goquery.Selection) {
		a, ok := p.item(s, base)
		if !ok {
			p.env.Logger.Debug("page item skipped: no title and no link", "item", i, "url", doc.key)
			return
		}
		if seen[a.ID] {
			return
		}
		seen[a.ID] = true
		arts = append(arts, a)
	})
	if len(arts) == 0 {
		return nil, fmt.Errorf("%s: none of the %d elements matched by selectors.item has a title or a link",
			doc.key, items.Length())
	}
	return arts, nil
}

// item makes an article of one matched element.
func (p *page) item(s *goquery.Selection, base string) (article.Article, bool) {
	m := p.sel
	titleEl := within(s, m.title)
	if m.title == nil {
		titleEl = within(s, m.headings)
	}
	var linkEl *goquery.Selection
	switch {
	case m.link != nil:
		if l := within(s, m.link); l.Length() > 0 {
			linkEl = hrefOf(l, m.anchor)
		}
	case titleEl.Length() > 0 && hrefOf(titleEl, m.anchor).Length() > 0:
		linkEl = hrefOf(titleEl, m.anchor)
	default:
		linkEl = within(s, m.anchor)
	}
	link := ""
	if linkEl != nil && linkEl.Length() > 0 {
		h, _ := linkEl.Attr("href")
		link = article.WebURL(article.Resolve(base, h))
	}
	title := htmlText(titleEl)
	if title == "" && linkEl != nil {
		title = htmlText(linkEl)
		if title == "" {
			t, _ := linkEl.Attr("title")
			title = article.Clean(t)
		}
	}
	if title == "" && link == "" {
		return article.Article{}, false
	}
	a := article.Article{
		Title:   title,
		Link:    link,
		Source:  p.spec.Name,
		Section: p.spec.Section,
		Image:   p.image(s, base),
	}
	if m.teaser != nil {
		if t := within(s, m.teaser); t.Length() > 0 {
			h, _ := t.Html()
			a.Teaser = p.env.teaser(h)
		}
	}
	dateEl := within(s, m.time)
	if m.date != nil {
		dateEl = within(s, m.date)
	}
	if dateEl.Length() > 0 {
		for _, v := range []string{attrOf(dateEl, "datetime"), attrOf(dateEl, "content"), dateEl.Text()} {
			if t, ok := parsePageDate(v, p.env.Location); ok {
				a.Published = t.UTC()
				break
			}
		}
	}
	if link != "" {
		a.ID = article.Canonical(link)
	} else {
		sum := sha256.Sum256([]byte(title))
		a.ID = "page:" + p.spec.Name + "/" + hex.EncodeToString(sum[:8])
	}
	return a, true
}

// image is the item's picture: from selectors.image, else its first img.
func (p *page) image(s *goquery.Selection, base string) string {
	el := within(s, p.sel.img)
	if p.sel.image != nil {
		el = within(s, p.sel.image)
	}
	if el.Length() == 0 {
		return ""
	}
	cands := []string{attrOf(el, "src"), attrOf(el, "data-src"), firstSrcset(attrOf(el, "srcset")),
		attrOf(el, "content"), attrOf(el, "href")}
	if el.Length() > 0 && !el.Is("img") {
		if img := el.FindMatcher(p.sel.img).First(); img.Length() > 0 {
			cands = append(cands, attrOf(img, "src"), attrOf(img, "data-src"), firstSrcset(attrOf(img, "srcset")))
		}
	}
	for _, c := range cands {
		if strings.HasPrefix(strings.TrimSpace(c), "data:") {
			continue // placeholders of lazy loading
		}
		if u := article.WebURL(article.Resolve(base, c)); u != "" {
			return u
		}
	}
	return ""
}

// within is the first element under s (or s itself) that m matches; empty
// when m is nil or nothing matches.
func within(s *goquery.Selection, m goquery.Matcher) *goquery.Selection {
	if m == nil {
		return s.Slice(0, 0)
	}
	if s.IsMatcher(m) {
		return s.First()
	}
	return s.FindMatcher(m).First()
}

// hrefOf is el when it has an href, else its first a[href], else the link
// that encloses it; possibly empty.
func hrefOf(el *goquery.Selection, anchor goquery.Matcher) *goquery.Selection {
	if _, ok := el.Attr("href"); ok {
		return el
	}
	if a := el.FindMatcher(anchor).First(); a.Length() > 0 {
		return a
	}
	return el.ClosestMatcher(anchor)
}

// htmlText is the plain text of an element (block boundaries become spaces,
// entities decoded).
func htmlText(s *goquery.Selection) string {
	if s.Length() == 0 {
		return ""
	}
	h, err := s.Html()
	if err != nil {
		return article.Clean(s.Text())
	}
	return article.Clean(h)
}

func attrOf(s *goquery.Selection, key string) string {
	v, _ := s.Attr(key)
	return strings.TrimSpace(v)
}

// firstSrcset is the URL of a srcset's first candidate.
func firstSrcset(srcset string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(srcset), ",")
	u, _, _ := strings.Cut(strings.TrimSpace(first), " ")
	return u
}

// fetchTeasers fills the missing teasers from the articles' own pages, a
// few at a time. A page that fails leaves its teaser empty (logged).
func (p *page) fetchTeasers(ctx context.Context, arts []article.Article) {
	ctx, cancel := context.WithTimeout(ctx, p.teaserBudget)
	defer cancel()
	sem := make(chan struct{}, DefaultTeaserFetches)
	var wg sync.WaitGroup
	for i := range arts {
		if arts[i].Teaser != "" || arts[i].Link == "" {
			continue
		}
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			arts[i].Teaser = p.env.teaser(p.description(ctx, arts[i].Link))
		})
	}
	wg.Wait()
}

// description is the og:description, twitter:description or description
// meta of the page at link, through the cache: a description is fetched
// once per link (an empty one included).
func (p *page) description(ctx context.Context, link string) string {
	key := DescriptionKey(link)
	if p.env.Cache != nil {
		c, ok, err := p.env.Cache.GetDocument(ctx, key)
		if err != nil {
			p.env.Logger.Warn("cache read failed", "key", key, "err", err)
		} else if ok {
			return string(c.Body)
		}
	}
	resp, err := p.env.Fetcher.Get(ctx, link)
	if err != nil {
		p.env.Logger.Debug("teaser page failed", "err", err)
		return ""
	}
	d := metaDescription(resp.Body)
	if p.env.Cache != nil {
		err := p.env.Cache.PutDocument(ctx, key, Cached{URL: resp.URL, Body: []byte(d), FetchedAt: p.env.Now()})
		if err != nil {
			p.env.Logger.Warn("cache write failed", "key", key, "err", err)
		}
	}
	return d
}

// metaDescription is the best description meta in an HTML page's head.
func metaDescription(body []byte) string {
	rank := map[string]int{"og:description": 3, "twitter:description": 2, "description": 1}
	best, bestRank := "", 0
	z := html.NewTokenizer(bytes.NewReader(body))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return best
		case html.StartTagToken, html.SelfClosingTagToken:
			t := z.Token()
			switch t.DataAtom {
			case atom.Body:
				return best
			case atom.Meta:
				name := strings.ToLower(attr(t, "property"))
				if rank[name] == 0 {
					name = strings.ToLower(attr(t, "name"))
				}
				if r := rank[name]; r > bestRank {
					if c := attr(t, "content"); c != "" {
						best, bestRank = c, r
					}
				}
			}
		}
	}
}
