package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/digest/digest/internal/store"
)

func TestDocumentsAndSourceRuns(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "digest.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.GetDocument(ctx, "https://example.org/feed"); ok || err != nil {
		t.Fatalf("empty cache: ok=%v err=%v", ok, err)
	}
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	want := store.Document{ETag: `"v1"`, LastModified: "Mon, 30 Nov 2026 08:00:00 GMT", URL: "https://example.org/feed.xml",
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
