package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/store/storetest"
	"github.com/digest/digest/internal/subscriber"
)

// TestSyncRepeatsAcrossChunks checks that Sync's chunks give the result of
// applying the rows one by one, with repeated addresses inside a chunk and
// across the boundary between two.
func TestSyncRepeatsAcrossChunks(t *testing.T) { storetest.Run(t, testSyncRepeatsAcrossChunks) }

func testSyncRepeatsAcrossChunks(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	addr := func(i int) string { return fmt.Sprintf("a%05d@example.org", i) }
	var rows []subscriber.Row
	add := func(email, name string) {
		rows = append(rows, subscriber.Row{Line: len(rows) + 2, Email: email, Name: name})
	}
	for i := range syncChunk - 2 {
		add(addr(i), "n")
	}
	add(addr(1), "n") // chunk 1: repeat, same name: unchanged
	add(addr(2), "y") // chunk 1: repeat, renamed: updated
	add(addr(3), "x") // chunk 2: known from chunk 1, renamed: updated
	add("B0@example.org", "p")
	add("b0@example.org", "q") // repeat of a new address: updated
	add(addr(4), "")           // empty name keeps "n": unchanged
	if len(rows) != syncChunk+4 {
		t.Fatalf("built %d rows", len(rows))
	}
	res, err := s.Sync(ctx, rows)
	must(t, err)
	if want := (SyncResult{Added: syncChunk - 1, Updated: 3, Unchanged: 2}); res != want {
		t.Errorf("Sync = %+v, want %+v", res, want)
	}
	for email, name := range map[string]string{addr(1): "n", addr(2): "y", addr(3): "x", addr(4): "n", "b0@example.org": "q"} {
		if got := mustGet(t, s, email); got.Name != name || got.Status != subscriber.StatusActive {
			t.Errorf("%s: %+v, want name %q, active", email, got, name)
		}
	}
	if got := mustGet(t, s, "b0@example.org").Email; got != "B0@example.org" {
		t.Errorf("stored spelling %q, want the first row's", got)
	}
	if n, err := s.CountActive(ctx); err != nil || n != syncChunk-1 {
		t.Errorf("CountActive = %d, %v; want %d", n, err, syncChunk-1)
	}
}

// TestRecordRepeats records two outcomes of one recipient in one batch:
// they apply in order, as if recorded one after the other.
func TestRecordRepeats(t *testing.T) { storetest.Run(t, testRecordRepeats) }

func testRecordRepeats(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	const issue = "w10"
	seed(t, s, 2, issue)
	_, err := s.Enqueue(ctx, issue)
	must(t, err)
	r := beginRun(t, s, issue, "run")
	batch, err := r.Claim(ctx, issue, 2)
	must(t, err)
	a, b := batch[0].SubscriberID, batch[1].SubscriberID
	must(t, r.Record(ctx, issue, []ledger.Outcome{
		{SubscriberID: a, Status: ledger.Pending, Code: 451, Reply: "later"},
		{SubscriberID: b, Status: ledger.Failed, Code: 550, Reply: "no"},
		{SubscriberID: a, Status: ledger.Sent, Code: 250},
		{SubscriberID: b, Status: ledger.Sent, Code: 250}, // b is settled: ignored
	}))
	if got := counts(t, s, issue); got != (ledger.Counts{Sent: 1, Failed: 1}) {
		t.Errorf("counts %+v, want 1 sent (a) and 1 failed (b)", got)
	}
	var attempts int
	must(t, s.db.QueryRowContext(ctx, s.d.bind(`SELECT attempts FROM deliveries WHERE issue_id = ? AND subscriber_id = ?`), issue, a).Scan(&attempts))
	if attempts != 2 {
		t.Errorf("a: %d attempts, want 2", attempts)
	}
}

// BenchmarkSync measures importing 100,000 new subscribers in one Sync (the
// path of subscribers import), and reports rows per second.
func BenchmarkSync(b *testing.B) {
	const n = 100_000
	rows := make([]subscriber.Row, n)
	for i := range rows {
		rows[i] = subscriber.Row{Line: i + 2, Email: fmt.Sprintf("reader%06d@example.org", i), Name: fmt.Sprintf("Reader %d", i)}
	}
	eachBackend(b, func(b *testing.B, db storetest.Backend) {
		ctx := context.Background()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			s, _ := openTest(b, db)
			b.StartTimer()
			res, err := s.Sync(ctx, rows)
			must(b, err)
			if res.Added != n {
				b.Fatalf("added %d", res.Added)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rows/s")
	})
}
