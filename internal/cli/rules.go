package cli

import (
	"github.com/digest/digest/internal/plural"
	"strings"

	"github.com/digest/digest/internal/config"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/pipeline"
)

// sourceRules turns the sources' max_items, settle, settle_max and backfill
// into the pipeline's rules, by source name.
func sourceRules(srcs []config.Source) map[string]pipeline.SourceRules {
	out := make(map[string]pipeline.SourceRules, len(srcs))
	for _, s := range srcs {
		r := pipeline.SourceRules{Backfill: -1}
		if s.MaxItems != nil {
			r.MaxItems = *s.MaxItems
		}
		if s.Settle > 0 {
			r.Rules.Settle, r.Rules.SettleMax = s.Settle, s.SettleLimit()
		}
		if s.Backfill != nil {
			r.Backfill = *s.Backfill
		}
		out[s.Name] = r
	}
	return out
}

// heldBack says how many stories the editors' rules kept out of the issue
// and why, or "" when they kept none: "Held back: 2 over max_items (kept
// for the next issue), 1 settling (reasons in issue.json)".
func heldBack(iss issue.Issue) string {
	n := map[issue.Reason]int{}
	for _, o := range iss.Left {
		n[o.Reason]++
	}
	var parts []string
	for _, r := range []struct {
		reason issue.Reason
		say    string
	}{
		{issue.SourceLimit, "over a source's max_items (kept for the next issue)"},
		{issue.OverLimit, "over max_articles (kept for the next issue)"},
		{issue.Settling, "settling"},
		{issue.Backlog, "in a new source's backlog (never sent)"},
	} {
		if n[r.reason] > 0 {
			parts = append(parts, plural.N(n[r.reason], "story", "stories")+" "+r.say)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "Held back: " + strings.Join(parts, ", ") + "; every reason is in issue.json."
}
