package store

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/store/storetest"
)

func TestObserveStories(t *testing.T) { storetest.Run(t, testObserveStories) }

func testObserveStories(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	path := db.Fresh(t)
	c := newClock()
	s := openAt(t, path, c)
	t1, t2, t3 := t0, t0.Add(time.Hour), t0.Add(2*time.Hour)
	steps := []struct {
		at   time.Time
		seen []ledger.Sighting
		want map[string]ledger.Observed
	}{
		{t1, []ledger.Sighting{{ID: "a", Fingerprint: "v1"}, {ID: "b", Fingerprint: "v1"}}, map[string]ledger.Observed{
			"a": {FirstSeen: t1}, "b": {FirstSeen: t1}, // a first sight is not a change
		}},
		{t2, []ledger.Sighting{{ID: "a", Fingerprint: "v2"}, {ID: "b", Fingerprint: "v1"}, {ID: "c", Fingerprint: "v1"}}, map[string]ledger.Observed{
			"a": {FirstSeen: t1, Changed: t2}, "b": {FirstSeen: t1}, "c": {FirstSeen: t2},
		}},
		{t3, []ledger.Sighting{{ID: "a", Fingerprint: "v2"}, {ID: "b", Fingerprint: "v1"}}, map[string]ledger.Observed{
			"a": {FirstSeen: t1, Changed: t2}, "b": {FirstSeen: t1}, // unchanged since
		}},
	}
	for i, st := range steps {
		got, err := s.Observe(ctx, st.seen, st.at)
		must(t, err)
		if !reflect.DeepEqual(got, st.want) {
			t.Errorf("Observe #%d = %+v, want %+v", i+1, got, st.want)
		}
		if i == 0 { // the memory survives a reopen
			must(t, s.Close())
			s = openAt(t, path, c)
		}
	}
	// A story recorded before fingerprints existed (FirstSeen alone) gets
	// its first fingerprint without a change.
	_, err := s.FirstSeen(ctx, []string{"old"}, t1)
	must(t, err)
	got, err := s.Observe(ctx, []ledger.Sighting{{ID: "old", Fingerprint: "v1"}}, t3)
	must(t, err)
	if want := (ledger.Observed{FirstSeen: t1}); got["old"] != want {
		t.Errorf("Observe of a story first seen without a fingerprint = %+v, want %+v", got["old"], want)
	}
}

func TestObserveManyStories(t *testing.T) { storetest.Run(t, testObserveManyStories) }

// Observe takes stories in chunks: a number that is not a multiple of the
// chunk, and a story sighted twice in one call (once in each of two
// chunks, with another fingerprint the second time), come out as if they
// were sighted one by one.
func testObserveManyStories(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	seen := make([]ledger.Sighting, 2*observeChunk+7)
	for i := range seen {
		seen[i] = ledger.Sighting{ID: fmt.Sprintf("story-%d", i), Fingerprint: "v1"}
	}
	got, err := s.Observe(ctx, seen, t0)
	must(t, err)
	if len(got) != len(seen) {
		t.Fatalf("%d stories observed, want %d", len(got), len(seen))
	}
	later := t0.Add(time.Hour)
	again := append(slices.Clone(seen[:3]), ledger.Sighting{ID: "new", Fingerprint: "v1"})
	again = append(again, make([]ledger.Sighting, observeChunk)...)
	for i := 4; i < len(again); i++ {
		again[i] = ledger.Sighting{ID: fmt.Sprintf("other-%d", i), Fingerprint: "v1"}
	}
	again = append(again, ledger.Sighting{ID: "story-1", Fingerprint: "v2"})
	got, err = s.Observe(ctx, again, later)
	must(t, err)
	if o := got["story-0"]; !o.FirstSeen.Equal(t0) || !o.Changed.IsZero() {
		t.Errorf("story-0, unchanged: %+v", o)
	}
	if o := got["story-1"]; !o.FirstSeen.Equal(t0) || !o.Changed.Equal(later) {
		t.Errorf("story-1, changed in the second chunk: %+v", o)
	}
	if o := got["new"]; !o.FirstSeen.Equal(later) || !o.Changed.IsZero() {
		t.Errorf("a new story: %+v", o)
	}
	got, err = s.Observe(ctx, []ledger.Sighting{{ID: "story-1", Fingerprint: "v2"}}, later.Add(time.Hour))
	must(t, err)
	if o := got["story-1"]; !o.Changed.Equal(later) {
		t.Errorf("story-1 seen again as it was: %+v", o)
	}
}

func TestSeeSource(t *testing.T) { storetest.Run(t, testSeeSource) }

func testSeeSource(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	s, _ := openTest(t, db)
	t1, t2 := t0, t0.Add(24*time.Hour)
	_, err := s.Observe(ctx, []ledger.Sighting{{ID: "new", Fingerprint: "x"}, {ID: "old", Fingerprint: "x"}, {ID: "sent", Fingerprint: "x"}}, t1)
	must(t, err)
	must(t, s.MarkArticlesSent(ctx, "2025-03-01", []string{"sent"}))

	seen, err := s.SourcesSeen(ctx, []string{"Blog", "Other"})
	must(t, err)
	if len(seen) != 0 {
		t.Errorf("SourcesSeen before any sight = %v, want none", seen)
	}
	first, err := s.SeeSource(ctx, "Blog", t1, []string{"old", "sent"})
	must(t, err)
	if !first {
		t.Error("SeeSource the first time = false")
	}
	// Seen again (removed from the config and added back, say): not new,
	// and its backlog is not recomputed.
	first, err = s.SeeSource(ctx, "Blog", t2, []string{"new"})
	must(t, err)
	if first {
		t.Error("SeeSource the second time = true")
	}
	seen, err = s.SourcesSeen(ctx, []string{"Blog", "Other"})
	must(t, err)
	if want := map[string]time.Time{"Blog": t1}; !reflect.DeepEqual(seen, want) {
		t.Errorf("SourcesSeen = %v, want %v", seen, want)
	}
	got, err := s.Observe(ctx, []ledger.Sighting{{ID: "new", Fingerprint: "x"}, {ID: "old", Fingerprint: "x"}, {ID: "sent", Fingerprint: "x"}}, t2)
	must(t, err)
	backlog := map[string]bool{}
	for id, o := range got {
		backlog[id] = o.Backlog
	}
	if want := map[string]bool{"new": false, "old": true, "sent": false}; !reflect.DeepEqual(backlog, want) {
		t.Errorf("backlog = %v, want %v (a story already sent is not backlog)", backlog, want)
	}
}

// BenchmarkObserve: one run's sighting of 1,000 stories already known
// (the common case: most of a feed was seen before), one change among them.
func BenchmarkObserve(b *testing.B) {
	for _, db := range storetest.Backends() {
		b.Run(string(db), func(b *testing.B) {
			ctx := context.Background()
			s, _ := openTest(b, db)
			seen := make([]ledger.Sighting, 1000)
			for i := range seen {
				seen[i] = ledger.Sighting{ID: fmt.Sprintf("story-%d", i), Fingerprint: "v1"}
			}
			_, err := s.Observe(ctx, seen, t0)
			must(b, err)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				seen[i%len(seen)].Fingerprint = fmt.Sprint("v", i+2)
				if _, err := s.Observe(ctx, seen, t0.Add(time.Duration(i+1)*time.Minute)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSentBefore: a build's look-up of 2,000 keys (1,000 stories by
// id and link), half of them carried by an earlier issue.
func BenchmarkSentBefore(b *testing.B) {
	for _, db := range storetest.Backends() {
		b.Run(string(db), func(b *testing.B) {
			ctx := context.Background()
			s, _ := openTest(b, db)
			keys := make([]string, 2000)
			for i := range keys {
				keys[i] = fmt.Sprintf("key-%d", i)
			}
			_, err := s.SaveIssue(ctx, Issue{ID: "earlier"})
			must(b, err)
			must(b, s.MarkArticlesSent(ctx, "earlier", keys[:1000]))
			b.ResetTimer()
			for b.Loop() {
				got, err := s.SentBefore(ctx, keys, "now")
				if err != nil || len(got) != 1000 {
					b.Fatalf("%d sent, %v", len(got), err)
				}
			}
		})
	}
}
