package schedule

import (
	"fmt"
	"math/bits"
	"time"
)

// Frequency is how often a schedule fires, as finely as the names of its
// times (issue ids, see IssueID) must tell two successive ones apart.
type Frequency int

// Frequencies, from the coarsest.
const (
	// Daily: never more than once a calendar day in the schedule's zone
	// (daily, weekly and monthly specs): a date names each time.
	Daily Frequency = iota
	// Minutely: more than once on some day, never twice in a minute
	// (twice a day, hourly, every few minutes): the date and the time
	// (hours and minutes) name each time.
	Minutely
	// Secondly: more than once a minute (@every under a minute): the date
	// and the time to the second name each time.
	Secondly
)

// String names the frequency for logs and errors.
func (f Frequency) String() string {
	switch f {
	case Minutely:
		return "more than once a day"
	case Secondly:
		return "more than once a minute"
	}
	return "at most once a day"
}

// The horizon over which Frequency looks at a zone's daylight-saving (and
// other offset) changes: eight years hold every change of the zone's
// current rules, both ways, several times, and two leap days.
var (
	horizonStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	horizonYears = 8
)

// starBit marks a cron/v3 field written as "*" (cron's own constant, not
// exported); it is not a minute or an hour.
const starBit = 1 << 63

// Frequency says how often the schedule fires; see the constants. A
// five-field spec fires, on each day it fires, at every listed hour and
// minute: more than one such time is Minutely (its times cannot be closer
// than a minute). A spec of one time a day is Daily unless a change of the
// zone's offset puts two of its times on one calendar date (a time in a
// gap moved past midnight): the days around each change over eight years
// are walked. An @every interval is a fixed length of real time: under a
// minute it is Secondly; it is Daily only when no day of the zone is
// longer (25 hours on the day clocks fall back in most zones, so "@every
// 24h" there can fire twice on that date and is Minutely; a cron spec such
// as "0 8 * * *" is the daily schedule). The answer is computed once per
// Schedule and does not depend on the day it is asked.
func (s *Schedule) Frequency() Frequency {
	s.freqOnce.Do(func() { s.freq = s.frequency() })
	return s.freq
}

func (s *Schedule) frequency() Frequency {
	end := horizonStart.AddDate(horizonYears, 0, 0)
	changes := offsetChanges(s.zone, horizonStart, end)
	if s.wall == nil {
		switch d := s.every.Delay; {
		case d < time.Minute:
			return Secondly
		case d < longestDay(s.zone, changes):
			return Minutely
		}
		return Daily
	}
	if bits.OnesCount64(s.wall.Minute&^starBit)*bits.OnesCount64(s.wall.Hour&^starBit) > 1 {
		return Minutely
	}
	const around = 72 * time.Hour
	for _, c := range changes {
		prev := s.Next(c.Add(-around))
		for t := s.Next(prev); !t.IsZero() && t.Before(c.Add(around)); prev, t = t, s.Next(t) {
			if sameDate(prev.In(s.zone), t.In(s.zone)) {
				return Minutely
			}
		}
	}
	return Daily
}

func sameDate(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

// offsetChanges lists the instants in [start, end) at which loc's offset
// (or zone name) changes.
func offsetChanges(loc *time.Location, start, end time.Time) []time.Time {
	var out []time.Time
	for t := start; ; {
		_, next := t.In(loc).ZoneBounds()
		if next.IsZero() || !next.Before(end) || !next.After(t) {
			return out
		}
		out = append(out, next)
		t = next
	}
}

// longestDay is the length of real time of the longest calendar day of loc
// that holds one of its offset changes, and at least 24 hours.
func longestDay(loc *time.Location, changes []time.Time) time.Duration {
	longest := 24 * time.Hour
	for _, c := range changes {
		y, m, d := c.In(loc).Date()
		day := time.Date(y, m, d, 0, 0, 0, 0, loc)
		next := time.Date(y, m, d+1, 0, 0, 0, 0, loc)
		longest = max(longest, next.Sub(day))
	}
	return longest
}

// Layouts of issue ids, by frequency.
const (
	idDay    = "2006-01-02"
	idMinute = "2006-01-02-1504"
	idSecond = "2006-01-02-150405"
)

// IssueID is the one rule that names an issue: the time it is for (a
// scheduled time, or a manual run's own time) in the newsletter's zone loc
// (nil means UTC), as finely as the schedule's frequency f needs:
// "2026-12-03" for a schedule that fires at most once a day (the form of
// every id before schedules could fire more often), "2026-12-03-1900" for
// one that fires more than once a day, "2026-12-03-190005" for one that
// fires more than once a minute. At is truncated to the form's unit.
//
// Ids of one zone sort, as strings, in the order of their times, whatever
// their forms ("2026-12-03" < "2026-12-03-0700" < "2026-12-03-1900" <
// "2026-12-04"), so that a schedule changed from daily to twice a day (or
// back) keeps its archive in order. One exception: the hour that a
// fall-back change repeats names its second pass as its first, so a run
// then finds its issue already delivered and its stories wait for the
// next time after that hour.
func IssueID(at time.Time, loc *time.Location, f Frequency) string {
	if loc == nil {
		loc = time.UTC
	}
	at = at.In(loc)
	switch f {
	case Minutely:
		return at.Format(idMinute)
	case Secondly:
		return at.Format(idSecond)
	}
	return at.Format(idDay)
}

// ParseIssueID reads an id that IssueID wrote back into the time it names
// in loc (nil means UTC) and the frequency its form stands for. An id in
// none of the forms is an error.
func ParseIssueID(id string, loc *time.Location) (time.Time, Frequency, error) {
	if loc == nil {
		loc = time.UTC
	}
	layout, f := idDay, Daily
	switch len(id) {
	case len(idMinute):
		layout, f = idMinute, Minutely
	case len(idSecond):
		layout, f = idSecond, Secondly
	}
	t, err := time.ParseInLocation(layout, id, loc)
	if err != nil || t.Format(layout) != id {
		return time.Time{}, Daily, fmt.Errorf("issue id %q: want %s, %s or %s", id, idDay, idMinute, idSecond)
	}
	return t, f, nil
}
