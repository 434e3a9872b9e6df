package cli

import (
	"github.com/digest/digest/internal/config"
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
