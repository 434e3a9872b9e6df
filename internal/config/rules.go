package config

import "time"

// DefaultSettleMax is how long a story that keeps changing waits at most,
// from its first sight, when a source has settle and no settle_max.
const DefaultSettleMax = 24 * time.Hour

// SettleLimit is the source's effective settle_max: as written, or
// DefaultSettleMax (the settle itself when that is longer).
func (s Source) SettleLimit() time.Duration {
	if s.SettleMax > 0 {
		return s.SettleMax
	}
	return max(DefaultSettleMax, s.Settle)
}

// validateSourceRules checks the editors' per-source rules (max_items,
// settle, settle_max, backfill) of one source; key names its keys.
func validateSourceRules(v *validator, key func(string) string, s Source) {
	if s.MaxItems != nil && *s.MaxItems < 1 {
		v.addf(key("max_items"), "must be ≥ 1, got %d (leave it out for no limit)", *s.MaxItems)
	}
	if s.Settle < 0 {
		v.addf(key("settle"), "must not be negative, got %s", s.Settle)
	}
	switch {
	case s.SettleMax < 0:
		v.addf(key("settle_max"), "must be positive, got %s", s.SettleMax)
	case s.SettleMax > 0 && s.SettleMax < s.Settle:
		v.addf(key("settle_max"), "%s is shorter than settle (%s): a story would be taken before it settles", s.SettleMax, s.Settle)
	case s.SettleMax > 0 && s.Settle == 0:
		v.addf(key("settle_max"), "has no effect without settle")
	}
	if s.Backfill != nil && *s.Backfill < 0 {
		v.addf(key("backfill"), "must be ≥ 0, got %d (0 brings none of a new source's older stories; leave it out for all)", *s.Backfill)
	}
}
