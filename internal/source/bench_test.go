package source

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/mmcdole/gofeed"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/fetch"
)

// The build benchmark of issue 3: 50 feeds of 100 items, served on
// loopback, gathered 8 at a time. Run with
//
//	go test -run '^$' -bench 'Gather' -benchmem ./internal/source/
const (
	benchFeeds       = 50
	benchItems       = 100
	benchConcurrency = 8
)

// benchFeed is an RSS feed of n items with realistic descriptions: about
// 1.6 KB of HTML each (paragraphs, links, an image, entities, a script and
// an event handler to remove), ~190 KB per feed.
func benchFeed(feed, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>
<title>Feed %d</title><link>https://feed%d.example.org/</link><description>Bench feed</description>
`, feed, feed)
	para := `&lt;p&gt;Following a unanimous vote by the &lt;b&gt;United Nations&lt;/b&gt; Security Council, June 30 will be the final day of the mission &amp;mdash; succinctly known as &lt;a href="/minusma?utm_source=rss" onclick="track()"&gt;MINUSMA&lt;/a&gt;. The force at its height consisted of 13,289 military personnel and 1,920 police.&lt;/p&gt;`
	for i := range n {
		fmt.Fprintf(&b, `<item><title>Story %d of feed %d: &lt;em&gt;United Nations&lt;/em&gt; marks final day</title>
<link>https://feed%d.example.org/2024/06/story-%d?utm_source=rss</link><guid>feed%d-story-%d</guid>
<pubDate>Mon, 17 Jun 2024 %02d:%02d:00 +0000</pubDate><category>World</category>
<media:content url="/img/%d.jpg" medium="image"/>
<description>&lt;script&gt;alert(%d)&lt;/script&gt;&lt;img src="/img/%d-inline.jpg"&gt;%s%s%s%s</description></item>
`, i, feed, feed, i, feed, i, i%24, i%60, i, i, i, para, para, para, para)
	}
	b.WriteString("</channel></rss>\n")
	return b.Bytes()
}

// benchServer serves the feeds at /feed/0 … /feed/49.
func benchServer(tb testing.TB) (*httptest.Server, [][]byte) {
	tb.Helper()
	feeds := make([][]byte, benchFeeds)
	for i := range feeds {
		feeds[i] = benchFeed(i, benchItems)
	}
	mux := http.NewServeMux()
	for i, body := range feeds {
		mux.HandleFunc(fmt.Sprintf("/feed/%d", i), func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
			w.Write(body)
		})
	}
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv, feeds
}

// gather fetches every source, at most benchConcurrency at a time, and
// returns how many articles they gave.
func gather(ctx context.Context, tb testing.TB, srcs []Source) int {
	var (
		mu    sync.Mutex
		total int
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, benchConcurrency)
	for _, s := range srcs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			arts, err := s.Fetch(ctx)
			if err != nil {
				tb.Error(err)
			}
			mu.Lock()
			total += len(arts)
			mu.Unlock()
		})
	}
	wg.Wait()
	return total
}

func benchSources(tb testing.TB, srvURL string, env Env) []Source {
	srcs := make([]Source, benchFeeds)
	for i := range srcs {
		s, err := New(Spec{Name: fmt.Sprintf("feed %d", i), Type: "feed", URL: fmt.Sprintf("%s/feed/%d", srvURL, i)}, env)
		if err != nil {
			tb.Fatal(err)
		}
		srcs[i] = s
	}
	return srcs
}

// BenchmarkGather is one whole gathering: 50 × 100 items fetched, parsed,
// sanitized and teased. ns/op is the wall time of one build's gathering.
func BenchmarkGather(b *testing.B) {
	srv, _ := benchServer(b)
	env := Env{Fetcher: fetch.New(fetch.Options{}), Sanitizer: article.NewSanitizer()}
	srcs := benchSources(b, srv.URL, env)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if n := gather(ctx, b, srcs); n != benchFeeds*benchItems {
			b.Fatalf("gathered %d articles, want %d", n, benchFeeds*benchItems)
		}
	}
}

// BenchmarkGatherStages splits the work of BenchmarkGather, each stage on
// all 50 feeds, one goroutine, so that the shares add up to the CPU cost.
func BenchmarkGatherStages(b *testing.B) {
	srv, feeds := benchServer(b)
	var descs []string
	for _, f := range feeds {
		parsed, err := gofeed.NewParser().Parse(bytes.NewReader(f))
		if err != nil {
			b.Fatal(err)
		}
		for _, it := range parsed.Items {
			descs = append(descs, it.Description)
		}
	}
	san := article.NewSanitizer()
	clean := make([]string, len(descs))
	for i, d := range descs {
		clean[i] = san.HTML(d)
	}
	ctx := context.Background()

	b.Run("fetch", func(b *testing.B) {
		c := fetch.New(fetch.Options{})
		b.ReportAllocs()
		for b.Loop() {
			for i := range feeds {
				if _, err := c.Get(ctx, fmt.Sprintf("%s/feed/%d", srv.URL, i)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, f := range feeds {
				if _, err := gofeed.NewParser().Parse(bytes.NewReader(f)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("sanitize", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, d := range descs {
				_ = san.HTML(d)
			}
		}
	})
	b.Run("tease", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, c := range clean {
				_ = article.HTMLTeaser(c, DefaultTeaserLength)
			}
		}
	})
	b.Run("items", func(b *testing.B) {
		// Everything else per item: links, images, titles, tags.
		env := Env{Sanitizer: san}
		f := &feed{spec: Spec{Name: "x", Section: "x"}, env: env}
		var items []*gofeed.Item
		for _, fb := range feeds {
			parsed, _ := gofeed.NewParser().Parse(bytes.NewReader(fb))
			for _, it := range parsed.Items {
				it.Description, it.Content = "", "" // teasers measured above
				items = append(items, it)
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			for _, it := range items {
				f.item(it, "https://feed.example.org/")
			}
		}
	})
}
