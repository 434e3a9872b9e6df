package schedule_test

import (
	"slices"
	"testing"
	"time"

	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/schedule"
)

func TestFrequency(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		spec string
		zone string
		want schedule.Frequency
	}{
		{"daily", "0 8 * * *", "UTC", schedule.Daily},
		{"daily descriptor", "@daily", "Europe/Paris", schedule.Daily},
		{"weekly", "0 8 * * MON", "Europe/London", schedule.Daily},
		{"weekly descriptor", "@weekly", "UTC", schedule.Daily},
		{"monthly", "@monthly", "America/New_York", schedule.Daily},
		{"working days", "30 6 * * MON-FRI", "Asia/Tokyo", schedule.Daily},
		{"leap day only", "0 12 29 2 *", "UTC", schedule.Daily},
		{"zone prefix", "CRON_TZ=Asia/Tokyo 0 8 * * *", "UTC", schedule.Daily},
		{"twice a day", "0 7,19 * * *", "Europe/Paris", schedule.Minutely},
		{"twice on leap days only", "0 0,12 29 2 *", "UTC", schedule.Minutely},
		{"twice on the first of the month", "0 8,20 1 * *", "UTC", schedule.Minutely},
		{"hourly", "@hourly", "UTC", schedule.Minutely},
		{"every five minutes", "*/5 * * * *", "UTC", schedule.Minutely},
		{"every minute", "* * * * *", "UTC", schedule.Minutely},
		// Across midnight: two times a day apart by an hour over midnight
		// are on different dates (daily), two before midnight are not.
		{"just before midnight", "55 23 * * *", "UTC", schedule.Daily},
		{"midnight and 23:00", "0 0,23 * * *", "UTC", schedule.Minutely},
		// Daylight saving: the 23-hour and 25-hour days do not make a daily
		// spec fire twice on one date, nor a time in the gap or the repeat.
		{"midnight in a DST zone", "0 0 * * *", "America/New_York", schedule.Daily},
		{"in the fall-back repeat", "30 1 * * *", "America/New_York", schedule.Daily},
		{"in the spring-forward gap", "30 2 * * *", "Europe/Berlin", schedule.Daily},
		{"gap and hour after merge, still twice elsewhere", "30 2,3 * * *", "Europe/Berlin", schedule.Minutely},
		{"every few seconds", "@every 2s", "UTC", schedule.Secondly},
		{"every 59s", "@every 59s", "UTC", schedule.Secondly},
		{"every minute, @every", "@every 1m", "UTC", schedule.Minutely},
		{"every 90s", "@every 90s", "UTC", schedule.Minutely},
		{"every 12h", "@every 12h", "UTC", schedule.Minutely},
		{"every 24h in UTC", "@every 24h", "UTC", schedule.Daily},
		// The 25-hour fall-back day can hold two times 24 hours apart.
		{"every 24h in a DST zone", "@every 24h", "Europe/Paris", schedule.Minutely},
		{"every 25h in a DST zone", "@every 25h", "Europe/Paris", schedule.Daily},
		{"every 48h", "@every 48h", "America/New_York", schedule.Daily},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := schedule.Parse(tt.spec, zone(t, tt.zone))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Frequency(); got != tt.want {
				t.Errorf("Frequency(%q in %s) = %s, want %s", tt.spec, tt.zone, got, tt.want)
			}
		})
	}
}

// Frequency looks only at the days around each offset change; walking
// every time of the schedule over the eight years must agree, in zones
// whose changes fall at midnight or by half an hour.
func TestFrequencyAgreesWithAFullWalk(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ spec, zone string }{
		{"0 8 * * *", "Europe/Paris"},
		{"30 2 * * *", "Europe/Berlin"},
		{"30 1 * * *", "America/New_York"},
		{"0 0 * * *", "America/Santiago"},
		{"45 23 * * *", "America/Santiago"},
		{"30 0 * * *", "America/Havana"},
		{"15 2 * * *", "Australia/Lord_Howe"},
		{"0 8 1 * *", "UTC"},
	} {
		t.Run(tt.spec+" "+tt.zone, func(t *testing.T) {
			t.Parallel()
			loc := zone(t, tt.zone)
			s, err := schedule.Parse(tt.spec, loc)
			if err != nil {
				t.Fatal(err)
			}
			want := schedule.Daily
			start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			prev := s.Next(start)
			for at := s.Next(prev); at.Before(start.AddDate(8, 0, 0)); prev, at = at, s.Next(at) {
				a, b := prev.In(loc), at.In(loc)
				if a.Year() == b.Year() && a.YearDay() == b.YearDay() {
					want = schedule.Minutely
					break
				}
			}
			if got := s.Frequency(); got != want {
				t.Errorf("Frequency = %s, a full walk says %s", got, want)
			}
		})
	}
}

// The property the ids rest on: successive times of a schedule get ids that
// are distinct and increase, across midnight and daylight-saving changes.
// The walk starts before each zone's changes of 2026.
func TestSuccessiveIDsIncrease(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		spec, zone string
		from       time.Time
		n          int
	}{
		{"0 8 * * *", "Europe/Paris", time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC), 30},
		{"0 8 * * MON", "Europe/London", time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), 10},
		{"0 7,19 * * *", "Europe/Paris", time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC), 10},
		{"0 7,19 * * *", "Europe/Paris", time.Date(2026, 10, 23, 0, 0, 0, 0, time.UTC), 10},
		{"*/30 * * * *", "America/New_York", time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC), 12},
		{"*/30 * * * *", "America/New_York", time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC), 12},
		{"0 0,23 * * *", "UTC", time.Date(2026, 12, 30, 0, 0, 0, 0, time.UTC), 6},
		{"@every 2s", "UTC", time.Date(2026, 12, 3, 23, 59, 55, 0, time.UTC), 6},
		{"@every 90s", "Asia/Tokyo", time.Date(2026, 12, 3, 14, 57, 0, 0, time.UTC), 6},
		{"@every 25h", "Europe/Paris", time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC), 10},
	} {
		t.Run(tt.spec+" "+tt.zone, func(t *testing.T) {
			t.Parallel()
			loc := zone(t, tt.zone)
			s, err := schedule.Parse(tt.spec, loc)
			if err != nil {
				t.Fatal(err)
			}
			f := s.Frequency()
			prev := ""
			for at, i := s.Next(tt.from), 0; i < tt.n; at, i = s.Next(at), i+1 {
				id := schedule.IssueID(at, loc, f)
				if id <= prev {
					t.Fatalf("time %s gets id %q, not after the previous %q", at, id, prev)
				}
				prev = id
			}
		})
	}
}

// The documented exception: an @every schedule in the hour a fall-back
// change repeats names the second pass as the first.
func TestIDsInRepeatedHour(t *testing.T) {
	t.Parallel()
	ny := zone(t, "America/New_York")
	first := time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC) // 01:30 EDT
	second := first.Add(time.Hour)                         // 01:30 EST
	if a, b := schedule.IssueID(first, ny, schedule.Minutely), schedule.IssueID(second, ny, schedule.Minutely); a != b {
		t.Errorf("ids %q and %q; the repeated wall time should name both alike", a, b)
	}
}

func TestIssueID(t *testing.T) {
	t.Parallel()
	tokyo := zone(t, "Asia/Tokyo")
	at := time.Date(2026, 12, 3, 19, 0, 42, 500, time.UTC)
	for _, tt := range []struct {
		f    schedule.Frequency
		loc  *time.Location
		want string
	}{
		{schedule.Daily, nil, "2026-12-03"},
		{schedule.Daily, tokyo, "2026-12-04"},
		{schedule.Minutely, nil, "2026-12-03-1900"},
		{schedule.Minutely, tokyo, "2026-12-04-0400"},
		{schedule.Secondly, nil, "2026-12-03-190042"},
	} {
		if got := schedule.IssueID(at, tt.loc, tt.f); got != tt.want {
			t.Errorf("IssueID(%s, %v, %s) = %q, want %q", at, tt.loc, tt.f, got, tt.want)
		}
	}
	// A daily schedule keeps the ids (and archive folders) it always had.
	for _, loc := range []*time.Location{nil, tokyo, zone(t, "America/Los_Angeles")} {
		for h := range 24 {
			at := time.Date(2026, 12, 3, h, 30, 0, 0, time.UTC)
			if got, want := schedule.IssueID(at, loc, schedule.Daily), issue.ID(at, loc); got != want {
				t.Errorf("daily id of %s in %v: %q, was %q", at, loc, got, want)
			}
		}
	}
}

// Ids of every form sort as strings in the order of their times.
func TestIDsSortInTimeOrder(t *testing.T) {
	t.Parallel()
	paris := zone(t, "Europe/Paris")
	d := func(day, h, m, s int) time.Time { return time.Date(2026, 12, day, h, m, s, 0, paris) }
	times := []struct {
		at time.Time
		f  schedule.Frequency
	}{
		{d(2, 8, 0, 0), schedule.Daily},
		{d(3, 0, 0, 0), schedule.Daily},
		{d(3, 7, 0, 0), schedule.Minutely},
		{d(3, 7, 0, 30), schedule.Secondly},
		{d(3, 7, 1, 0), schedule.Minutely},
		{d(3, 19, 0, 0), schedule.Minutely},
		{d(3, 23, 59, 59), schedule.Secondly},
		{d(4, 8, 0, 0), schedule.Daily},
		{d(4, 9, 0, 0), schedule.Minutely},
		{d(10, 8, 0, 0), schedule.Daily},
	}
	var ids []string
	for _, x := range times {
		ids = append(ids, schedule.IssueID(x.at, paris, x.f))
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	if !slices.Equal(ids, sorted) {
		t.Errorf("ids in time order:\n%q\nsorted as strings:\n%q", ids, sorted)
	}
}

func TestParseIssueID(t *testing.T) {
	t.Parallel()
	paris := zone(t, "Europe/Paris")
	for _, tt := range []struct {
		id   string
		want time.Time
		f    schedule.Frequency
	}{
		{"2026-12-03", time.Date(2026, 12, 3, 0, 0, 0, 0, paris), schedule.Daily},
		{"2026-12-03-1900", time.Date(2026, 12, 3, 19, 0, 0, 0, paris), schedule.Minutely},
		{"2026-12-03-190042", time.Date(2026, 12, 3, 19, 0, 42, 0, paris), schedule.Secondly},
	} {
		got, f, err := schedule.ParseIssueID(tt.id, paris)
		if err != nil || !got.Equal(tt.want) || f != tt.f {
			t.Errorf("ParseIssueID(%q) = %s, %s, %v; want %s, %s", tt.id, got, f, err, tt.want, tt.f)
		}
		if back := schedule.IssueID(got, paris, f); back != tt.id {
			t.Errorf("IssueID(ParseIssueID(%q)) = %q", tt.id, back)
		}
	}
	for _, bad := range []string{"", "latest", "2026-12-3", "2026-02-30", "2026-12-03-19", "2026-12-03-2460", "2026-12-03T1900", "2026-12-03-1900 "} {
		if _, _, err := schedule.ParseIssueID(bad, paris); err == nil {
			t.Errorf("ParseIssueID(%q) accepted", bad)
		}
	}
}

// The loop, on the injected clock, hands the job scheduled times that name
// one issue each, in order: daily, weekly, twice a day, every few minutes
// and every few seconds, across midnight and daylight-saving changes.
func TestLoopTimesNameIssues(t *testing.T) {
	for _, tt := range []struct {
		name, spec, zone string
		from             time.Time // in the zone
		want             []string
	}{
		{"daily over the spring-forward change", "30 2 * * *", "Europe/Paris", time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC),
			[]string{"2026-03-28", "2026-03-29", "2026-03-30"}},
		{"weekly", "0 8 * * MON", "Europe/London", time.Date(2026, 10, 20, 12, 0, 0, 0, time.UTC),
			[]string{"2026-10-26", "2026-11-02"}},
		{"twice a day over midnight and the fall-back change", "0 7,19 * * *", "Europe/Paris", time.Date(2026, 10, 24, 10, 0, 0, 0, time.UTC),
			[]string{"2026-10-24-1900", "2026-10-25-0700", "2026-10-25-1900", "2026-10-26-0700"}},
		{"every few minutes over midnight", "*/20 * * * *", "America/New_York", time.Date(2026, 12, 4, 4, 30, 0, 0, time.UTC),
			[]string{"2026-12-03-2340", "2026-12-04-0000", "2026-12-04-0020"}},
		{"every few seconds over midnight", "@every 10s", "UTC", time.Date(2026, 12, 3, 23, 59, 35, 0, time.UTC),
			[]string{"2026-12-03-235945", "2026-12-03-235955", "2026-12-04-000005"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			loc := zone(t, tt.zone)
			h := start(t, setup{spec: tt.spec, loc: loc, now: tt.from})
			h.save(schedule.OutcomeStarted, tt.from)
			sched, err := schedule.Parse(tt.spec, loc)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for range tt.want {
				h.clock.WaitTimer(t, hang)
				h.clock.Set(h.loop.Status().Next)
				r := h.run()
				if r.Kind != schedule.OnTime {
					t.Errorf("run %+v, want on time", r)
				}
				got = append(got, schedule.IssueID(r.Scheduled, loc, sched.Frequency()))
				h.save(schedule.OutcomeRunning, r.Scheduled)
				h.save(schedule.OutcomeOK, r.Scheduled)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ids %q, want %q", got, tt.want)
			}
		})
	}
}
