// Package metrics counts what a run did, in Prometheus form: sources
// fetched (and how), issues built and recipients delivered. A one-shot
// command writes them to a textfile for node_exporter's textfile collector;
// a long-running process can serve the same registry over HTTP.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is one registry of the program's metrics. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	sourceRuns     *prometheus.CounterVec
	sourceFailures *prometheus.CounterVec
	sourceItems    *prometheus.GaugeVec
	sourceSeconds  *prometheus.HistogramVec
	sourceStreak   *prometheus.GaugeVec
	issueArticles  prometheus.Gauge
	issueHTMLBytes prometheus.Gauge
	deliveries     *prometheus.CounterVec
	lastRun        *prometheus.GaugeVec
}

// New returns an empty registry with every metric declared.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		sourceRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digest_source_fetches_total", Help: "Source fetches by outcome (ok, not modified, stale, error).",
		}, []string{"source", "status"}),
		sourceFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digest_source_failures_total", Help: "Source fetches that failed (stale copies included).",
		}, []string{"source"}),
		sourceItems: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "digest_source_items", Help: "Articles the source yielded in its last fetch.",
		}, []string{"source"}),
		sourceSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "digest_source_fetch_seconds", Help: "Time to fetch and parse a source.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60},
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
	m.reg.MustRegister(m.sourceRuns, m.sourceFailures, m.sourceItems, m.sourceSeconds, m.sourceStreak,
		m.issueArticles, m.issueHTMLBytes, m.deliveries, m.lastRun)
	return m
}

// Registry is the registry, for serving over HTTP.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

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
	m.sourceSeconds.WithLabelValues(name).Observe(took.Seconds())
	if streak >= 0 {
		m.sourceStreak.WithLabelValues(name).Set(float64(streak))
	}
}

// Issue records the issue last built.
func (m *Metrics) Issue(articles, htmlBytes int) {
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
// atomically (node_exporter's textfile collector wants a .prom suffix).
func (m *Metrics) WriteFile(path string) error {
	return prometheus.WriteToTextfile(path, m.reg)
}
