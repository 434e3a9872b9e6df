package metrics

import "github.com/prometheus/client_golang/prometheus"

// Bounce counts one returned message or ESP event: its kind (hard, soft,
// delayed, delivered, complaint, sender-block, auto-reply, unmatched), the
// way it came in (receive, smtp, imap, postmark, mailgun, sendgrid, ses, or
// refused for a message refused before it was read: too large, too fast)
// and what the policy did (bounced, complained, scored, reset, none,
// duplicate).
func (m *Metrics) Bounce(kind, source, action string) {
	m.bounceOnce.Do(func() {
		m.bounces = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digest_bounce_events_total",
			Help: "Returned mail, complaints and ESP events, by kind, source and what the policy did.",
		}, []string{"kind", "source", "action"})
		m.reg.MustRegister(m.bounces)
	})
	m.bounces.WithLabelValues(kind, source, action).Inc()
}
