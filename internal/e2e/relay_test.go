package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/smtptest"
)

// The relay fails when the daemon's first run starts, either refusing
// sessions (421) or answering the same 451 to every recipient: the run
// pauses, /healthz says degraded (still 200) with the reply and since
// when, /metrics shows the relay down and the deferrals; once the relay
// answers, everyone is delivered once with no attempt spent on the outage
// (no "retried" outcome), and the log has one line for the start and one
// for the end.
func TestDaemonWaitsOutARelayOutage(t *testing.T) {
	skipWithoutSignals(t)
	bin := buildBinary(t)
	for _, tt := range []struct{ name, reply string }{{"421 sessions", "421"}, {"451 to everyone", "451"}} {
		t.Run(tt.name, func(t *testing.T) {
			var down atomic.Bool
			down.Store(true)
			srv := smtptest.New(t, smtptest.WithFaults(func(string, int) smtptest.Fault {
				if tt.reply == "451" && down.Load() {
					return smtptest.Fault{Rcpt: smtptest.Reply(451, 4, 3, 0, "queue file write error")}
				}
				return smtptest.Fault{}
			}))
			if tt.reply == "421" {
				srv.Refuse(smtptest.Reply(421, 4, 3, 2, "shutting down for maintenance"))
			}
			site := newDaemonSite(t, srv, 20, 2, "@every 2s")
			d := startDaemon(t, bin, site.config, site.port)

			var body struct {
				Status string `json:"status"`
				Relay  *struct {
					Status    string    `json:"status"`
					Since     time.Time `json:"since"`
					LastReply string    `json:"last_reply"`
				} `json:"relay"`
			}
			code := 0
			until(t, "healthz to say degraded", func() bool {
				resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", d.port))
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				code = resp.StatusCode
				return json.NewDecoder(resp.Body).Decode(&body) == nil && body.Status == "degraded"
			})
			if code != http.StatusOK || body.Relay == nil || !strings.Contains(body.Relay.LastReply, tt.reply) || body.Relay.Since.IsZero() {
				t.Errorf("healthz %d %+v, want 200 degraded with the %s and since when", code, body.Relay, tt.reply)
			}
			m := d.get("/metrics")
			for _, want := range []string{"digest_relay_up 0", `digest_deferrals_total{reason="relay"}`} {
				if !strings.Contains(m, want) {
					t.Errorf("metrics lack %q while the relay is down", want)
				}
			}

			back := time.Now()
			srv.Refuse(nil)
			down.Store(false)
			until(t, "every reader served", func() bool { return srv.Total() >= len(site.emails) })
			t.Logf("delivered everyone %s after the relay came back", time.Since(back).Round(time.Millisecond))
			exactlyOnce(t, srv, site.emails, 0)
			until(t, "healthz active again", func() bool { return d.health().Status == "active" })
			m = d.get("/metrics")
			if !strings.Contains(m, "digest_relay_up 1") || strings.Contains(m, `outcome="retried"`) {
				t.Errorf("after the outage, metrics:\n%s", m)
			}
			if n := len(d.logLines("relay unavailable: pausing delivery until it answers again")); n != 1 {
				t.Errorf("%d log lines for the outage's start, want 1", n)
			}
			if n := len(d.logLines("relay answers again: delivery resumes")); n != 1 {
				t.Errorf("%d log lines for the outage's end, want 1", n)
			}
			d.stop()
		})
	}
}
