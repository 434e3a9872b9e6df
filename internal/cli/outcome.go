package cli

import (
	"fmt"
	"io"

	"github.com/digest/digest/internal/ledger"
)

// printOutcome writes what became of an issue's readers after it was sent.
func printOutcome(w io.Writer, o ledger.IssueOutcome, sent int) {
	if sent == 0 {
		return
	}
	back := o.Hard + o.Soft
	fmt.Fprintf(w, "  after sending: delivered %d (%s), bounced %d (hard %d %s, soft %d), complained %d (%s), unsubscribed %d (%s)\n",
		max(sent-back, 0), rate(sent-back, sent), back, o.Hard, "("+rate(o.Hard, sent)+")", o.Soft,
		o.Complaints, rate(o.Complaints, sent), o.Unsubscribed, rate(o.Unsubscribed, sent))
}

func rate(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(max(n, 0))/float64(of))
}
