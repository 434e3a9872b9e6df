package archive

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/article"
	goldenfile "github.com/digest/digest/internal/golden"
	"github.com/digest/digest/internal/issue"
)

var testNow = time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)

// copyArchive copies testdata/archive into a fresh folder, since Write
// writes into the folder it scans.
func copyArchive(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("testdata", "archive")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldenfile.Check(t, name, got)
}

func TestWriteGolden(t *testing.T) {
	for _, tc := range []struct {
		name      string
		meta      Meta
		indexGold string
		feedGold  string
	}{
		{"relative", Meta{Name: "The Weekly Digest"}, "index.html.golden", "feed.xml.golden"},
		{"base-url", Meta{Name: "The Weekly Digest", BaseURL: "https://example.org/digests/", Language: "de"}, "index-de.html.golden", "feed-baseurl.xml.golden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyArchive(t)
			err := Write(dir, tc.meta, testNow)
			corrupt := filepath.Join(dir, "2026-12-07", "issue.json")
			if err == nil || !strings.Contains(err.Error(), corrupt) {
				t.Fatalf("Write error = %v, want one naming %s", err, corrupt)
			}
			var syntaxErr *json.SyntaxError
			if !errors.As(err, &syntaxErr) {
				t.Errorf("Write error = %v, want it to wrap a *json.SyntaxError", err)
			}
			for _, f := range []struct{ file, gold string }{{IndexFile, tc.indexGold}, {FeedFile, tc.feedGold}} {
				got, err := os.ReadFile(filepath.Join(dir, f.file))
				if err != nil {
					t.Fatal(err)
				}
				golden(t, f.gold, got)
			}
			// No temporary file is left behind.
			des, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, de := range des {
				if strings.HasPrefix(de.Name(), ".tmp-") {
					t.Errorf("temporary file %s left behind", de.Name())
				}
			}
		})
	}
}

func TestWriteDeterministic(t *testing.T) {
	dir := copyArchive(t)
	m := Meta{Name: "The Weekly Digest", BaseURL: "https://example.org/d"}
	write := func(now time.Time) string {
		_ = Write(dir, m, now)
		var s string
		for _, f := range []string{IndexFile, FeedFile} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			s += string(b)
		}
		return s
	}
	first := write(testNow)
	// A later clock changes nothing while the issues stay the same.
	if second := write(testNow.Add(72 * time.Hour)); second != first {
		t.Error("rewriting an unchanged archive changed index.html or feed.xml")
	}
}

func TestIndexOrderAndEscaping(t *testing.T) {
	dir := copyArchive(t)
	_ = Write(dir, Meta{Name: `Tom & Jerry's <News>`}, testNow)
	b, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)

	// Newest first, corrupt issue and outbox absent.
	var last int = -1
	for _, id := range []string{"2026-11-30", "2026-11-23", "2026-11-16"} {
		i := strings.Index(page, `href="./`+id+`/digest.html"`)
		if i < 0 {
			t.Fatalf("index lacks a link to %s", id)
		}
		if i < last {
			t.Errorf("issue %s listed out of order (want newest first)", id)
		}
		last = i
	}
	for _, absent := range []string{"2026-12-07", "outbox", "README"} {
		if strings.Contains(page, absent) {
			t.Errorf("index mentions %q", absent)
		}
	}

	for _, tc := range []struct{ name, want, notWant string }{
		{"script tag", "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Tips &amp; Tricks for &lt;Go&gt;", "<script>"},
		{"name", "Tom &amp; Jerry&#39;s &lt;News&gt;", "<News>"},
		{"lang", `<html lang="en">`, ""},
		{"count plural", "2 articles", ""},
		{"count singular", "1 article<", ""},
		{"number and date", `#3 · <time datetime="2026-11-30T08:00:00&#43;01:00">2026-11-30</time>`, ""},
		{"first title as headline", ">Snow in the desert</a>", "Markets calm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(page, tc.want) {
				t.Errorf("index lacks %q", tc.want)
			}
			if tc.notWant != "" && strings.Contains(page, tc.notWant) {
				t.Errorf("index contains %q", tc.notWant)
			}
		})
	}
}

// Atom structures for reading the feed back; independent of the writer's.
type readFeed struct {
	XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
	Lang    string   `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	ID      string   `xml:"http://www.w3.org/2005/Atom id"`
	Title   string   `xml:"http://www.w3.org/2005/Atom title"`
	Updated string   `xml:"http://www.w3.org/2005/Atom updated"`
	Author  string   `xml:"http://www.w3.org/2005/Atom author>name"`
	Links   []struct {
		Rel  string `xml:"rel,attr"`
		Href string `xml:"href,attr"`
	} `xml:"http://www.w3.org/2005/Atom link"`
	Entries []struct {
		ID      string `xml:"http://www.w3.org/2005/Atom id"`
		Title   string `xml:"http://www.w3.org/2005/Atom title"`
		Updated string `xml:"http://www.w3.org/2005/Atom updated"`
		Link    struct {
			Rel  string `xml:"rel,attr"`
			Href string `xml:"href,attr"`
		} `xml:"http://www.w3.org/2005/Atom link"`
		Summary struct {
			Type string `xml:"type,attr"`
			Body string `xml:",chardata"`
		} `xml:"http://www.w3.org/2005/Atom summary"`
		Content struct {
			Type string `xml:"type,attr"`
			Body string `xml:",chardata"`
		} `xml:"http://www.w3.org/2005/Atom content"`
	} `xml:"http://www.w3.org/2005/Atom entry"`
}

func parseFeed(t *testing.T, path string) readFeed {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f readFeed
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	if err := d.Decode(&f); err != nil {
		t.Fatalf("feed.xml is not valid XML: %v", err)
	}
	return f
}

func TestFeedStructure(t *testing.T) {
	for _, tc := range []struct {
		name       string
		meta       Meta
		feedID     string
		self       string
		entryID    string // of the newest entry
		entryHref  string // of the newest entry
		lang       string
		wantUpdate string
	}{
		{
			name:      "relative",
			meta:      Meta{Name: "The Weekly Digest!"},
			feedID:    "tag:digest.invalid,2000:the-weekly-digest",
			self:      "feed.xml",
			entryID:   "tag:digest.invalid,2000:the-weekly-digest/2026-11-30",
			entryHref: "./2026-11-30/digest.html",
			lang:      "en",
		},
		{
			name:      "base url",
			meta:      Meta{Name: "The Weekly Digest", BaseURL: "https://example.org/digests//", Language: "fr"},
			feedID:    "https://example.org/digests/",
			self:      "https://example.org/digests/feed.xml",
			entryID:   "https://example.org/digests/2026-11-30/digest.html",
			entryHref: "https://example.org/digests/2026-11-30/digest.html",
			lang:      "fr",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyArchive(t)
			_ = Write(dir, tc.meta, testNow)
			f := parseFeed(t, filepath.Join(dir, FeedFile))
			if f.ID != tc.feedID {
				t.Errorf("feed id = %q, want %q", f.ID, tc.feedID)
			}
			if f.Lang != tc.lang {
				t.Errorf("xml:lang = %q, want %q", f.Lang, tc.lang)
			}
			if f.Title != tc.meta.Name || f.Author != tc.meta.Name {
				t.Errorf("title, author = %q, %q; want %q", f.Title, f.Author, tc.meta.Name)
			}
			if f.Updated != "2026-11-30T08:00:00+01:00" {
				t.Errorf("feed updated = %q, want the newest issue's date", f.Updated)
			}
			var self string
			for _, l := range f.Links {
				if l.Rel == "self" {
					self = l.Href
				}
			}
			if self != tc.self {
				t.Errorf("self link = %q, want %q", self, tc.self)
			}
			if len(f.Entries) != 3 {
				t.Fatalf("feed has %d entries, want 3", len(f.Entries))
			}
			wantTitles := []string{"#3", "#2", "#1"}
			for i, e := range f.Entries {
				if want := tc.meta.Name + " " + wantTitles[i]; e.Title != want {
					t.Errorf("entry %d title = %q, want %q", i, e.Title, want)
				}
				if _, err := time.Parse(time.RFC3339, e.Updated); err != nil {
					t.Errorf("entry %d updated: %v", i, err)
				}
				if e.Summary.Type != "text" || e.Content.Type != "html" {
					t.Errorf("entry %d summary/content types = %q/%q", i, e.Summary.Type, e.Content.Type)
				}
			}
			newest := f.Entries[0]
			if newest.ID != tc.entryID || newest.Link.Href != tc.entryHref {
				t.Errorf("newest entry id, href = %q, %q; want %q, %q", newest.ID, newest.Link.Href, tc.entryID, tc.entryHref)
			}
			if newest.Summary.Body != "Snow in the desert · Markets calm" {
				t.Errorf("summary = %q", newest.Summary.Body)
			}
			// Titles are text in the summary and escaped HTML in the content.
			tricky := f.Entries[1]
			if !strings.Contains(tricky.Summary.Body, `<script>alert("x")</script> Tips & Tricks for <Go>`) {
				t.Errorf("summary lost the plain title: %q", tricky.Summary.Body)
			}
			colon := ":" // French keeps a narrow no-break space before it
			if tc.lang == "fr" {
				colon = "\u202F:"
			}
			for _, want := range []string{
				`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Tips &amp; Tricks for &lt;Go&gt;`,
				`href="https://tech.example.com/tips?a=1&amp;b=2"`,
				`Use a &lt; b &amp;&amp; c &gt; d`,
				`<p>Hello <em>readers</em>.</p>`, // the intro is trusted HTML
				`<h3>Notes</h3>`,
				`Über Kaffee und 東京`,
				`<li>A javascript` + colon + ` link is dropped <small>`,
			} {
				if !strings.Contains(tricky.Content.Body, want) {
					t.Errorf("content lacks %q:\n%s", want, tricky.Content.Body)
				}
			}
			for _, bad := range []string{"<script>", `href="javascript:`, "ZgotmplZ"} {
				if strings.Contains(tricky.Content.Body, bad) {
					t.Errorf("content contains %q:\n%s", bad, tricky.Content.Body)
				}
			}
		})
	}
}

// writeIssue stores iss as dir/<id>/issue.json.
func writeIssue(t *testing.T, dir string, iss issue.Issue) {
	t.Helper()
	b, err := json.Marshal(iss)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, iss.ID), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, iss.ID, "issue.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFeedLimit(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2025, 1, 6, 8, 0, 0, 0, time.UTC)
	const n = MaxFeedEntries + 5
	for i := range n {
		d := start.AddDate(0, 0, 7*i)
		writeIssue(t, dir, issue.Issue{
			ID: d.Format(time.DateOnly), Number: i + 1, Date: d,
			Sections: []issue.Section{{Name: "S", Articles: []article.Article{{ID: "x", Title: "T", Link: "https://e.org/"}}}},
		})
	}
	if err := Write(dir, Meta{Name: "N"}, testNow); err != nil {
		t.Fatal(err)
	}
	f := parseFeed(t, filepath.Join(dir, FeedFile))
	if len(f.Entries) != MaxFeedEntries {
		t.Fatalf("feed has %d entries, want %d", len(f.Entries), MaxFeedEntries)
	}
	if got, want := f.Entries[0].Title, "N #55"; got != want {
		t.Errorf("first entry = %q, want %q", got, want)
	}
	if got, want := f.Entries[MaxFeedEntries-1].Title, "N #6"; got != want {
		t.Errorf("last entry = %q, want %q", got, want)
	}
	index, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(index), "<li>"); got != n {
		t.Errorf("index lists %d issues, want all %d", got, n)
	}
}

func TestWriteEdgeCases(t *testing.T) {
	t.Run("empty archive", func(t *testing.T) {
		dir := t.TempDir()
		if err := Write(dir, Meta{Name: "N"}, testNow); err != nil {
			t.Fatal(err)
		}
		f := parseFeed(t, filepath.Join(dir, FeedFile))
		if len(f.Entries) != 0 || f.Updated != testNow.Format(time.RFC3339) {
			t.Errorf("empty feed: %d entries, updated %q; want 0, now", len(f.Entries), f.Updated)
		}
		b, err := os.ReadFile(filepath.Join(dir, IndexFile))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "No issues yet.") {
			t.Error("empty index does not say so")
		}
	})
	t.Run("missing folder", func(t *testing.T) {
		err := Write(filepath.Join(t.TempDir(), "nope"), Meta{Name: "N"}, testNow)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("bad base url", func(t *testing.T) {
		for _, u := range []string{"example.org/digests", "ftp://example.org/", "/digests", "https://example.org/?q=1"} {
			dir := t.TempDir()
			err := Write(dir, Meta{Name: "N", BaseURL: u}, testNow)
			if err == nil || !strings.Contains(err.Error(), u) {
				t.Errorf("BaseURL %q: error = %v, want one naming it", u, err)
			}
			if _, err := os.Stat(filepath.Join(dir, IndexFile)); err == nil {
				t.Errorf("BaseURL %q: index written despite the error", u)
			}
		}
	})
	t.Run("undated issue takes its folder's date", func(t *testing.T) {
		dir := t.TempDir()
		writeIssue(t, dir, issue.Issue{ID: "2026-01-05", Number: 1})
		writeIssue(t, dir, issue.Issue{ID: "special", Number: 2}) // no date to go by
		err := Write(dir, Meta{Name: "N"}, testNow)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "special", "issue.json")) {
			t.Errorf("error = %v, want one naming special/issue.json", err)
		}
		f := parseFeed(t, filepath.Join(dir, FeedFile))
		if len(f.Entries) != 1 || f.Entries[0].Updated != "2026-01-05T00:00:00Z" {
			t.Errorf("entries = %+v, want one dated 2026-01-05T00:00:00Z", f.Entries)
		}
	})
	t.Run("unnumbered issue and odd folder name", func(t *testing.T) {
		dir := t.TempDir()
		writeIssue(t, dir, issue.Issue{ID: "a:b c", Date: testNow})
		if err := Write(dir, Meta{Name: "N"}, testNow); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, IndexFile))
		if err != nil {
			t.Fatal(err)
		}
		// No articles: the headline falls back to the issue's title.
		if !strings.Contains(string(b), `<a href="./a:b%20c/digest.html" dir="auto">N a:b c</a>`) {
			t.Errorf("index:\n%s", b)
		}
	})
}

func TestSlug(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"The Weekly Digest", "the-weekly-digest"},
		{"  Tom & Jerry's  ", "tom-jerry-s"},
		{"Café Zürich", "caf-z-rich"},
		{"東京", "digest"},
		{"", "digest"},
		{"v2.0 news", "v2-0-news"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := slug(tc.in); got != tc.want {
				t.Errorf("slug(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// Several issues a day: the index and the feed list them in the order of
// the times their ids name (not of when each was built: a caught-up run
// builds late), and the index shows each one's time.
func TestSeveralIssuesADayInIDOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	day := func(d, h, m int) time.Time { return time.Date(2026, 12, d, h, m, 0, 0, time.UTC) }
	for i, x := range []struct {
		id    string
		built time.Time
	}{
		{"2026-12-03", day(3, 8, 0)},       // the schedule was daily then
		{"2026-12-04-0700", day(4, 7, 0)},  // then twice a day
		{"2026-12-04-1300", day(4, 20, 5)}, // caught up late, after 19:00
		{"2026-12-04-1900", day(4, 19, 0)},
		{"2026-12-04-190030", day(4, 19, 0)}, // then every few seconds
	} {
		writeIssue(t, dir, issue.Issue{
			ID: x.id, Number: i + 1, Date: x.built,
			Sections: []issue.Section{{Name: "S", Articles: []article.Article{{ID: x.id, Title: "Story " + x.id, Link: "https://e.org/" + x.id}}}},
		})
	}
	if err := Write(dir, Meta{Name: "N"}, testNow); err != nil {
		t.Fatal(err)
	}
	want := []string{"2026-12-04-190030", "2026-12-04-1900", "2026-12-04-1300", "2026-12-04-0700", "2026-12-03"}
	f := parseFeed(t, filepath.Join(dir, FeedFile))
	var got []string
	for _, e := range f.Entries {
		got = append(got, strings.TrimPrefix(strings.TrimSuffix(e.Link.Href, "/digest.html"), "./"))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("feed entries %q, want %q", got, want)
	}
	b, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	page, last := string(b), -1
	for _, id := range want {
		i := strings.Index(page, `href="./`+id+`/digest.html"`)
		if i < last {
			t.Errorf("index lists %s out of order (%d after %d)", id, i, last)
		}
		last = i
	}
	for _, shown := range []string{">2026-12-04 19:00:30</time>", ">2026-12-04 19:00</time>", ">2026-12-04 13:00</time>", ">2026-12-03</time>"} {
		if !strings.Contains(page, shown) {
			t.Errorf("index lacks %q", shown)
		}
	}
}
