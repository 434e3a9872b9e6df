package mail

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/digest/digest/internal/ledger"
)

var update = flag.Bool("update", false, "update golden files")

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
	path := filepath.Join("testdata", "message.eml.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("message differs from %s (run go test -update after checking the change)\ngot:\n%s", path, got)
	}
}
