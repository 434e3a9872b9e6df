// Package archive is the folder of built issues as a static site: Save and
// Load write and read one issue's folder (issue.json and its web version),
// and Write rewrites the index page listing every issue and the Atom feed
// of the latest ones. The index uses relative links, so the folder can be
// published under any base URL or opened from disk; the feed uses absolute
// links when Meta.BaseURL is known, relative ones otherwise.
package archive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/digest/digest/internal/atomicfile"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/render"
	"github.com/digest/digest/internal/schedule"
)

// Names of the files that Write produces in the archive folder.
const (
	IndexFile = "index.html"
	FeedFile  = "feed.xml"
)

// MaxFeedEntries is the number of newest issues that the feed carries.
const MaxFeedEntries = 50

// Meta describes the newsletter for the index page and the feed.
type Meta struct {
	Name string // newsletter name; the feed's title and author
	// BaseURL is the public URL of the archive folder, e.g.
	// "https://example.org/digests". Empty means unknown: the feed then uses
	// relative links and a tag: URI derived from Name as its id.
	BaseURL  string
	Language string // BCP 47 tag for lang / xml:lang; empty means "en"
}

// entry is one archived issue as found on disk.
type entry struct {
	dir string // folder name under the archive: the issue id, used in links
	iss issue.Issue
	// named is the time dir names as an issue id (schedule.IssueID) and f
	// its form; zero when dir is not an id.
	named time.Time
	f     schedule.Frequency
}

// Write scans dir/*/issue.json and replaces dir/index.html and dir/feed.xml,
// each atomically. Folders without issue.json (the outbox, say) are ignored.
// An issue.json that cannot be read or parsed is skipped and named in the
// returned error, while the index and feed are still written from the other
// issues. now stands for the feed's last update when the archive holds no
// issue; otherwise the newest issue's date is used, so rewriting an
// unchanged archive gives identical bytes.
func Write(dir string, m Meta, now time.Time) error {
	base, err := normalizeBase(m.BaseURL)
	if err != nil {
		return err
	}
	m.BaseURL = base
	if m.Language == "" {
		m.Language = "en"
	}
	entries, errs, err := scan(dir)
	if err != nil {
		return err // the folder itself is unreadable: nothing to write
	}
	if render.French(m.Language) {
		// The headlines and teasers as the issues showed them.
		for i := range entries {
			entries[i].iss = render.FrenchIssue(entries[i].iss)
		}
	}
	index, err := renderIndex(m, entries)
	if err != nil {
		errs = append(errs, err)
	} else if err := atomicfile.Write(filepath.Join(dir, IndexFile), index, 0o644, nil); err != nil {
		errs = append(errs, fmt.Errorf("archive: %w", err))
	}
	feed, err := renderFeed(m, entries, now)
	if err != nil {
		errs = append(errs, err)
	} else if err := atomicfile.Write(filepath.Join(dir, FeedFile), feed, 0o644, nil); err != nil {
		errs = append(errs, fmt.Errorf("archive: %w", err))
	}
	return errors.Join(errs...)
}

// scan reads every dir/*/issue.json and returns the issues newest first,
// with one error per issue folder that could not be used. The last result
// is set only when dir itself cannot be read.
func scan(dir string) ([]entry, []error, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("archive: %w", err)
	}
	var (
		out  []entry
		errs []error
	)
	for _, de := range des {
		name := de.Name()
		if !de.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name, IssueFile)
		iss, err := readIssue(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // not an issue folder (outbox, …)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// The zone is not known here: the id's digits are all that is
		// shown or compared.
		named, f, _ := schedule.ParseIssueID(name, time.UTC)
		if iss.Date.IsZero() {
			// An issue id is its time: good enough to place it in time.
			if named.IsZero() {
				errs = append(errs, fmt.Errorf("archive: %s: issue has no date", path))
				continue
			}
			iss.Date = named
		}
		out = append(out, entry{dir: name, iss: iss, named: named, f: f})
	}
	slices.SortFunc(out, newestFirst)
	return out, errs, nil
}

// newestFirst orders issues by the times their ids name, newest first: ids
// sort as strings in time order, whatever their forms (a date, a date and
// time). A folder whose name is not an id goes by the time its issue was
// built for.
func newestFirst(a, b entry) int {
	if !a.named.IsZero() && !b.named.IsZero() {
		return strings.Compare(b.dir, a.dir)
	}
	if c := b.iss.Date.Compare(a.iss.Date); c != 0 {
		return c
	}
	return strings.Compare(b.dir, a.dir)
}

// normalizeBase checks that a base URL is absolute and drops trailing slashes.
func normalizeBase(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	u, err := parseWebURL(s)
	if err == nil && (u.RawQuery != "" || u.Fragment != "") {
		err = errors.New("want no query or fragment")
	}
	if err != nil {
		return "", fmt.Errorf("archive: base URL %q: %w", s, err)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// headline is the issue's subject-like line: its first article's title.
func headline(iss issue.Issue) string {
	for _, s := range iss.Sections {
		for _, a := range s.Articles {
			if t := strings.TrimSpace(a.Title); t != "" {
				return t
			}
		}
	}
	return ""
}

// title names the issue in the feed: "<Name> #<number>", or the id when the
// issue has no number yet.
func title(name string, e entry) string {
	if e.iss.Number > 0 {
		return fmt.Sprintf("%s #%d", name, e.iss.Number)
	}
	return name + " " + e.dir
}
