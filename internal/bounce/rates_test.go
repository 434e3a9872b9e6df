package bounce

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/digest/digest/internal/ledger"
)

type fixedRates struct {
	o ledger.IssueOutcome
	c ledger.Counts
}

func (f fixedRates) IssueOutcome(context.Context, string) (ledger.IssueOutcome, error) {
	return f.o, nil
}
func (f fixedRates) Counts(context.Context, string) (ledger.Counts, error) { return f.c, nil }

// The warner speaks once per issue and kind, and only past the limit.
func TestRateWarner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    ledger.IssueOutcome
		ev   Event
		want []string
	}{
		{"complaints at the limit", ledger.IssueOutcome{Complaints: 1}, complaint("i1"), nil},
		{"complaints past it", ledger.IssueOutcome{Complaints: 2}, complaint("i1"), []string{"complaint rate over its limit"}},
		{"hard bounces past 5%", ledger.IssueOutcome{Hard: 51}, hard("i1"), []string{"hard bounce rate over its limit"}},
		{"a duplicate changes nothing", ledger.IssueOutcome{Hard: 51}, Event{Verdict: Verdict{Kind: Hard}, Reader: Reader{IssueID: "i1"}, Action: ActionDuplicate}, nil},
		{"a soft bounce is not looked at", ledger.IssueOutcome{Hard: 51}, Event{Verdict: Verdict{Kind: Soft}, Reader: Reader{IssueID: "i1"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var log bytes.Buffer
			w := &RateWarner{Store: fixedRates{tt.o, ledger.Counts{Sent: 1000}}, Logger: slog.New(slog.NewTextHandler(&log, nil))}
			w.Check(context.Background(), tt.ev)
			w.Check(context.Background(), tt.ev) // once only
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
				for _, want := range []string{"complaint rate over its limit", "hard bounce rate over its limit"} {
					if strings.Contains(l, want) {
						got = append(got, want)
					}
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("warned %q, want %q\n%s", got, tt.want, log.String())
			}
		})
	}
}

func complaint(issue string) Event {
	return Event{Verdict: Verdict{Kind: Complaint}, Reader: Reader{IssueID: issue}}
}

func hard(issue string) Event {
	return Event{Verdict: Verdict{Kind: Hard}, Reader: Reader{IssueID: issue}}
}
