package source

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFeedUpdated: an entry that says when it was published and when it
// was updated keeps both, so that settling can see the edit; one that
// gives only an update date is dated by it, with no separate update.
func TestFeedUpdated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "atom.xml")
	atom := `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:t</id><updated>2026-11-30T07:00:00Z</updated>
<entry><id>urn:edited</id><title>Edited</title><link href="https://example.org/edited"/>
  <published>2026-11-29T08:00:00Z</published><updated>2026-11-30T07:00:00Z</updated></entry>
<entry><id>urn:once</id><title>Once</title><link href="https://example.org/once"/>
  <updated>2026-11-28T08:00:00Z</updated></entry>
</feed>`
	if err := os.WriteFile(path, []byte(atom), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := fetchPath(t, path, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d articles, want 2", len(got))
	}
	for _, tt := range []struct {
		published, updated time.Time
	}{
		{date("2026-11-29T08:00:00Z"), date("2026-11-30T07:00:00Z")},
		{date("2026-11-28T08:00:00Z"), time.Time{}},
	} {
		a := got[0]
		got = got[1:]
		if !a.Published.Equal(tt.published) || !a.Updated.Equal(tt.updated) {
			t.Errorf("%s: published %s, updated %s; want %s, %s", a.ID, a.Published, a.Updated, tt.published, tt.updated)
		}
	}
}
