// Package metrics counts what a run did, in Prometheus form: sources
// fetched (and how), issues built and recipients delivered. A one-shot
// command writes them to a textfile for node_exporter's textfile collector,
// merged with what earlier runs wrote there (counters add up, series this
// run did not touch are kept); a long-running process can serve the same
// registry over HTTP.
package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/digest/digest/internal/atomicfile"
)

// Metrics is one registry of the program's metrics. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	// runtime holds the Go runtime and process collectors of a
	// long-running process (see Runtime). It is served, never written to
	// the textfile: node_exporter has go_* and process_* series of its
	// own, and a one-shot command's would be stale at once.
	runtime     *prometheus.Registry
	runtimeOnce sync.Once

	sourceRuns     *prometheus.CounterVec
	sourceFailures *prometheus.CounterVec
	sourceItems    *prometheus.GaugeVec
	sourceSeconds  *prometheus.GaugeVec
	sourceStreak   *prometheus.GaugeVec
	issueArticles  prometheus.Gauge
	issueHTMLBytes prometheus.Gauge
	issueOnce      sync.Once // the issue gauges exist once an issue was built
	deliveries     *prometheus.CounterVec
	lastRun        *prometheus.GaugeVec
	issuesBuilt    prometheus.Counter
	messages       *prometheus.CounterVec
	deliverySecs   prometheus.Histogram
	deliveryOnce   sync.Once // the histogram exists once a delivery ran

	// The schedule's series exist only in a process that runs one (the
	// daemon), so that a one-shot command's textfile does not claim a
	// schedule.
	scheduleOnce sync.Once
	nextRun      prometheus.Gauge
	lastSuccess  prometheus.Gauge
	skipped      *prometheus.CounterVec
	caughtUp     prometheus.Counter
	active       prometheus.Gauge

	relayM relayMetrics // see relay.go

	bounceOnce sync.Once // the bounce series exist once an event came in
	bounces    *prometheus.CounterVec
}

// New returns an empty registry with every metric declared.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(), runtime: prometheus.NewRegistry(),
		sourceRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digest_source_fetches_total", Help: "Source fetches by outcome (ok, not modified, stale, error).",
		}, []string{"source", "status"}),
		sourceFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digest_source_failures_total", Help: "Source fetches that failed (stale copies included).",
		}, []string{"source"}),
		sourceItems: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "digest_source_items", Help: "Articles the source yielded in its last fetch.",
		}, []string{"source"}),
		sourceSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "digest_source_fetch_seconds", Help: "Time the source's last fetch and parse took.",
		}, []string{"source"}),
		sourceStreak: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "digest_source_failed_runs_in_a_row", Help: "Consecutive failed runs of the source (0 when it worked).",
		}, []string{"source"}),
		issueArticles: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "digest_issue_articles", Help: "Articles in the issue last built.",
		}),
		issueHTMLBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "digest_issue_html_bytes", Help: "Size of the HTML part of the issue last built.",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digest_deliveries_total", Help: "Recipients by delivery outcome in this process (sent, failed, pending).",
		}, []string{"status"}),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "digest_last_run_timestamp_seconds", Help: "When a command last finished, by command and result.",
		}, []string{"command", "result"}),
	}
	m.issuesBuilt = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "digest_issues_built_total", Help: "Issues gathered, rendered and archived (not those loaded back).",
	})
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "digest_messages_total",
		Help: "Delivery outcomes recorded, by outcome (sent, failed, retried, skipped) and reason: accepted for sent, topics for skipped, else the enhanced status code, else the reply code, else no_reply.",
	}, []string{"outcome", "reason"})
	m.deliverySecs = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "digest_delivery_duration_seconds", Help: "Duration of delivery runs.",
		Buckets: []float64{1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400},
	})
	m.nextRun = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "digest_schedule_next_run_timestamp_seconds", Help: "The next scheduled run (0 when none, or standing by).",
	})
	m.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "digest_schedule_last_success_timestamp_seconds", Help: "When a scheduled run last finished without error.",
	})
	m.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "digest_schedule_runs_skipped_total",
		Help: "Scheduled times not run: late (beyond schedule_grace), overlap (previous run still going), missed (passed over for a later one).",
	}, []string{"reason"})
	m.caughtUp = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "digest_schedule_runs_caught_up_total", Help: "Scheduled runs started late, after the time passed unnoticed.",
	})
	m.active = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "digest_daemon_active", Help: "1 when this daemon holds the lease and runs the schedule, 0 when it stands by.",
	})
	m.reg.MustRegister(m.sourceRuns, m.sourceFailures, m.sourceItems, m.sourceSeconds, m.sourceStreak,
		m.deliveries, m.lastRun, m.issuesBuilt, m.messages)
	return m
}

// IssueBuilt counts an issue gathered and rendered.
func (m *Metrics) IssueBuilt() { m.issuesBuilt.Inc() }

// Message counts one recorded delivery outcome: status is the ledger's sent,
// failed, pending (a temporary failure, counted as retried) or skipped
// (nothing in the issue for the reader's topics), with the server's reply
// code and enhanced code for a failure.
func (m *Metrics) Message(status string, code int, enhanced string) {
	switch status {
	case "sent":
		m.messages.WithLabelValues("sent", "accepted").Inc()
		return
	case "skipped":
		m.messages.WithLabelValues("skipped", "topics").Inc()
		return
	case "pending":
		status = "retried"
	}
	reason := "no_reply"
	switch {
	case enhanced != "":
		reason = enhanced
	case code != 0:
		reason = strconv.Itoa(code)
	}
	m.messages.WithLabelValues(status, reason).Inc()
}

// DeliveryRun observes the duration of one delivery run.
func (m *Metrics) DeliveryRun(d time.Duration) {
	m.deliveryOnce.Do(func() { m.reg.MustRegister(m.deliverySecs) })
	m.deliverySecs.Observe(d.Seconds())
}

func (m *Metrics) schedule() {
	m.scheduleOnce.Do(func() { m.reg.MustRegister(m.nextRun, m.lastSuccess, m.skipped, m.caughtUp, m.active) })
}

// NextRun records the next scheduled time; zero means none.
func (m *Metrics) NextRun(t time.Time) {
	m.schedule()
	if t.IsZero() {
		m.nextRun.Set(0)
		return
	}
	m.nextRun.Set(float64(t.Unix()))
}

// Skipped counts n scheduled times not run, by reason.
func (m *Metrics) Skipped(reason string, n int) {
	m.schedule()
	m.skipped.WithLabelValues(reason).Add(float64(n))
}

// CaughtUp counts a run started after its time had passed unnoticed.
func (m *Metrics) CaughtUp() {
	m.schedule()
	m.caughtUp.Inc()
}

// ScheduledRunSucceeded records when a scheduled run finished without error.
func (m *Metrics) ScheduledRunSucceeded(at time.Time) {
	m.schedule()
	m.lastSuccess.Set(float64(at.Unix()))
}

// Active records whether this daemon is the active one (true) or stands by.
func (m *Metrics) Active(active bool) {
	m.schedule()
	if active {
		m.active.Set(1)
		return
	}
	m.active.Set(0)
}

// Registry is the registry, for serving over HTTP.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Runtime adds the standard Go runtime collector (go_goroutines,
// go_memstats_*, go_gc_duration_seconds, …) and process collector
// (process_resident_memory_bytes, process_open_fds, process_cpu_seconds_total,
// …) to what Handler serves, as Prometheus users expect of a Go service. A
// long-running process (the daemon) calls it; WriteFile leaves these series
// out. A second call does nothing.
func (m *Metrics) Runtime() {
	m.runtimeOnce.Do(func() {
		m.runtime.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
	})
}

// Handler serves the registry live in the Prometheus exposition format,
// with the runtime series once Runtime was called.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers{m.reg, m.runtime}, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Source records one fetch of a source. streak is its failed runs in a row,
// or -1 when the caller does not track runs (a check, not a build).
func (m *Metrics) Source(name, status string, items int, took time.Duration, failed bool, streak int) {
	m.sourceRuns.WithLabelValues(name, status).Inc()
	if failed {
		m.sourceFailures.WithLabelValues(name).Inc()
	} else {
		m.sourceFailures.WithLabelValues(name).Add(0) // the series exists from the first run
	}
	m.sourceItems.WithLabelValues(name).Set(float64(items))
	m.sourceSeconds.WithLabelValues(name).Set(took.Seconds())
	if streak >= 0 {
		m.sourceStreak.WithLabelValues(name).Set(float64(streak))
	}
}

// Issue records the issue last built.
func (m *Metrics) Issue(articles, htmlBytes int) {
	m.issueOnce.Do(func() { m.reg.MustRegister(m.issueArticles, m.issueHTMLBytes) })
	m.issueArticles.Set(float64(articles))
	m.issueHTMLBytes.Set(float64(htmlBytes))
}

// Delivered adds a run's outcomes.
func (m *Metrics) Delivered(sent, failed, pending int) {
	m.deliveries.WithLabelValues("sent").Add(float64(sent))
	m.deliveries.WithLabelValues("failed").Add(float64(failed))
	m.deliveries.WithLabelValues("pending").Add(float64(pending))
}

// Finished stamps the end of a command with its result ("ok" or "error").
func (m *Metrics) Finished(command, result string, at time.Time) {
	m.lastRun.WithLabelValues(command, result).Set(float64(at.Unix()))
}

// WriteFile writes the metrics in the Prometheus text format to path,
// atomically (node_exporter's textfile collector wants a .prom suffix). What
// the file already holds is merged in: counters add up across runs, and the
// series this run did not touch (another command's last run, the last
// issue's size) are kept.
func (m *Metrics) WriteFile(path string) error {
	current, err := m.reg.Gather()
	if err != nil {
		return err
	}
	previous, err := readFile(path)
	if err != nil {
		return fmt.Errorf("metrics %s: %w", path, err)
	}
	var buf bytes.Buffer
	for _, f := range merge(previous, current) {
		if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
			return fmt.Errorf("metrics %s: %w", path, err)
		}
	}
	if _, err := os.Stat(filepath.Dir(path)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("metrics %s: the folder %s does not exist", path, filepath.Dir(path))
	}
	if err := atomicfile.Write(path, buf.Bytes(), 0o644, nil); err != nil {
		return fmt.Errorf("metrics %s: %w", path, err)
	}
	return nil
}

// readFile parses an earlier metrics file; a missing one is empty, and an
// unreadable one is started afresh rather than failing every run.
func readFile(path string) (map[string]*dto.MetricFamily, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, nil
	}
	return fams, nil
}

// merge combines an earlier file's families with this run's: a counter
// series present in both is summed, a gauge series takes this run's value,
// and series only in the earlier file are kept. The result is sorted by name.
func merge(previous map[string]*dto.MetricFamily, current []*dto.MetricFamily) []*dto.MetricFamily {
	byName := map[string]*dto.MetricFamily{}
	for _, f := range current {
		byName[f.GetName()] = f
	}
	for name, old := range previous {
		cur, ok := byName[name]
		if !ok {
			byName[name] = old
			continue
		}
		if cur.GetType() != old.GetType() {
			continue // the metric changed kind: start it afresh
		}
		seen := map[string]*dto.Metric{}
		for _, mt := range cur.Metric {
			seen[labelKey(mt)] = mt
		}
		for _, mt := range old.Metric {
			now, ok := seen[labelKey(mt)]
			switch {
			case !ok:
				cur.Metric = append(cur.Metric, proto.Clone(mt).(*dto.Metric))
			case cur.GetType() == dto.MetricType_COUNTER:
				now.Counter.Value = proto.Float64(now.GetCounter().GetValue() + mt.GetCounter().GetValue())
			case cur.GetType() == dto.MetricType_HISTOGRAM:
				addHistogram(now.GetHistogram(), mt.GetHistogram())
			}
		}
	}
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, f := range byName {
		sort.Slice(f.Metric, func(i, j int) bool { return labelKey(f.Metric[i]) < labelKey(f.Metric[j]) })
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

// addHistogram adds an earlier file's observations to h, bucket by bucket
// when both have the same buckets (else h starts afresh). A parsed file
// lists the +Inf bucket, a gathered histogram leaves it implicit.
func addHistogram(h, old *dto.Histogram) {
	if h == nil || old == nil {
		return
	}
	cur, prev := finiteBuckets(h.Bucket), finiteBuckets(old.Bucket)
	if len(cur) != len(prev) {
		return
	}
	for i, b := range cur {
		if b.GetUpperBound() != prev[i].GetUpperBound() {
			return
		}
	}
	for i, b := range cur {
		b.CumulativeCount = proto.Uint64(b.GetCumulativeCount() + prev[i].GetCumulativeCount())
	}
	h.Bucket = cur
	h.SampleCount = proto.Uint64(h.GetSampleCount() + old.GetSampleCount())
	h.SampleSum = proto.Float64(h.GetSampleSum() + old.GetSampleSum())
}

func finiteBuckets(bs []*dto.Bucket) []*dto.Bucket {
	var out []*dto.Bucket
	for _, b := range bs {
		if !math.IsInf(b.GetUpperBound(), +1) {
			out = append(out, b)
		}
	}
	return out
}

// labelKey identifies a series within its family.
func labelKey(m *dto.Metric) string {
	var b bytes.Buffer
	for _, l := range m.GetLabel() {
		fmt.Fprintf(&b, "%s=%q,", l.GetName(), l.GetValue())
	}
	return b.String()
}
