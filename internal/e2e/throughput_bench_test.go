package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/digest/digest/internal/smtptest"
	"github.com/digest/digest/internal/store/storetest"
)

// BenchmarkSendVsBare measures the built binary's `digest send` against a
// bare go-smtp client, in back-to-back pairs: per pair a fresh site of
// DIGEST_BENCH_SUBSCRIBERS readers (default 5000; 18 KB messages), the
// bare client pushing the message as sent (captured once) over
// DIGEST_BENCH_CONNECTIONS connections (default 4) to a discard SMTP
// server, then the binary over as many connections to another. Rates run
// from the first to the last acceptance. It reports the medians over
// DIGEST_BENCH_PAIRS pairs (default 3) of both rates and of their ratio,
// the workers' CPU per message and, on Postgres, the server's; and the
// binary's peak RSS (GNU time). Sub-benchmarks: sqlite (a database file on
// disk) and postgres (DIGEST_TEST_POSTGRES; skipped without it).
// DIGEST_BENCH_RTT (a Go duration, e.g. 1ms) puts a proxy that delays
// each direction by half of it in front of both servers; rtt-ms is the
// round trip measured through it (timers overshoot on a loaded machine).
//
//	go test -run '^$' -bench SendVsBare -benchtime 1x -timeout 60m ./internal/e2e
func BenchmarkSendVsBare(b *testing.B) {
	n := benchEnvInt(b, "DIGEST_BENCH_SUBSCRIBERS", 5000)
	conns := benchEnvInt(b, "DIGEST_BENCH_CONNECTIONS", 4)
	pairs := benchEnvInt(b, "DIGEST_BENCH_PAIRS", 3)
	var rtt time.Duration
	if s := os.Getenv("DIGEST_BENCH_RTT"); s != "" {
		var err error
		if rtt, err = time.ParseDuration(s); err != nil || rtt < 0 {
			b.Fatalf("DIGEST_BENCH_RTT=%q: want a duration", s)
		}
	}
	bin := buildBinary(b)
	for _, ledger := range []string{"sqlite", "postgres"} {
		b.Run(ledger, func(b *testing.B) {
			if ledger == "postgres" && os.Getenv(storetest.EnvPostgres) == "" {
				storetest.PostgresDSN(b) // skips
			}
			for b.Loop() {
				var rs []pairResult
				for range pairs {
					rs = append(rs, sendPair(b, bin, ledger, n, conns, rtt))
				}
				med := func(f func(pairResult) float64) float64 {
					v := make([]float64, len(rs))
					for i, r := range rs {
						v[i] = f(r)
					}
					slices.Sort(v)
					return v[len(v)/2]
				}
				b.ReportMetric(med(func(r pairResult) float64 { return r.rate }), "msg/s")
				b.ReportMetric(med(func(r pairResult) float64 { return r.bare }), "bare-msg/s")
				b.ReportMetric(med(func(r pairResult) float64 { return r.rate / r.bare }), "ratio")
				b.ReportMetric(med(func(r pairResult) float64 { return r.cpu }), "digest-cpu-ms/msg")
				if ledger == "postgres" {
					b.ReportMetric(med(func(r pairResult) float64 { return r.pgCPU }), "postgres-cpu-ms/msg")
				}
				b.ReportMetric(med(func(r pairResult) float64 { return r.rtt }), "rtt-ms")
				if p := med(func(r pairResult) float64 { return r.rssMB }); p > 0 {
					b.ReportMetric(p, "MB-peak-RSS")
				}
				for i, r := range rs {
					b.Logf("pair %d: digest %.0f msg/s, bare %.0f msg/s, ratio %.2f", i+1, r.rate, r.bare, r.rate/r.bare)
				}
			}
		})
	}
}

// pairResult is one pair of BenchmarkSendVsBare.
type pairResult struct {
	rate, bare, cpu, pgCPU, rssMB float64
	rtt                           float64 // ms, NOOP to reply, as measured
}

// sendPair is one pair of BenchmarkSendVsBare: a fresh site and store, the
// bare client, then the binary.
func sendPair(b *testing.B, bin, ledger string, n, conns int, rtt time.Duration) pairResult {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Minute)
	defer cancel()
	var first, last atomic.Int64
	srv := smtptest.New(b, smtptest.WithDiscard(), smtptest.WithOnData(func(string) {
		t := time.Now().UnixNano()
		first.CompareAndSwap(0, t)
		last.Store(t)
	}))
	config, _ := newSite(b, srv, n, conns)
	body, err := os.ReadFile(config)
	if err != nil {
		b.Fatal(err)
	}
	s := strings.Replace(string(body), "delivery: {transport: smtp, lease: "+testLease.String()+"}", "delivery: {transport: smtp}", 1)
	dsn := ""
	if ledger == "postgres" {
		dsn = storetest.PostgresDSN(b)
		s = strings.Replace(s, "database: digest.db\n", "database: "+strconv.Quote(dsn)+"\n", 1)
	}
	port := func(p int) string { return fmt.Sprintf("port: %d,", p) }
	relay := smtptest.DelayProxy(b, srv.Addr, rtt)
	s = strings.Replace(s, port(srv.Port()), port(relay), 1)
	write(b, config, s)
	dir := filepath.Dir(config)
	if out, err := exec.CommandContext(ctx, bin, "build", "--config", config, "--now", now).CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	// The message as sent, captured by a server that keeps it (a copy
	// with --to is not recorded in the ledger).
	keep := smtptest.New(b)
	sample := filepath.Join(dir, "sample.yaml")
	write(b, sample, strings.Replace(s, port(relay), port(keep.Port()), 1))
	if out, err := exec.CommandContext(ctx, bin, "send", "--config", sample, "--now", now, "--to", "sample@example.org").CombinedOutput(); err != nil {
		b.Fatalf("send --to: %v\n%s", err, out)
	}
	msgs := keep.Received("sample@example.org")
	if len(msgs) != 1 {
		b.Fatalf("the sample copy: %d messages", len(msgs))
	}
	base := smtptest.New(b, smtptest.WithDiscard())
	baseAddr := "127.0.0.1:" + strconv.Itoa(smtptest.DelayProxy(b, base.Addr, rtt))
	rttMS := roundTrip(b, baseAddr)
	baseTook := barePush(b, baseAddr, msgs[0], n, conns)

	var pg0 time.Duration
	if dsn != "" {
		pg0, _ = postgresCPU(dsn)
	}
	cmd, rss := timed(b, ctx, bin, "send", "--config", config, "--now", now)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Fatalf("send: %v\n%s", err, out.String())
	}
	if srv.Total() != n {
		b.Fatalf("the server accepted %d messages for %d readers", srv.Total(), n)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	r := pairResult{
		rate: float64(n) / time.Duration(last.Load()-first.Load()).Seconds(),
		bare: float64(n) / baseTook.Seconds(),
		cpu:  float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6 / float64(n),
		rtt:  rttMS,
	}
	if dsn != "" {
		if pg1, ok := postgresCPU(dsn); ok {
			r.pgCPU = float64(pg1-pg0) / 1e6 / float64(n)
		}
	}
	if kb, ok := rss(); ok {
		r.rssMB = kb / 1024
	}
	return r
}

// roundTrip is the mean time in ms of an SMTP NOOP and its reply to addr
// (through the proxy, when there is one): the round trip as it is, timer
// overshoot included.
func roundTrip(b *testing.B, addr string) float64 {
	b.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("bench.local"); err != nil {
		b.Fatal(err)
	}
	const n = 50
	start := time.Now()
	for range n {
		if err := c.Noop(); err != nil {
			b.Fatal(err)
		}
	}
	return float64(time.Since(start)) / 1e6 / n
}
