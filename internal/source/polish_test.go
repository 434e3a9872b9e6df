package source

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/digest/digest/internal/article"
)

// TestFeedPolish checks the finish of what a messy feed gives: markup and
// scripts out of titles and teasers, a 3,000-character description cut at a
// word, relative links and images made absolute (channel link, xml:base),
// images from media:content and enclosures.
func TestFeedPolish(t *testing.T) {
	polish, err := fetchPath(t, "testdata/polish.xml", Env{})
	if err != nil {
		t.Fatal(err)
	}
	based, err := fetchPath(t, "testdata/xmlbase.xml", Env{})
	if err != nil {
		t.Fatal(err)
	}
	if len(polish) != 2 || len(based) != 1 {
		t.Fatalf("got %d and %d articles, want 2 and 1", len(polish), len(based))
	}
	long, encl, entry := polish[0], polish[1], based[0]

	tests := []struct{ name, got, want string }{
		{"title: markup and script out", long.Title, "Bold claims & facts"},
		{"link: relative to the channel link", long.Link, "https://polish.example.com/news/stories/long.html?utm_source=feed&id=7#comments"},
		{"canonical link: no tracking, no fragment", article.Canonical(long.Link), "https://polish.example.com/news/stories/long.html?id=7"},
		{"image: media:content, relative", long.Image, "https://polish.example.com/img/long.jpg"},
		{"image: image enclosure, not audio", encl.Image, "https://polish.example.com/img/enclosure.png"},
		{"atom title type html", entry.Title, "Entry with base"},
		{"atom link: xml:base", entry.Link, "https://base.example.org/blog/posts/one.html"},
		{"atom image: first img under xml:base", entry.Image, "https://base.example.org/blog/posts/pic.png"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}

	t.Run("3,000-character description", func(t *testing.T) {
		tz := long.Teaser
		n := utf8.RuneCountInString(tz)
		if n > DefaultTeaserLength+1 || n < DefaultTeaserLength/2 {
			t.Errorf("teaser is %d runes, want about %d: %q", n, DefaultTeaserLength, tz)
		}
		if !strings.HasSuffix(tz, " very long…") || strings.Contains(tz, "  ") {
			t.Errorf("teaser not cut cleanly at a word: %q", tz)
		}
		for _, bad := range []string{"alert", "steal", "<", "onclick"} {
			if strings.Contains(tz, bad) {
				t.Errorf("teaser holds %q: %q", bad, tz)
			}
		}
		if !strings.HasPrefix(tz, "Sentence number 1 of a very long description, which keeps going with more words. Sentence number 2") {
			t.Errorf("teaser = %q", tz)
		}
	})
}

// TestSyndicatedOnce: the same story in two feeds, with different tracking
// parameters and fragments, has one canonical link, so that selection
// keeps it once.
func TestSyndicatedOnce(t *testing.T) {
	one := `<rss version="2.0"><channel><title>A</title><link>https://a.example/</link>
<item><title>Story</title><link>https://News.Example.org:443/story?id=7&amp;utm_source=a</link></item></channel></rss>`
	two := `<rss version="2.0"><channel><title>B</title><link>https://b.example/</link>
<item><title>Story (syndicated)</title><link>https://news.example.org/story?fbclid=xyz&amp;id=7#top</link></item>
<item><title>Other</title><link>https://news.example.org/story?id=8</link></item></channel></rss>`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(map[string]string{"/one": one, "/two": two}[r.URL.Path]))
	}))
	defer srv.Close()
	var all []article.Article
	for _, name := range []string{"one", "two"} {
		src, err := New(Spec{Name: name, Type: "feed", URL: srv.URL + "/" + name}, Env{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := src.Fetch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, got...)
	}
	// Deduplication (package issue) goes by canonical link: the two
	// copies must share it, and the other story must not.
	if len(all) != 3 || article.Canonical(all[0].Link) != article.Canonical(all[1].Link) ||
		article.Canonical(all[2].Link) == article.Canonical(all[0].Link) {
		t.Errorf("articles %+v: want the story twice under one canonical link, and Other", all)
	}
}

// Where the sanitizer removed markup (a script, an image, an empty span),
// titles and teasers keep no doubled space and no space before the
// punctuation that ends a word.
func TestFeedRemovedMarkupLeavesNoStraySpaces(t *testing.T) {
	arts, err := fetchPath(t, "testdata/spaces.xml", Env{})
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 1 {
		t.Fatalf("got %d articles", len(arts))
	}
	if got, want := arts[0].Title, "Council to agree budget"; got != want {
		t.Errorf("title %q, want %q", got, want)
	}
	if got, want := arts[0].Teaser, "The council will agree the budget. Then more, and done!"; got != want {
		t.Errorf("teaser %q, want %q", got, want)
	}
}
