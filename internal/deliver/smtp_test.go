package deliver_test

import (
	"testing"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/smtptest"
)

// smtp.helo reaches the server's EHLO; without it go-mail gives the host
// name.
func TestSMTPHelo(t *testing.T) {
	t.Parallel()
	for _, helo := range []string{"mx.example.net", ""} {
		srv := smtptest.New(t)
		tr := smtpTransport(t, srv, func(o *deliver.SMTPOptions) { o.HELO = helo })
		sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), newFakeLedger(issueID, 1), tr, fastOptions())
		if err != nil || sum.Sent != 1 {
			t.Fatalf("summary %+v, err %v", sum, err)
		}
		if got := srv.Hello(); helo != "" && got != helo || helo == "" && (got == "" || got == "mx.example.net") {
			t.Errorf("HELO %q: server saw %q", helo, got)
		}
	}
}
