package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/digest/digest/internal/smtptest"
	"github.com/digest/digest/internal/store/storetest"
)

// benchEnvInt reads a positive integer from the environment, else def.
func benchEnvInt(b *testing.B, name string, def int) int {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// BenchmarkPostgresWorkers measures the real binary delivering one issue
// from Postgres (DIGEST_TEST_POSTGRES; skipped without it) to an
// in-process discard SMTP server, with 1, 2 and 4 `digest send --worker`
// processes started at once. Per round it imports the subscribers with
// `digest subscribers import` into a fresh schema, builds the issue, pushes
// the same number of messages of the same bytes over the same number of
// connections with a bare go-smtp client (the baseline), then runs the
// workers. It reports:
//
//   - msg/s: messages accepted per second, first to last acceptance;
//   - baseline-msg/s and ratio (workers' rate over the baseline's);
//   - cpu-ms/msg of the workers, of Postgres (the server process and its
//     backends, read from /proc) and of this process (the SMTP sink);
//   - MB-worker-peak-RSS: the largest peak RSS of one worker, as
//     /usr/bin/time reports it (not reported without it);
//   - import-s and MB-import-peak-RSS for the import.
//
// Run it alone on the machine, and more than once (-count):
//
//	go test -run '^$' -bench PostgresWorkers -benchtime 1x -timeout 30m ./internal/e2e
//
// DIGEST_BENCH_SUBSCRIBERS (default 100000) and DIGEST_BENCH_CONNECTIONS
// (per worker, default 4) change the load; DIGEST_BENCH_WORKERS=N runs only
// N workers.
func BenchmarkPostgresWorkers(b *testing.B) {
	n := benchEnvInt(b, "DIGEST_BENCH_SUBSCRIBERS", 100_000)
	conns := benchEnvInt(b, "DIGEST_BENCH_CONNECTIONS", 4)
	counts := []int{1, 2, 4}
	if os.Getenv("DIGEST_BENCH_WORKERS") != "" {
		counts = []int{benchEnvInt(b, "DIGEST_BENCH_WORKERS", 1)}
	}
	if os.Getenv(storetest.EnvPostgres) == "" {
		storetest.PostgresDSN(b) // skips
	}
	bin := buildBinary(b)
	for _, workers := range counts {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			for b.Loop() {
				scaleRound(b, bin, n, conns, workers)
			}
		})
	}
}

// scaleRound is one round of BenchmarkPostgresWorkers.
func scaleRound(b *testing.B, bin string, n, conns, workers int) {
	b.StopTimer()
	defer b.StartTimer() // b.Loop wants it running
	ctx, cancel := context.WithTimeout(b.Context(), 20*time.Minute)
	defer cancel()
	var first, last atomic.Int64
	srv := smtptest.New(b, smtptest.WithDiscard(), smtptest.WithOnData(func(string) {
		now := time.Now().UnixNano()
		first.CompareAndSwap(0, now)
		last.Store(now)
	}))
	config, _ := newSite(b, srv, n, conns)
	dsn := storetest.PostgresDSN(b)
	body, err := os.ReadFile(config)
	if err != nil {
		b.Fatal(err)
	}
	s := strings.Replace(string(body), "database: digest.db\n", "database: "+strconv.Quote(dsn)+"\n", 1)
	s = strings.Replace(s, "subscribers_csv: subscribers.csv\n", "", 1)
	s = strings.Replace(s, "delivery: {transport: smtp, lease: "+testLease.String()+"}", "delivery: {transport: smtp}", 1)
	write(b, config, s)
	dir := filepath.Dir(config)

	// The import, timed alone.
	imp, impRSS := timed(b, ctx, bin, "subscribers", "import", "--config", config, filepath.Join(dir, "subscribers.csv"))
	began := time.Now()
	if out, err := imp.CombinedOutput(); err != nil {
		b.Fatalf("import: %v\n%s", err, out)
	}
	b.ReportMetric(time.Since(began).Seconds(), "import-s")
	if kb, ok := impRSS(); ok {
		b.ReportMetric(kb/1024, "MB-import-peak-RSS")
	}
	if out, err := exec.CommandContext(ctx, bin, "build", "--config", config, "--now", now).CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}

	// One message as sent, captured by a server that keeps it: the
	// baseline pushes these bytes.
	keep := smtptest.New(b)
	sample := filepath.Join(dir, "sample.yaml")
	write(b, sample, strings.Replace(s, fmt.Sprintf("port: %d,", srv.Port()), fmt.Sprintf("port: %d,", keep.Port()), 1))
	if out, err := exec.CommandContext(ctx, bin, "send", "--config", sample, "--now", now, "--to", "sample@example.org").CombinedOutput(); err != nil {
		b.Fatalf("send --to: %v\n%s", err, out)
	}
	msgs := keep.Received("sample@example.org")
	if len(msgs) != 1 {
		b.Fatalf("the sample copy: %d messages", len(msgs))
	}
	msg := msgs[0]
	base := smtptest.New(b, smtptest.WithDiscard())
	baseTook := barePush(b, base.Addr, msg, n, conns)

	pg0, pgOK := postgresCPU(dsn)
	self0 := selfCPU()
	b.StartTimer()
	procs := make([]*exec.Cmd, workers)
	rss := make([]func() (float64, bool), workers)
	outs := make([]bytes.Buffer, workers)
	for i := range procs {
		procs[i], rss[i] = timed(b, ctx, bin, "send", "--config", config, "--now", now, "--worker")
		procs[i].Stdout, procs[i].Stderr = &outs[i], &outs[i]
		if err := procs[i].Start(); err != nil {
			b.Fatal(err)
		}
	}
	var workerCPU time.Duration
	var peak float64
	peakOK := false
	for i, p := range procs {
		if err := p.Wait(); err != nil {
			b.Errorf("worker pid %d: %v\n%s", p.Process.Pid, err, outs[i].String())
		}
		ru := p.ProcessState.SysUsage().(*syscall.Rusage)
		workerCPU += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		if kb, ok := rss[i](); ok {
			peak, peakOK = max(peak, kb), true
		}
	}
	b.StopTimer()
	pg1, _ := postgresCPU(dsn)
	sinkCPU := selfCPU() - self0
	if srv.Total() != n {
		b.Fatalf("the server accepted %d messages for %d subscribers", srv.Total(), n)
	}
	took := time.Duration(last.Load() - first.Load())
	rate := float64(n) / took.Seconds()
	baseRate := float64(n) / baseTook.Seconds()
	b.ReportMetric(rate, "msg/s")
	b.ReportMetric(baseRate, "baseline-msg/s")
	b.ReportMetric(rate/baseRate, "ratio")
	b.ReportMetric(float64(len(msg)), "bytes/msg")
	perMsg := func(d time.Duration) float64 { return float64(d) / 1e6 / float64(n) }
	b.ReportMetric(perMsg(workerCPU), "workers-cpu-ms/msg")
	if pgOK {
		b.ReportMetric(perMsg(pg1-pg0), "postgres-cpu-ms/msg")
	} else {
		b.Logf("no postgres process with port %s on its command line here: its CPU is not reported", pgPort(dsn))
	}
	b.ReportMetric(perMsg(sinkCPU), "sink-cpu-ms/msg")
	if peakOK {
		b.ReportMetric(peak/1024, "MB-worker-peak-RSS")
	}
}

// timeCmd is GNU time, which reports a child's peak RSS. (The ru_maxrss
// that this process gets from wait is no good: Go starts a child with
// vfork, and the kernel counts the parent's RSS, shared until exec, as the
// child's peak.)
const timeCmd = "/usr/bin/time"

// timed is exec.CommandContext(ctx, bin, args...) run under GNU time when
// this machine has it, and a function that reads the peak RSS in KiB that
// time wrote once the command has finished (ok false without time).
func timed(b *testing.B, ctx context.Context, bin string, args ...string) (*exec.Cmd, func() (float64, bool)) {
	b.Helper()
	if _, err := os.Stat(timeCmd); err != nil {
		return exec.CommandContext(ctx, bin, args...), func() (float64, bool) { return 0, false }
	}
	f, err := os.CreateTemp(b.TempDir(), "rss-")
	if err != nil {
		b.Fatal(err)
	}
	f.Close()
	cmd := exec.CommandContext(ctx, timeCmd, append([]string{"-f", "%M", "-o", f.Name(), bin}, args...)...)
	return cmd, func() (float64, bool) {
		raw, err := os.ReadFile(f.Name())
		if err != nil {
			return 0, false
		}
		kb, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
		return kb, err == nil
	}
}

// barePush sends msg to n recipients over conns connections with the bare
// go-smtp client (MAIL, RCPT, DATA per message; no ledger, no building) and
// returns the time from the first to the last acceptance.
func barePush(b *testing.B, addr string, msg []byte, n, conns int) time.Duration {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := time.Now()
	for range conns {
		wg.Go(func() {
			c, err := smtp.Dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = c.Quit() }()
			if err := c.Hello("bench.local"); err != nil {
				errs <- err
				return
			}
			for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
				if err := c.SendMail("digest@example.org", []string{fmt.Sprintf("reader%d@example.org", i)}, bytes.NewReader(msg)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return time.Since(start)
}

// selfCPU is this process's CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pgPort is the port of the DSN's server.
func pgPort(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Port() != "" {
		return u.Port()
	}
	return "5432"
}

// postgresCPU is the CPU time so far of the Postgres server listening on
// the DSN's port: its postmaster (with the backends it reaped) and its
// live children, from /proc. ok is false when no postgres process on this
// machine has that port on its command line (pg.sh's servers have).
func postgresCPU(dsn string) (d time.Duration, ok bool) {
	port := pgPort(dsn)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	type stat struct {
		ppid                         int
		utime, stime, cutime, cstime int64
	}
	stats := map[int]stat{}
	postmaster := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		i := strings.LastIndexByte(string(raw), ')')
		if i < 0 || !strings.Contains(string(raw[:i]), "(postgres") {
			continue
		}
		f := strings.Fields(string(raw[i+1:]))
		if len(f) < 15 {
			continue
		}
		num := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
		stats[pid] = stat{ppid: int(num(1)), utime: num(11), stime: num(12), cutime: num(13), cstime: num(14)}
		args, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if slices.Contains(strings.Split(string(args), "\x00"), port) {
			postmaster = pid
		}
	}
	if postmaster == 0 {
		return 0, false
	}
	pm := stats[postmaster]
	ticks := pm.utime + pm.stime + pm.cutime + pm.cstime
	for _, st := range stats {
		if st.ppid == postmaster {
			ticks += st.utime + st.stime
		}
	}
	return time.Duration(ticks) * time.Second / 100, true // USER_HZ
}

// BenchmarkPostgresImport runs `digest subscribers import` of a CSV of
// 1,000,000 readers (email, name, topics; one row in a thousand repeats an
// address) into a fresh Postgres schema (DIGEST_TEST_POSTGRES; skipped
// without it), and reports the time and the importer's peak RSS (GNU
// time):
//
//	go test -run '^$' -bench PostgresImport -benchtime 1x ./internal/e2e
//
// DIGEST_BENCH_IMPORT_ROWS changes the number of rows.
func BenchmarkPostgresImport(b *testing.B) {
	n := benchEnvInt(b, "DIGEST_BENCH_IMPORT_ROWS", 1_000_000)
	if os.Getenv(storetest.EnvPostgres) == "" {
		storetest.PostgresDSN(b) // skips
	}
	bin := buildBinary(b)
	dir := b.TempDir()
	csvPath := filepath.Join(dir, "readers.csv")
	var csv bytes.Buffer
	csv.WriteString("email,name,topics\n")
	topics := []string{"world", "town", "world;town", ""}
	for i := range n {
		j := i
		if i%1000 == 999 {
			j = i - 1
		}
		fmt.Fprintf(&csv, "Reader%07d@example.org,Reader %d,%s\n", j, i, topics[i%len(topics)])
	}
	write(b, csvPath, csv.String())
	csv = bytes.Buffer{}
	for b.Loop() {
		b.StopTimer()
		config := filepath.Join(b.TempDir(), "config.yaml")
		write(b, config, fmt.Sprintf(`newsletter: {name: Bench, from: bench@example.org, base_url: "https://bench.example.org"}
sources:
  - {name: World, type: feed, url: "https://example.org/w.xml", topics: [world]}
  - {name: Town, type: feed, url: "https://example.org/t.xml", topics: [town]}
database: %s
delivery: {transport: file}
`, strconv.Quote(storetest.PostgresDSN(b))))
		cmd, rss := timed(b, b.Context(), bin, "subscribers", "import", csvPath, "--config", config)
		b.StartTimer()
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		if err != nil {
			b.Fatalf("import: %v\n%s", err, out)
		}
		dups := n / 1000
		if want := fmt.Sprintf("%d added, 0 updated, 0 unchanged, %d duplicates, 0 skipped", n-dups, dups); !strings.Contains(string(out), want) {
			b.Fatalf("summary %q, want %q", out, want)
		}
		b.ReportMetric(float64(n)/took.Seconds(), "rows/s")
		b.ReportMetric(took.Seconds(), "s/import")
		if kb, ok := rss(); ok {
			b.ReportMetric(kb/1024, "MB-peak-RSS")
		}
	}
}
