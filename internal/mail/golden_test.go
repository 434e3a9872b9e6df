package mail

import (
	"regexp"
	"testing"

	goldenfile "github.com/digest/digest/internal/golden"
	"github.com/digest/digest/internal/ledger"
)

// TestMessageGolden pins one whole message, byte for byte, apart from the
// random MIME boundary.
func TestMessageGolden(t *testing.T) {
	p, err := testComposer(t, nil).Prepare(testRendered())
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.Build(nil, ledger.Recipient{IssueID: "2026-05-04", SubscriberID: 42, Email: "ada@example.org", Name: "Ada “Countess” Lovelace"})
	if err != nil {
		t.Fatal(err)
	}
	got := regexp.MustCompile(`=_digest_[0-9a-f]+`).ReplaceAll(m.Data, []byte("=_digest_BOUNDARY"))
	goldenfile.Check(t, "message.eml.golden", got)
}
