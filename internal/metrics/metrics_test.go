package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/metrics"
)

func TestWriteFile(t *testing.T) {
	m := metrics.New()
	m.Source("World", "ok", 12, 150*time.Millisecond, false, 0)
	m.Source("Gone", "error", 0, 2*time.Second, true, 3)
	m.Issue(12, 41_000)
	m.Delivered(40, 1, 2)
	m.Finished("send", "ok", time.Unix(1_800_000_000, 0))
	path := filepath.Join(t.TempDir(), "digest.prom")
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		`digest_source_fetches_total{source="World",status="ok"} 1`,
		`digest_source_fetches_total{source="Gone",status="error"} 1`,
		`digest_source_failures_total{source="Gone"} 1`,
		`digest_source_failures_total{source="World"} 0`,
		`digest_source_failed_runs_in_a_row{source="Gone"} 3`,
		`digest_source_items{source="World"} 12`,
		`digest_issue_articles 12`,
		`digest_deliveries_total{status="sent"} 40`,
		`digest_deliveries_total{status="failed"} 1`,
		`digest_last_run_timestamp_seconds{command="send",result="ok"} 1.8e+09`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics lack %q:\n%s", want, got)
		}
	}
}

// Each command writes the file anew; what earlier runs wrote must survive:
// counters add up, untouched series are kept.
func TestWriteFileMergesRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "digest.prom")
	send := func(sent int, at int64) {
		m := metrics.New()
		m.Source("World", "ok", 10, time.Second, false, 0)
		m.Issue(10, 40_000)
		m.Delivered(sent, 0, 0)
		m.Finished("send", "ok", time.Unix(at, 0))
		if err := m.WriteFile(path); err != nil {
			t.Fatal(err)
		}
	}
	send(40, 1_800_000_000)
	send(2, 1_800_000_100)
	list := metrics.New()
	list.Finished("subscribers", "ok", time.Unix(1_800_000_200, 0))
	if err := list.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		`digest_deliveries_total{status="sent"} 42`,
		`digest_source_fetches_total{source="World",status="ok"} 2`,
		`digest_issue_articles 10`,
		`digest_last_run_timestamp_seconds{command="send",result="ok"} 1.8000001e+09`,
		`digest_last_run_timestamp_seconds{command="subscribers",result="ok"} 1.8000002e+09`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("merged metrics lack %q:\n%s", want, got)
		}
	}
	// A corrupt file is replaced, not fatal.
	if err := os.WriteFile(path, []byte("not { metrics"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := list.WriteFile(path); err != nil {
		t.Fatalf("corrupt earlier file: %v", err)
	}
}

func TestDaemonMetrics(t *testing.T) {
	m := metrics.New()
	m.IssueBuilt()
	m.Message("sent", 0, "")
	m.Message("sent", 0, "")
	m.Message("failed", 550, "5.1.1")
	m.Message("failed", 554, "")
	m.Message("pending", 451, "4.7.1")
	m.Message("pending", 0, "")
	m.Message("skipped", 0, "")
	m.DeliveryRun(3 * time.Second)
	m.Source("World", "error", 0, time.Second, true, 1)
	m.NextRun(time.Unix(1_800_000_600, 0))
	m.ScheduledRunSucceeded(time.Unix(1_800_000_000, 0))
	m.Skipped("late", 1)
	m.Skipped("missed", 3)
	m.CaughtUp()
	m.Active(true)

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		`digest_issues_built_total 1`,
		`digest_messages_total{outcome="sent",reason="accepted"} 2`,
		`digest_messages_total{outcome="failed",reason="5.1.1"} 1`,
		`digest_messages_total{outcome="failed",reason="554"} 1`,
		`digest_messages_total{outcome="retried",reason="4.7.1"} 1`,
		`digest_messages_total{outcome="retried",reason="no_reply"} 1`,
		`digest_messages_total{outcome="skipped",reason="topics"} 1`,
		`digest_delivery_duration_seconds_count 1`,
		`digest_delivery_duration_seconds_bucket{le="5"} 1`,
		`digest_source_failures_total{source="World"} 1`,
		`digest_schedule_next_run_timestamp_seconds 1.8000006e+09`,
		`digest_schedule_last_success_timestamp_seconds 1.8e+09`,
		`digest_schedule_runs_skipped_total{reason="late"} 1`,
		`digest_schedule_runs_skipped_total{reason="missed"} 3`,
		`digest_schedule_runs_caught_up_total 1`,
		`digest_daemon_active 1`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("served metrics lack %q:\n%s", want, got)
		}
	}
}

// A one-shot command claims no schedule: the schedule's series appear only
// once something of the schedule was recorded.
func TestNoScheduleSeriesUnlessUsed(t *testing.T) {
	m := metrics.New()
	m.Finished("send", "ok", time.Unix(1_800_000_000, 0))
	path := filepath.Join(t.TempDir(), "digest.prom")
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"digest_schedule_", "digest_daemon_active", "digest_delivery_duration_seconds"} {
		if strings.Contains(string(b), name) {
			t.Errorf("a send's metrics file has %s:\n%s", name, b)
		}
	}
}

func TestWriteFileMergesHistograms(t *testing.T) {
	path := filepath.Join(t.TempDir(), "digest.prom")
	for _, d := range []time.Duration{2 * time.Second, 20 * time.Second} {
		m := metrics.New()
		m.DeliveryRun(d)
		if err := m.WriteFile(path); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`digest_delivery_duration_seconds_count 2`,
		`digest_delivery_duration_seconds_sum 22`,
		`digest_delivery_duration_seconds_bucket{le="5"} 1`,
		`digest_delivery_duration_seconds_bucket{le="60"} 2`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("merged histogram lacks %q:\n%s", want, b)
		}
	}
}

// A long-running process serves the Go runtime and process series that
// Prometheus users expect; the textfile never carries them.
func TestRuntimeCollectors(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.Runtime()
	m.Runtime() // a second call must not register twice (it would panic)
	m.Issue(3, 1000)

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"\ngo_goroutines ",
		"\ngo_memstats_alloc_bytes ",
		"\ngo_memstats_heap_inuse_bytes ",
		"\ngo_gc_duration_seconds{",
		"\ngo_info{",
		"\nprocess_resident_memory_bytes ",
		"\nprocess_open_fds ",
		"\nprocess_cpu_seconds_total ",
		"\ndigest_issue_articles 3",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
	if t.Failed() {
		t.Logf("scraped:\n%s", got)
	}

	path := filepath.Join(t.TempDir(), "digest.prom")
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"go_", "process_"} {
		if strings.Contains("\n"+string(file), "\n"+prefix) {
			t.Errorf("the textfile carries %s* series:\n%s", prefix, file)
		}
	}
	if !strings.Contains(string(file), "digest_issue_articles 3") {
		t.Errorf("the textfile lost the digest series:\n%s", file)
	}
}

// Without Runtime (a one-shot command), nothing of the runtime is served.
func TestNoRuntimeByDefault(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if strings.Contains(rec.Body.String(), "go_goroutines") {
		t.Errorf("runtime series served without Runtime:\n%s", rec.Body.String())
	}
}
