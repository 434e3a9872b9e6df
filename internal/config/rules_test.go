package config

import (
	"strings"
	"testing"
	"time"
)

func TestSourceRules(t *testing.T) {
	_, err := Load("testdata/source_rules.yaml", nil)
	if err == nil {
		t.Fatal("Load succeeded, want errors")
	}
	want := []string{
		"testdata/source_rules.yaml:7: sources[1].max_items: must be ≥ 1, got 0 (leave it out for no limit)",
		"testdata/source_rules.yaml:7: sources[1].backfill: must be ≥ 0, got -1",
		"testdata/source_rules.yaml:8: sources[2].settle_max: 1h0m0s is shorter than settle (3h0m0s)",
		"testdata/source_rules.yaml:9: sources[3].settle: must not be negative, got -1m0s",
		"testdata/source_rules.yaml:10: sources[4].max_items: ",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("message lacks %q; got:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "sources[0]") {
		t.Errorf("a valid source is reported:\n%s", msg)
	}
	if n := len(strings.Split(msg, "\n")); n != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", n, len(want), msg)
	}
}

func TestSettleLimit(t *testing.T) {
	tests := []struct {
		settle, max, want time.Duration
	}{
		{2 * time.Hour, 0, DefaultSettleMax},
		{2 * time.Hour, 6 * time.Hour, 6 * time.Hour},
		{48 * time.Hour, 0, 48 * time.Hour}, // never shorter than settle
	}
	for _, tt := range tests {
		if got := (Source{Settle: tt.settle, SettleMax: tt.max}).SettleLimit(); got != tt.want {
			t.Errorf("settle %s, settle_max %s: SettleLimit() = %s, want %s", tt.settle, tt.max, got, tt.want)
		}
	}
}
