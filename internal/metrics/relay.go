package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// relayMetrics are the relay's series: deferred messages by reason and
// whether the relay answers. They exist once a delivery ran (or a daemon
// started), so that a textfile of a build-only command claims nothing.
type relayMetrics struct {
	once      sync.Once
	deferrals *prometheus.CounterVec
	up        prometheus.Gauge
}

func (m *Metrics) relaySeries() *relayMetrics {
	r := &m.relayM
	r.once.Do(func() {
		r.deferrals = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digest_deferrals_total",
			Help: "Messages put off for later, by reason: relay (the relay as a whole failed; no attempt counted), recipient (the reader's own temporary failure, retried later), quota (per_hour or per_day).",
		}, []string{"reason"})
		r.up = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "digest_relay_up", Help: "1 while the SMTP relay answers, 0 while delivery is paused because it does not.",
		})
		m.reg.MustRegister(r.deferrals, r.up)
		r.up.Set(1)
	})
	return r
}

// RelayUp records that the relay went down (false) or answers again (true).
func (m *Metrics) RelayUp(up bool) {
	r := m.relaySeries()
	if up {
		r.up.Set(1)
		return
	}
	r.up.Set(0)
}

// Deferred counts one message put off, by reason (relay, recipient, quota).
func (m *Metrics) Deferred(reason string) {
	m.relaySeries().deferrals.WithLabelValues(reason).Inc()
}
