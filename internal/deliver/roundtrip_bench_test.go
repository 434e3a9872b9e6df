package deliver_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/smtptest"
)

// BenchmarkRoundTrip shows what a connection waits for behind a round trip
// to the relay: 1,000 messages of about 22 KB over 4 connections through a
// proxy that delays each direction by half of DIGEST_BENCH_RTT (default
// 1ms), against the bare go-smtp client through another, with the ledger
// in memory (no commit to wait for) or in SQLite on disk, and the final
// "." carrying the next message's envelope (coalesced) or not (the engine
// told that the connection cannot start a next message). It reports both
// rates and their ratio, the dialogue's turns per message, the mean
// Record time and the mean wait right before a final "." (for the commit
// of the message before it):
//
//	go test -run '^$' -bench RoundTrip -benchtime 1x ./internal/deliver
func BenchmarkRoundTrip(b *testing.B) {
	const n, conns = 1000, 4
	rtt := time.Millisecond
	if s := os.Getenv("DIGEST_BENCH_RTT"); s != "" {
		var err error
		if rtt, err = time.ParseDuration(s); err != nil {
			b.Fatalf("DIGEST_BENCH_RTT=%q: %v", s, err)
		}
	}
	r := realisticIssueOf(b, 2)
	prep := prepare(b, benchComposer(b), r)
	sample, err := prep.Build(nil, ledger.Recipient{IssueID: issueID, SubscriberID: 1, Email: "reader000001@example.org", Name: "Reader 1"})
	if err != nil {
		b.Fatal(err)
	}
	msg := bytes.Clone(sample.Data)
	for _, be := range []string{"memory", "sqlite-disk"} {
		for _, coalesce := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/coalesced=%v", be, coalesce), func(b *testing.B) {
				var engine, bare time.Duration
				var turns, records, recordNanos, holds, holdNanos int64
				for b.Loop() {
					b.StopTimer()
					var l deliver.SharedLedger = sharedFake{newFakeLedger(issueID, n)}
					if be != "memory" {
						st := benchStore(b, filepath.Join(b.TempDir(), "digest.db"), r.Subject, n)
						run, err := st.BeginRun(b.Context(), ledger.RunInfo{ID: "bench", Host: "h", PID: 1, IssueID: issueID}, time.Hour)
						if err != nil {
							b.Fatal(err)
						}
						l = run
					}
					cl := &countingLedger{SharedLedger: l}
					b.StartTimer()

					base := smtptest.New(b, smtptest.WithDiscard())
					bare += baseline(b, "127.0.0.1:"+strconv.Itoa(smtptest.DelayProxy(b, base.Addr, rtt)), msg, n, conns)
					srv := smtptest.New(b, smtptest.WithDiscard())
					tr := &holdTimer{Transport: smtpTransport(b, srv, func(o *deliver.SMTPOptions) {
						o.Port = smtptest.DelayProxy(b, srv.Addr, rtt)
					}), coalesce: coalesce}
					start := time.Now()
					sum, err := deliver.Issue(b.Context(), issueID, prep, cl, tr, deliver.Options{Connections: conns, Total: n})
					engine += time.Since(start)
					if err != nil || sum.Sent != n || srv.Total() != n {
						b.Fatalf("engine: %+v, server accepted %d, err %v", sum, srv.Total(), err)
					}
					turns += int64(srv.Turns())
					records += cl.records.Load()
					recordNanos += cl.recordNanos.Load()
					holds += tr.holds.Load()
					holdNanos += tr.holdNanos.Load()
				}
				b.ReportMetric(float64(n*b.N)/engine.Seconds(), "engine-msg/s")
				b.ReportMetric(float64(n*b.N)/bare.Seconds(), "bare-msg/s")
				b.ReportMetric(bare.Seconds()/engine.Seconds(), "ratio")
				b.ReportMetric(float64(turns)/float64(n*b.N), "turns/msg")
				if records > 0 {
					b.ReportMetric(float64(recordNanos)/float64(records)/1e6, "ms/record")
				}
				if holds > 0 {
					b.ReportMetric(float64(holdNanos)/float64(holds)/1e6, "ms-wait/dot")
				}
			})
		}
	}
}

// holdTimer is a Transport whose connections time the engine's ready (the
// wait before each final "."), and, unless coalesce, tell the engine that
// no next message can start with it.
type holdTimer struct {
	deliver.Transport
	coalesce         bool
	holds, holdNanos atomic.Int64
}

func (t *holdTimer) Open(ctx context.Context) (deliver.Conn, error) {
	c, err := t.Transport.Open(ctx)
	if err != nil {
		return nil, err
	}
	return &holdTimerConn{Conn: c, t: t}, nil
}

type holdTimerConn struct {
	deliver.Conn
	t *holdTimer
}

func (c *holdTimerConn) Send(ctx context.Context, m *mail.Message, ready deliver.Ready) (bool, error) {
	return c.Conn.Send(ctx, m, func(canOpen bool) (*mail.Message, error) {
		start := time.Now()
		next, err := ready(canOpen && c.t.coalesce)
		c.t.holdNanos.Add(int64(time.Since(start)))
		c.t.holds.Add(1)
		return next, err
	})
}
