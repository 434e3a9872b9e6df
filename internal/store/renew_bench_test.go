package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/store/storetest"
)

// BenchmarkRenewWhileRecording times a run's lease renewal while the same
// run records outcomes back to back, as the delivery engine's recorder does
// (batches of 4 sent outcomes, a claim of 100 whenever the claimed rows
// run out). Each op is one Renew; it reports the mean and the worst
// renewal and the mean Record, on SQLite and Postgres (DIGEST_TEST_POSTGRES;
// skipped without it):
//
//	go test -run '^$' -bench RenewWhileRecording -benchtime 100x ./internal/store
func BenchmarkRenewWhileRecording(b *testing.B) {
	for _, db := range storetest.Backends() {
		b.Run(string(db), func(b *testing.B) {
			const n = 50_000
			s, _ := openTest(b, db)
			ctx := b.Context()
			seed(b, s, n, "w1")
			_, err := s.Enqueue(ctx, "w1")
			must(b, err)
			run, err := s.BeginRun(ctx, ledger.RunInfo{ID: "r1", Host: "h", PID: 1, IssueID: "w1"}, testLease)
			must(b, err)

			stop := make(chan struct{})
			var records, recordNanos atomic.Int64
			var wg sync.WaitGroup
			wg.Go(func() {
				var held []ledger.Recipient
				for {
					select {
					case <-stop:
						return
					default:
					}
					if len(held) < 4 {
						more, err := run.Claim(ctx, "w1", 100)
						if err != nil || len(more) == 0 {
							return
						}
						held = append(held, more...)
					}
					outs := make([]ledger.Outcome, 4)
					for i := range outs {
						outs[i] = ledger.Outcome{SubscriberID: held[i].SubscriberID, Status: ledger.Sent, Attempts: 1}
					}
					held = held[4:]
					start := time.Now()
					if err := run.Record(context.WithoutCancel(ctx), "w1", outs); err != nil {
						b.Error(err)
						return
					}
					recordNanos.Add(int64(time.Since(start)))
					records.Add(1)
				}
			})
			var total, worst time.Duration
			renewals := 0
			for b.Loop() {
				time.Sleep(5 * time.Millisecond)
				start := time.Now()
				if _, err := run.Renew(ctx); err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				total += d
				worst = max(worst, d)
				renewals++
			}
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(total)/float64(renewals)/1e6, "ms/renew")
			b.ReportMetric(float64(worst)/1e6, "ms-worst-renew")
			if r := records.Load(); r > 0 {
				b.ReportMetric(float64(recordNanos.Load())/float64(r)/1e6, "ms/record")
			}
		})
	}
}
