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
// a title are skipped with a debug log.
func (f *feed) Fetch(ctx context.Context) ([]article.Article, error) {
	ctx, cancel := withTimeout(ctx, f.spec.Timeout)
	defer cancel()

	where := f.spec.URL
	var body []byte
	var contentType, base string
	if f.spec.URL != "" {
		resp, err := f.env.Fetcher.Get(ctx, f.spec.URL)
		if err != nil {
			return nil, fmt.Errorf("feed %s: %w", f.spec.Name, err) // names the URL
		}
		body, contentType, base = resp.Body, resp.ContentType, resp.URL
	} else {
		where = f.spec.Path
		b, err := readFile(f.spec.Path, fetch.DefaultMaxBytes)
		if err != nil {
			return nil, fmt.Errorf("feed %s: %s: %w", f.spec.Name, where, err)
		}
		body = fetch.ToUTF8(b, "")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("feed %s: %s: %w", f.spec.Name, where, err)
	}

	parsed, err := gofeed.NewParser().Parse(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("feed %s: %s: %w", f.spec.Name, where, explainParse(err, body, contentType))
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
	cands = append(cands, article.FirstImage(it.Content), article.FirstImage(it.Description))
	for _, c := range cands {
		if img := article.WebURL(article.Resolve(base, c)); img != "" {
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
		return fmt.Errorf("not a feed: got an HTML page (%w)", err)
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
