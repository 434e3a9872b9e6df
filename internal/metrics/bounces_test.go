package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBounceCounts(t *testing.T) {
	t.Parallel()
	m := New()
	m.Bounce("hard", "smtp", "bounced")
	m.Bounce("hard", "smtp", "bounced")
	m.Bounce("complaint", "postmark", "complained")
	rw := httptest.NewRecorder()
	m.Handler().ServeHTTP(rw, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rw.Body)
	for _, want := range []string{
		`digest_bounce_events_total{action="bounced",kind="hard",source="smtp"} 2`,
		`digest_bounce_events_total{action="complained",kind="complaint",source="postmark"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}
