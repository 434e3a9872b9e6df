package deliver_test

import (
	"testing"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/smtptest"
)

// TestProgressDoesNotCountSkippedAsFailed reproduces a defect found by
// hand: a reader skipped for topics is printed as failed by the progress
// line ("delivering: 5/6 sent, 1 failed") while the summary, the ledger and
// `status` say skipped, never failed.
func TestProgressDoesNotCountSkippedAsFailed(t *testing.T) {
	srv := smtptest.New(t)
	l := newFakeLedger(issueID, 10)
	var last deliver.Progress
	opts := fastOptions()
	opts.Progress = func(p deliver.Progress) { last = p }
	sum, err := deliver.Issue(t.Context(), issueID, skipOdd{testPrepared(t)}, l, smtpTransport(t, srv, nil), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Skipped != 5 || sum.Failed != 0 {
		t.Fatalf("summary %+v", sum)
	}
	if !last.Done || last.Failed != 0 {
		t.Errorf("last progress %+v: reports %d failed, want 0 (5 were skipped, none failed)", last, last.Failed)
	}
}
