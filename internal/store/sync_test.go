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

// TestSyncKeepsReadersChoices: a sync applies a field only when the file
// changed it since the last sync; what the reader chose on the preferences
// page (or the operator with Put) stands until then, field by field.
func TestSyncKeepsReadersChoices(t *testing.T) { storetest.Run(t, testSyncKeepsReadersChoices) }

func testSyncKeepsReadersChoices(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	row := func(name string, topics ...string) []subscriber.Row {
		return []subscriber.Row{{Line: 2, Email: "bob@example.org", Name: name, Topics: topics}}
	}
	steps := []struct {
		what       string
		do         func() (SyncResult, error)
		want       SyncResult
		name, tops string
	}{
		{"first sync adds", func() (SyncResult, error) { return s.Sync(ctx, row("Bob", "world")) },
			SyncResult{Added: 1}, "Bob", "world"},
		{"the reader chooses", func() (SyncResult, error) {
			sub := mustGet(t, s, "bob@example.org")
			return SyncResult{}, s.SetPreferences(ctx, sub.ID, "Bobby", []string{"tech"})
		}, SyncResult{}, "Bobby", "tech"},
		{"same file: the reader's choice stands", func() (SyncResult, error) { return s.Sync(ctx, row("Bob", "world")) },
			SyncResult{Unchanged: 1}, "Bobby", "tech"},
		{"again", func() (SyncResult, error) { return s.Sync(ctx, row("Bob", "world")) },
			SyncResult{Unchanged: 1}, "Bobby", "tech"},
		{"the file changes the topics only", func() (SyncResult, error) { return s.Sync(ctx, row("Bob", "science", "world")) },
			SyncResult{Updated: 1}, "Bobby", "science,world"},
		{"the file changes the name", func() (SyncResult, error) { return s.Sync(ctx, row("Robert", "science", "world")) },
			SyncResult{Updated: 1}, "Robert", "science,world"},
		{"the operator renames", func() (SyncResult, error) {
			_, err := s.Put(ctx, subscriber.Row{Email: "bob@example.org", Name: "Rob"})
			return SyncResult{}, err
		}, SyncResult{}, "Rob", "science,world"},
		{"the file back to an old name is a change", func() (SyncResult, error) { return s.Sync(ctx, row("Bob", "science", "world")) },
			SyncResult{Updated: 1}, "Bob", "science,world"},
		{"empty name and no topics column say nothing", func() (SyncResult, error) {
			return s.Sync(ctx, []subscriber.Row{{Line: 2, Email: "bob@example.org"}})
		}, SyncResult{Unchanged: 1}, "Bob", "science,world"},
	}
	for _, st := range steps {
		res, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.what, err)
		}
		if res != st.want {
			t.Errorf("%s: %+v, want %+v", st.what, res, st.want)
		}
		got := mustGet(t, s, "bob@example.org")
		if got.Name != st.name || subscriber.JoinTopics(got.Topics) != st.tops {
			t.Errorf("%s: name %q topics %q, want %q %q", st.what, got.Name, got.Topics, st.name, st.tops)
		}
	}
}

// TestSettings: PutSetting replaces, Setting reads ("" when absent), and
// the signing secret is not theirs to write.
func TestSettings(t *testing.T) { storetest.Run(t, testSettings) }

func testSettings(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	if v, err := s.Setting(ctx, "k"); err != nil || v != "" {
		t.Fatalf("absent: %q, %v", v, err)
	}
	must(t, s.PutSetting(ctx, "k", "one"))
	must(t, s.PutSetting(ctx, "k", "two"))
	if v, err := s.Setting(ctx, "k"); err != nil || v != "two" {
		t.Errorf("Setting = %q, %v; want two", v, err)
	}
	if err := s.PutSetting(ctx, secretKey, "x"); err == nil {
		t.Error("PutSetting wrote the signing secret")
	}
}
