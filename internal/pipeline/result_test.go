package pipeline_test

import (
	"errors"
	"testing"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/source"
)

// A Deliver result is read in one place: send and the daemon print what
// Outcome and Err say, so that they cannot disagree (a partial source is
// not a failed one).
func TestResultOutcome(t *testing.T) {
	failed := pipeline.SourceResult{Name: "a", Err: errors.New("HTTP 500")}
	partial := pipeline.SourceResult{Name: "b", Err: &source.Error{Kind: "markdown", Source: "b", Problems: []error{errors.New("bad.md")}, Partial: true}}
	ok := pipeline.SourceResult{Name: "c"}
	full := &pipeline.Built{Issue: issue.Issue{ID: "w1", Sections: []issue.Section{{Name: "N", Articles: make([]article.Article, 1)}}}}
	busy := &ledger.BusyError{Runs: []ledger.RunInfo{{ID: "r", IssueID: "w1"}}}
	run := ledger.RunInfo{ID: "me"}
	tests := []struct {
		name    string
		res     pipeline.Result
		want    pipeline.Outcome
		err     error // errors.Is target; nil: none
		anyErr  bool
		allFail bool
	}{
		{"nothing to resume", pipeline.Result{}, pipeline.OutcomeNone, nil, false, false},
		{"busy", pipeline.Result{Busy: busy}, pipeline.OutcomeBusy, nil, true, false},
		{"nothing new, every source failed", pipeline.Result{Built: &pipeline.Built{Sources: []pipeline.SourceResult{failed}}},
			pipeline.OutcomeNothingNew, pipeline.ErrEverySourceFailed, true, true},
		{"nothing new, only a partial source", pipeline.Result{Built: &pipeline.Built{Sources: []pipeline.SourceResult{partial}}},
			pipeline.OutcomeNothingNew, nil, false, false},
		{"nothing new, one failed one fine", pipeline.Result{Built: &pipeline.Built{Sources: []pipeline.SourceResult{failed, ok}}},
			pipeline.OutcomeNothingNew, nil, false, false},
		{"already", pipeline.Result{Built: full, Already: true}, pipeline.OutcomeAlready, nil, false, false},
		{"not started", pipeline.Result{Built: full}, pipeline.OutcomeNotStarted, nil, false, false},
		{"pending left", pipeline.Result{Built: full, Run: run, Counts: ledger.Counts{Pending: 2, Sent: 1}}, pipeline.OutcomePendingLeft, nil, true, false},
		{"delivered", pipeline.Result{Built: full, Run: run, Counts: ledger.Counts{Sent: 3}}, pipeline.OutcomeDelivered, nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.res.Outcome(); got != tt.want {
				t.Errorf("Outcome() = %q, want %q", got, tt.want)
			}
			err := tt.res.Err()
			if (err != nil) != tt.anyErr || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Errorf("Err() = %v, want error %v (%v)", err, tt.anyErr, tt.err)
			}
			if got := tt.res.Built.AllSourcesFailed(); got != tt.allFail {
				t.Errorf("AllSourcesFailed() = %v, want %v", got, tt.allFail)
			}
		})
	}
}
