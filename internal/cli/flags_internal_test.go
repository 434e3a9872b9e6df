package cli

import (
	"errors"
	"testing"
	"time"
)

// --now is parsed in one place, the flag code, for every command that takes
// it: the command's clock and the store's stamps follow it.
func TestNowFlagSetsTheClock(t *testing.T) {
	t.Parallel()
	want := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		args []string
		err  error
	}{
		{args: []string{"--now", "2026-11-30T08:00:00Z"}},
		{args: []string{"--now", " 2026-11-30T09:00:00+01:00 "}},
		{args: []string{"--now", "monday"}, err: ErrUsage},
	} {
		e := &env{configPath: "config.yaml"}
		_, err := newFlags(e, "sources check", true).parse(e, tt.args, 0, 0)
		if !errors.Is(err, tt.err) {
			t.Fatalf("%q: err %v, want %v", tt.args, err, tt.err)
		}
		if err != nil {
			if e.clock != nil {
				t.Errorf("%q: a bad --now set the clock", tt.args)
			}
			continue
		}
		if e.clock == nil || !e.now().Equal(want) {
			t.Errorf("%q: clock says %v, want %v", tt.args, e.now(), want)
		}
	}
	e := &env{configPath: "config.yaml"}
	if _, err := newFlags(e, "build", true).parse(e, nil, 0, 0); err != nil || e.clock != nil {
		t.Errorf("without --now: err %v, clock set %v", err, e.clock != nil)
	}
}
