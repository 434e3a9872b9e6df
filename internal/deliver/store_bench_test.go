package deliver_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/smtptest"
	"github.com/digest/digest/internal/store"
	"github.com/digest/digest/internal/store/storetest"
	"github.com/digest/digest/internal/subscriber"
)

// benchStore opens the store at dsn with n active subscribers and the
// issue's n ledger rows pending.
func benchStore(b *testing.B, dsn, subject string, n int) *store.Store {
	b.Helper()
	ctx := b.Context()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	rows := make([]subscriber.Row, 0, 10_000)
	for i := 0; i < n; i += len(rows) {
		rows = rows[:0]
		for j := i; j < min(i+10_000, n); j++ {
			rows = append(rows, subscriber.Row{Line: j + 2, Email: fmt.Sprintf("reader%06d@example.org", j), Name: fmt.Sprintf("Reader %d", j)})
		}
		if _, err := st.Sync(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := st.SaveIssue(ctx, store.Issue{ID: issueID}); err != nil {
		b.Fatal(err)
	}
	if _, err := st.Enqueue(ctx, issueID); err != nil {
		b.Fatal(err)
	}
	return st
}

// countingLedger counts the ledger's transactions (every Claim, Record and
// Release is one) and the time spent in Record, which a connection waits
// for before it lets its next message be accepted.
type countingLedger struct {
	deliver.SharedLedger
	tx, records, recordNanos atomic.Int64
}

func (c *countingLedger) Claim(ctx context.Context, issueID string, limit int) ([]ledger.Recipient, error) {
	c.tx.Add(1)
	return c.SharedLedger.Claim(ctx, issueID, limit)
}

func (c *countingLedger) Record(ctx context.Context, issueID string, outs []ledger.Outcome) error {
	c.tx.Add(1)
	start := time.Now()
	defer func() { c.records.Add(1); c.recordNanos.Add(int64(time.Since(start))) }()
	return c.SharedLedger.Record(ctx, issueID, outs)
}

// recordMillis is the mean time of a Record call in milliseconds.
func (c *countingLedger) recordMillis() float64 {
	if n := c.records.Load(); n > 0 {
		return float64(c.recordNanos.Load()) / float64(n) / 1e6
	}
	return 0
}

// ParallelRecords passes on the store's answer (see deliver.ParallelLedger).
func (c *countingLedger) ParallelRecords() int {
	if pl, ok := c.SharedLedger.(deliver.ParallelLedger); ok {
		return pl.ParallelRecords()
	}
	return 1
}

func (c *countingLedger) Release(ctx context.Context, issueID string, ids []int64) error {
	c.tx.Add(1)
	return c.SharedLedger.Release(ctx, issueID, ids)
}

// ledgerBackend is where BenchmarkLedgerThroughput keeps the ledger: a
// fresh database per round (dsn), or "" for the in-memory fake.
type ledgerBackend struct {
	name string
	dsn  func(b *testing.B) string
}

func ledgerBackends() []ledgerBackend {
	return []ledgerBackend{
		{name: "memory"},
		{name: "sqlite-disk", dsn: func(b *testing.B) string { return filepath.Join(b.TempDir(), "digest.db") }},
		{name: "sqlite-tmpfs", dsn: func(b *testing.B) string {
			if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
				b.Skip("no /dev/shm")
			}
			dir, err := os.MkdirTemp("/dev/shm", "digest-bench-")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = os.RemoveAll(dir) })
			return filepath.Join(dir, "digest.db")
		}},
		{name: "postgres", dsn: func(b *testing.B) string { return storetest.PostgresDSN(b) }},
	}
}

// BenchmarkLedgerThroughput is BenchmarkThroughput with the ledger in a real
// store: 5,000 messages of about 22 KB (a 6-article issue) over 4
// connections to an in-process discard server, through the engine with the
// store's run as its ledger, against the bare go-smtp client pushing the
// same bytes over 4 connections in the same round. It reports both rates,
// their ratio and the ledger transactions (claims and batched records) per
// round, for the in-memory fake, SQLite on disk and on tmpfs, and Postgres
// (DIGEST_TEST_POSTGRES; skipped without it):
//
//	go test -run '^$' -bench LedgerThroughput -benchtime 3x ./internal/deliver
func BenchmarkLedgerThroughput(b *testing.B) {
	const n, conns = 5000, 4
	r := realisticIssueOf(b, 2)
	comp := benchComposer(b)
	prep := prepare(b, comp, r)
	sample, err := prep.Build(nil, ledger.Recipient{IssueID: issueID, SubscriberID: 1, Email: "reader000001@example.org", Name: "Reader 1"})
	if err != nil {
		b.Fatal(err)
	}
	msg := bytes.Clone(sample.Data)
	for _, be := range ledgerBackends() {
		b.Run(be.name, func(b *testing.B) {
			var engineTime, baseTime time.Duration
			var txs int64
			var recordMillis float64
			rounds := 0
			for b.Loop() {
				b.StopTimer()
				var l deliver.SharedLedger
				if be.dsn == nil {
					l = sharedFake{newFakeLedger(issueID, n)}
				} else {
					st := benchStore(b, be.dsn(b), r.Subject, n)
					run, err := st.BeginRun(b.Context(), ledger.RunInfo{ID: "bench", Host: "h", PID: 1, IssueID: issueID}, time.Hour)
					if err != nil {
						b.Fatal(err)
					}
					l = run
				}
				cl := &countingLedger{SharedLedger: l}
				b.StartTimer()

				srv := smtptest.New(b, smtptest.WithDiscard())
				baseTime += baseline(b, srv.Addr, msg, n, conns)
				if srv.Total() != n {
					b.Fatalf("baseline: server accepted %d, want %d", srv.Total(), n)
				}
				srv = smtptest.New(b, smtptest.WithDiscard())
				start := time.Now()
				sum, err := deliver.Issue(b.Context(), issueID, prep, cl, smtpTransport(b, srv, nil), deliver.Options{Connections: conns, Total: n})
				engineTime += time.Since(start)
				if err != nil || sum.Sent != n || srv.Total() != n {
					b.Fatalf("engine: %+v, server accepted %d, err %v", sum, srv.Total(), err)
				}
				txs += cl.tx.Load()
				recordMillis += cl.recordMillis()
				rounds++
			}
			engineRate := float64(n*rounds) / engineTime.Seconds()
			baseRate := float64(n*rounds) / baseTime.Seconds()
			b.ReportMetric(engineRate, "engine-msg/s")
			b.ReportMetric(baseRate, "baseline-msg/s")
			b.ReportMetric(engineRate/baseRate, "ratio")
			b.ReportMetric(float64(txs)/float64(rounds), "ledger-tx")
			b.ReportMetric(recordMillis/float64(rounds), "ms/record")
			b.ReportMetric(float64(len(msg)), "bytes/msg")
		})
	}
}

// sharedFake is the in-memory ledger as a SharedLedger with no other runs.
type sharedFake struct{ *fakeLedger }

func (sharedFake) HeldByOthers(context.Context, string) (int, error) { return 0, nil }

// BenchmarkPostgres100k is BenchmarkSQLite100k on Postgres
// (DIGEST_TEST_POSTGRES; skipped without it): the realistic issue to
// 100,000 subscribers over 4 connections to an in-process discard server,
// with the rate, the ledger transactions and the peak RSS of the whole
// process (server included). Run it alone, so that the peak is its own:
//
//	go test -run '^$' -bench Postgres100k -benchtime 1x ./internal/deliver
//
// DIGEST_BENCH_SUBSCRIBERS changes the number of subscribers.
func BenchmarkPostgres100k(b *testing.B) {
	deliver100k(b, func(b *testing.B) string { return storetest.PostgresDSN(b) })
}

// deliver100k is BenchmarkSQLite100k and BenchmarkPostgres100k: a fresh
// store from dsn per round.
func deliver100k(b *testing.B, dsn func(b *testing.B) string) {
	n := 100_000
	if s := os.Getenv("DIGEST_BENCH_SUBSCRIBERS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	r := realisticIssue(b)
	prep := prepare(b, benchComposer(b), r)
	for b.Loop() {
		b.StopTimer()
		st := benchStore(b, dsn(b), r.Subject, n)
		run, err := st.BeginRun(b.Context(), ledger.RunInfo{ID: "bench", Host: "h", PID: 1, IssueID: issueID}, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		cl := &countingLedger{SharedLedger: run}
		runtime.GC()
		before := peakRSS()
		srv := smtptest.New(b, smtptest.WithDiscard())
		b.StartTimer()
		start := time.Now()
		sum, err := deliver.Issue(b.Context(), issueID, prep, cl, smtpTransport(b, srv, nil), deliver.Options{Connections: 4, Total: n})
		took := time.Since(start)
		if err != nil || sum.Sent != n || srv.Total() != n {
			b.Fatalf("summary %+v, server %d, err %v", sum, srv.Total(), err)
		}
		if c, err := st.Counts(b.Context(), issueID); err != nil || c.Sent != n {
			b.Fatalf("counts %+v, %v", c, err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(n)/took.Seconds(), "msg/s")
		b.ReportMetric(float64(cl.tx.Load()), "ledger-tx")
		b.ReportMetric(cl.recordMillis(), "ms/record")
		b.ReportMetric(float64(before)/(1<<20), "MB-RSS-before-send")
		b.ReportMetric(float64(peakRSS())/(1<<20), "MB-peak-RSS")
		b.ReportMetric(float64(ms.HeapSys)/(1<<20), "MB-heap-sys")
		_ = st.Close()
	}
}
