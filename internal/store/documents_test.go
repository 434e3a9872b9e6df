package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/source"
	"github.com/digest/digest/internal/store"
	"github.com/digest/digest/internal/store/storetest"
)

func TestDocumentsAndSourceRuns(t *testing.T) { storetest.Run(t, testDocumentsAndSourceRuns) }

func testDocumentsAndSourceRuns(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	path := db.Fresh(t)
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.GetDocument(ctx, "https://example.org/feed"); ok || err != nil {
		t.Fatalf("empty cache: ok=%v err=%v", ok, err)
	}
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	want := source.Cached{ETag: `"v1"`, LastModified: "Mon, 30 Nov 2026 08:00:00 GMT", URL: "https://example.org/feed.xml",
		ContentType: "application/rss+xml", Body: []byte("<rss/>"), FetchedAt: at}
	if err := st.PutDocument(ctx, "https://example.org/feed", want); err != nil {
		t.Fatal(err)
	}
	want.ETag, want.Body = `"v2"`, []byte("<rss>2</rss>")
	if err := st.PutDocument(ctx, "https://example.org/feed", want); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, ok, err := st.GetDocument(ctx, "https://example.org/feed")
	if err != nil || !ok {
		t.Fatalf("get: ok=%v err=%v", ok, err)
	}
	if got.ETag != want.ETag || string(got.Body) != string(want.Body) || !got.FetchedAt.Equal(at) || got.URL != want.URL {
		t.Errorf("got %+v, want %+v", got, want)
	}

	steps := []struct {
		err  error
		want int
	}{{errors.New("404"), 1}, {errors.New("timeout"), 2}, {errors.New("500"), 3}, {nil, 0}, {errors.New("404"), 1}}
	for i, s := range steps {
		n, err := st.RecordSourceRun(ctx, "World", s.err, at.Add(time.Duration(i)*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if n != s.want {
			t.Errorf("step %d: streak %d, want %d", i, n, s.want)
		}
	}
}

func TestSentSince(t *testing.T) { storetest.Run(t, testSentSince) }

func testSentSince(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	clock := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	st, err := store.Open(ctx, db.Fresh(t), store.WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, e := range []string{"a@example.org", "b@example.org", "c@example.org"} {
		if _, err := st.Add(ctx, e, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.SaveIssue(ctx, store.Issue{ID: "2026-11-30"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enqueue(ctx, "2026-11-30"); err != nil {
		t.Fatal(err)
	}
	run, err := st.BeginRun(ctx, ledger.RunInfo{ID: "t", Host: "h", PID: 1, IssueID: "2026-11-30"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rcs, err := run.Claim(ctx, "2026-11-30", 10)
	if err != nil || len(rcs) != 3 {
		t.Fatalf("claim: %v, %d rows", err, len(rcs))
	}
	outs := []ledger.Outcome{
		{SubscriberID: rcs[0].SubscriberID, Status: ledger.Sent, Attempts: 1, At: clock.Add(-2 * time.Hour)},
		{SubscriberID: rcs[1].SubscriberID, Status: ledger.Sent, Attempts: 1, At: clock.Add(-10 * time.Minute)},
		{SubscriberID: rcs[2].SubscriberID, Status: ledger.Failed, Attempts: 1, Code: 550, At: clock},
	}
	if err := run.Record(ctx, "2026-11-30", outs); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		since time.Time
		want  int
	}{{clock.Add(-24 * time.Hour), 2}, {clock.Add(-time.Hour), 1}, {clock.Add(time.Minute), 0}} {
		n, err := st.SentSince(ctx, tt.since)
		if err != nil {
			t.Fatal(err)
		}
		if n != tt.want {
			t.Errorf("SentSince(%s) = %d, want %d", tt.since.Format(time.Kitchen), n, tt.want)
		}
	}
}
