package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/cli"
)

// peakRSS reads the process's peak resident set size (VmHWM) in bytes; 0
// where /proc is not available.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkImportMillion runs `digest subscribers import` on a CSV of
// 1,000,000 readers (email, name, topics; one row in a thousand a repeat)
// into a new SQLite store, and reports the rows per second and the peak
// RSS of the whole process. Run it alone, so that the peak is its own:
//
//	go test -run '^$' -bench ImportMillion -benchtime 1x ./internal/cli
//
// DIGEST_BENCH_IMPORT_ROWS changes the number of rows.
func BenchmarkImportMillion(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("DIGEST_BENCH_IMPORT_ROWS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	dir := b.TempDir()
	csvPath := filepath.Join(dir, "readers.csv")
	f, err := os.Create(csvPath)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	fmt.Fprintln(bw, "email,name,topics")
	topics := []string{"world", "town", "world;town", ""}
	for i := range n {
		j := i
		if i%1000 == 999 {
			j = i - 1 // a repeat of the previous row's address
		}
		fmt.Fprintf(bw, "Reader%07d@example.org,Reader %d,%s\n", j, i, topics[i%len(topics)])
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	for b.Loop() {
		cfg := filepath.Join(b.TempDir(), "config.yaml")
		err := os.WriteFile(cfg, []byte(`newsletter: {name: Bench, from: bench@example.org, base_url: "https://bench.example.org"}
sources:
  - {name: World, type: feed, url: "https://example.org/w.xml", topics: [world]}
  - {name: Town, type: feed, url: "https://example.org/t.xml", topics: [town]}
delivery: {transport: file}
`), 0o644)
		if err != nil {
			b.Fatal(err)
		}
		var out, errb bytes.Buffer
		start := time.Now()
		err = cli.Run(context.Background(), []string{"subscribers", "import", csvPath, "--config", cfg}, &out, &errb)
		took := time.Since(start)
		if err != nil {
			b.Fatalf("import: %v\n%s", err, errb.String())
		}
		dups := n / 1000
		if want := fmt.Sprintf("%d added, 0 updated, 0 unchanged, %d duplicates, 0 skipped", n-dups, dups); !strings.Contains(out.String(), want) {
			b.Fatalf("summary %q, want %q", out.String(), want)
		}
		b.ReportMetric(float64(n)/took.Seconds(), "rows/s")
		b.ReportMetric(took.Seconds(), "s/import")
		b.ReportMetric(float64(peakRSS())/(1<<20), "MB-peak-RSS")
	}
}
