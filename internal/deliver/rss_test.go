package deliver_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
	deliver100k(b, func(b *testing.B) string { return filepath.Join(b.TempDir(), "digest.db") })
}
