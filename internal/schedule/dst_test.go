package schedule_test

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/digest/digest/internal/schedule"
)

// TestDaylightSavingTimes pins what a schedule does on the two changes
// of a year in Berlin (29 March 2026: 02:00 CET → 03:00 CEST; 25 October
// 2026: 03:00 CEST → 02:00 CET), as the README says it: a time inside the
// spring-forward gap is moved forward by the gap (02:30 runs at 03:30),
// and one that coincides with a scheduled time then runs once, so the
// gap's minutes are skipped; a time a fall-back day repeats runs at its
// later occurrence only, so a schedule every minute waits 61 minutes. It
// also pins what plain cron/v3 does instead.
func TestDaylightSavingTimes(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	at := func(month time.Month, day, hour, min int, zone string) time.Time {
		offset := map[string]int{"CET": 1, "CEST": 2}[zone]
		return time.Date(2026, month, day, hour-offset, min, 0, 0, time.UTC)
	}
	for _, tt := range []struct {
		name, spec string
		after      time.Time
		want       []time.Time // digest's next times
		cron       []time.Time // cron/v3's
	}{
		{
			name: "daily in the gap runs an hour later", spec: "30 2 * * *", after: at(time.March, 28, 12, 0, "CET"),
			want: []time.Time{at(time.March, 29, 3, 30, "CEST"), at(time.March, 30, 2, 30, "CEST")},
			cron: []time.Time{at(time.March, 30, 2, 30, "CEST")}, // the day is skipped
		},
		{
			name: "every minute skips the gap", spec: "* * * * *", after: at(time.March, 29, 1, 58, "CET"),
			want: []time.Time{at(time.March, 29, 1, 59, "CET"), at(time.March, 29, 3, 0, "CEST"), at(time.March, 29, 3, 1, "CEST")},
			cron: []time.Time{at(time.March, 29, 1, 59, "CET"), at(time.March, 29, 3, 0, "CEST"), at(time.March, 29, 3, 1, "CEST")},
		},
		{
			name: "daily in the repeated hour runs once, the later time", spec: "30 2 * * *", after: at(time.October, 24, 12, 0, "CEST"),
			want: []time.Time{at(time.October, 25, 2, 30, "CET"), at(time.October, 26, 2, 30, "CET")},
			cron: []time.Time{at(time.October, 25, 2, 30, "CEST"), at(time.October, 25, 2, 30, "CET")}, // twice
		},
		{
			name: "every minute waits 61 minutes at fall-back", spec: "* * * * *", after: at(time.October, 25, 1, 58, "CEST"),
			want: []time.Time{at(time.October, 25, 1, 59, "CEST"), at(time.October, 25, 2, 0, "CET"), at(time.October, 25, 2, 1, "CET")},
			cron: []time.Time{at(time.October, 25, 1, 59, "CEST"), at(time.October, 25, 2, 0, "CEST"), at(time.October, 25, 2, 1, "CEST")},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := schedule.Parse(tt.spec, berlin)
			if err != nil {
				t.Fatal(err)
			}
			c, err := cron.ParseStandard("CRON_TZ=Europe/Berlin " + tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			next := map[string]func(time.Time) time.Time{"digest": s.Next, "cron/v3": c.Next}
			for who, want := range map[string][]time.Time{"digest": tt.want, "cron/v3": tt.cron} {
				got := tt.after
				for i, w := range want {
					if got = next[who](got); !got.Equal(w) {
						t.Errorf("%s, time %d: %s, want %s", who, i+1, got.In(berlin).Format("Jan 2 15:04 MST"), w.In(berlin).Format("Jan 2 15:04 MST"))
						break
					}
				}
			}
		})
	}
}
