package deliver_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/smtptest"
	"github.com/digest/digest/internal/store"
	"github.com/digest/digest/internal/subscriber"
)

// peakRSS reads the process's peak resident set size (VmHWM) in bytes; 0
// where /proc is not available.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkSQLite100k delivers the realistic issue to 100,000 subscribers
// from a real SQLite store (ledger and all) over 4 connections to an
// in-process discard SMTP server, and reports the rate, the ledger writes
// and the peak RSS of the whole process (server included). Run it alone,
// so that the peak is its own:
//
//	go test -run '^$' -bench SQLite100k -benchtime 1x ./internal/deliver
func BenchmarkSQLite100k(b *testing.B) {
	n := 100_000
	if s := os.Getenv("DIGEST_BENCH_SUBSCRIBERS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx := b.Context()
	r := realisticIssue(b)
	comp := benchComposer(b)
	for b.Loop() {
		st, err := store.Open(ctx, filepath.Join(b.TempDir(), "digest.db"))
		if err != nil {
			b.Fatal(err)
		}
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
		rows = nil
		if _, err := st.SaveIssue(ctx, store.Issue{ID: issueID, Subject: r.Subject}); err != nil {
			b.Fatal(err)
		}
		if _, err := st.Enqueue(ctx, issueID); err != nil {
			b.Fatal(err)
		}
		run, err := st.BeginRun(ctx, ledger.Run{ID: "bench", Host: "h", PID: 1, IssueID: issueID}, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		before := peakRSS()
		srv := smtptest.New(b, smtptest.WithDiscard())
		start := time.Now()
		sum, err := deliver.Run(ctx, issueID, prepare(b, comp, r), run, smtpTransport(b, srv, nil), deliver.Options{Connections: 4, Total: n})
		took := time.Since(start)
		if err != nil || sum.Sent != n || srv.Total() != n {
			b.Fatalf("summary %+v, server %d, err %v", sum, srv.Total(), err)
		}
		c, err := st.Counts(ctx, issueID)
		if err != nil || c.Sent != n {
			b.Fatalf("counts %+v, %v", c, err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(n)/took.Seconds(), "msg/s")
		b.ReportMetric(float64(before)/(1<<20), "MB-RSS-before-send")
		b.ReportMetric(float64(peakRSS())/(1<<20), "MB-peak-RSS")
		b.ReportMetric(float64(ms.HeapSys)/(1<<20), "MB-heap-sys")
		_ = st.Close()
	}
}
