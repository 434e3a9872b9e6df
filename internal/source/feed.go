package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/fetch"
)

// feed is an RSS 2.0, Atom 1.0 or JSON Feed 1.1 source, read from a URL or
// from a local file.
type feed struct {
	spec Spec
	env  Env
}

func (f *feed) Name() string { return f.spec.Name }

// Fetch downloads (or reads) and parses the feed. A document that is not a
// feed, or does not parse, fails the whole source; items without a link and
// a title are skipped with a debug log. An HTML page given as the URL is
// searched for the feed it advertises, which is then fetched (one hop).
func (f *feed) Fetch(ctx context.Context) ([]article.Article, error) {
	arts, _, err := f.FetchReport(ctx)
	return arts, err
}

// FetchReport implements Reporter.
func (f *feed) FetchReport(ctx context.Context) ([]article.Article, Report, error) {
	start := time.Now()
	ctx, cancel := withTimeout(ctx, f.spec.Timeout)
	defer cancel()
	var arts []article.Article
	var rep Report
	var err error
	if f.spec.URL != "" {
		arts, rep, err = f.fetchURL(ctx)
	} else {
		arts, err = f.readPath(ctx)
		rep.Status = statusOf(err)
	}
	rep.Items, rep.Took = len(arts), time.Since(start)
	return arts, rep, err
}

// readPath reads and parses a local feed file.
func (f *feed) readPath(ctx context.Context) ([]article.Article, error) {
	where := f.spec.Path
	b, err := readFile(where, fetch.DefaultMaxBytes)
	if err != nil {
		return nil, newError("feed", f.spec.Name, fmt.Errorf("%s: %w", where, err))
	}
	if err := ctx.Err(); err != nil {
		return nil, newError("feed", f.spec.Name, fmt.Errorf("%s: %w", where, err))
	}
	arts, err := f.parse(fetch.ToUTF8(b, ""), "", "", where)
	if err != nil {
		return nil, newError("feed", f.spec.Name, err)
	}
	return arts, nil
}

// fetchURL fetches (conditionally, through the cache) and parses the feed,
// after one hop of discovery when the URL gives an HTML page.
func (f *feed) fetchURL(ctx context.Context) ([]article.Article, Report, error) {
	fail := func(err error) ([]article.Article, Report, error) {
		return nil, Report{Status: StatusError}, newError("feed", f.spec.Name, err)
	}
	doc, err := f.env.load(ctx, f.spec.URL)
	if err != nil {
		return fail(err) // names the URL
	}
	if alt := discover(doc.body, doc.contentType, doc.url); alt != "" {
		f.env.Logger.Debug("feed discovered", "page", doc.url, "feed", alt)
		f.env.keep(ctx, doc)
		pageStale := doc.stale
		doc, err = f.env.load(ctx, alt)
		if err != nil {
			return fail(fmt.Errorf("the feed advertised by %s: %w", f.spec.URL, err))
		}
		if doc.stale == nil && pageStale != nil {
			// Fresh feed, but the page that names it failed: say so.
			return f.finish(ctx, doc, pageStale)
		}
	}
	return f.finish(ctx, doc, nil)
}

// finish parses doc, falling back to the last good copy when a fresh body
// is bad, and caches what parsed. pageStale is the failure of a discovery
// page whose last good copy was used.
func (f *feed) finish(ctx context.Context, doc document, pageStale error) ([]article.Article, Report, error) {
	arts, err := f.parse(doc.body, doc.contentType, doc.url, doc.key)
	if err != nil {
		stale, ferr := f.env.fallback(doc, err)
		if ferr != nil {
			return nil, Report{Status: StatusError, URL: doc.url}, newError("feed", f.spec.Name, err)
		}
		doc = stale
		if arts, err = f.parse(doc.body, doc.contentType, doc.url, doc.key); err != nil {
			return nil, Report{Status: StatusError, URL: doc.url}, newError("feed", f.spec.Name, err)
		}
	}
	f.env.keep(ctx, doc)
	rep := Report{Status: doc.status(), URL: doc.url, FetchedAt: doc.fetchedAt}
	switch {
	case doc.stale != nil:
		return arts, rep, f.env.staleError("feed", f.spec.Name, doc)
	case pageStale != nil:
		rep.Status = StatusStale
		return arts, rep, newError("feed", f.spec.Name, fmt.Errorf("%w (for the page that advertises the feed): %w", ErrStale, pageStale))
	}
	return arts, rep, nil
}

// parse turns a feed document into articles; where names it in errors.
func (f *feed) parse(body []byte, contentType, base, where string) ([]article.Article, error) {
	parsed, err := gofeed.NewParser().Parse(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, explainParse(err, body, contentType))
	}
	if parsed.Link != "" {
		base = article.Resolve(base, parsed.Link)
	}
	arts := make([]article.Article, 0, len(parsed.Items))
	for i, it := range parsed.Items {
		a, ok := f.item(it, base)
		if !ok {
			f.env.Logger.Debug("feed item skipped: no title and no link", "item", i, "where", where)
			continue
		}
		arts = append(arts, a)
	}
	return arts, nil
}

// item turns one feed item into an article; ok is false for an item with
// neither a title nor a link.
func (f *feed) item(it *gofeed.Item, base string) (article.Article, bool) {
	if it == nil {
		return article.Article{}, false
	}
	link := itemLink(it, base)
	title := article.Clean(it.Title)
	if link == "" && title == "" {
		return article.Article{}, false
	}
	a := article.Article{
		Title:   title,
		Link:    link,
		Source:  f.spec.Name,
		Section: f.spec.Section,
		Image:   itemImage(it, base),
		Tags:    tags(it.Categories),
	}
	switch {
	case strings.TrimSpace(it.GUID) != "":
		a.ID = strings.TrimSpace(it.GUID)
	case link != "":
		a.ID = article.Canonical(link)
	default: // a title-only item: stable as long as its title is
		sum := sha256.Sum256([]byte(title))
		a.ID = "feed:" + f.spec.Name + "/" + hex.EncodeToString(sum[:8])
	}
	switch {
	case it.PublishedParsed != nil:
		a.Published = it.PublishedParsed.UTC()
	case it.UpdatedParsed != nil:
		a.Published = it.UpdatedParsed.UTC()
	}
	if it.PublishedParsed != nil && it.UpdatedParsed != nil && it.UpdatedParsed.After(*it.PublishedParsed) {
		a.Updated = it.UpdatedParsed.UTC()
	}
	for _, h := range []string{it.Description, it.Content} {
		if t := f.env.teaser(h); t != "" {
			a.Teaser = t
			break
		}
	}
	return a, true
}

// itemLink is the item's first usable link, made absolute.
func itemLink(it *gofeed.Item, base string) string {
	cands := append([]string{it.Link}, it.Links...)
	for _, c := range cands {
		if l := article.WebURL(article.Resolve(base, c)); l != "" {
			return l
		}
	}
	// RSS items often carry their permalink only as a GUID.
	if strings.HasPrefix(it.GUID, "http://") || strings.HasPrefix(it.GUID, "https://") {
		return article.WebURL(it.GUID)
	}
	return ""
}

// itemImage looks for a picture in, by preference: the item's image, an
// image enclosure, Media RSS, the first <img> of the content or description.
func itemImage(it *gofeed.Item, base string) string {
	var cands []string
	if it.Image != nil {
		cands = append(cands, it.Image.URL)
	}
	for _, e := range it.Enclosures {
		if e != nil && strings.HasPrefix(strings.ToLower(e.Type), "image/") {
			cands = append(cands, e.URL)
		}
	}
	if media := it.Extensions["media"]; media != nil {
		for _, name := range []string{"thumbnail", "content"} {
			for _, m := range media[name] {
				medium, typ := m.Attrs["medium"], strings.ToLower(m.Attrs["type"])
				if name == "thumbnail" || medium == "image" || strings.HasPrefix(typ, "image/") {
					cands = append(cands, m.Attrs["url"])
				}
				for _, t := range m.Children["thumbnail"] {
					cands = append(cands, t.Attrs["url"])
				}
			}
		}
	}
	for _, c := range cands {
		if img := article.WebURL(article.Resolve(base, c)); img != "" {
			return img
		}
	}
	// Only now tokenize the HTML: most feeds that have images say so above.
	for _, h := range []string{it.Content, it.Description} {
		if img := article.WebURL(article.Resolve(base, article.FirstImage(h))); img != "" {
			return img
		}
	}
	return ""
}

// tags cleans categories, dropping empty and repeated ones.
func tags(cats []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range cats {
		c = article.Clean(c)
		if c == "" || seen[strings.ToLower(c)] {
			continue
		}
		seen[strings.ToLower(c)] = true
		out = append(out, c)
	}
	return out
}

// explainParse turns gofeed's reasons into ones a user can act on.
func explainParse(err error, body []byte, contentType string) error {
	if !errors.Is(err, gofeed.ErrFeedTypeNotDetected) {
		return err
	}
	if looksHTML(body, contentType) {
		return fmt.Errorf("not a feed: got an HTML page that advertises no feed (%w)", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("empty document (%w)", err)
	}
	return fmt.Errorf("not a feed: neither RSS, Atom nor JSON Feed (%w)", err)
}

func looksHTML(body []byte, contentType string) bool {
	if strings.Contains(strings.ToLower(contentType), "html") {
		return true
	}
	start := bytes.ToLower(bytes.TrimSpace(body[:min(len(body), 512)]))
	return bytes.HasPrefix(start, []byte("<!doctype html")) || bytes.HasPrefix(start, []byte("<html"))
}

// readFile reads at most limit bytes of a local file, failing beyond. Its
// errors do not name the file: callers do.
func readFile(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: over the %d MiB cap", fetch.ErrTooLarge, limit>>20)
	}
	return b, nil
}
