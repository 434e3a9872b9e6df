// Package schedule runs a job at the times of a cron schedule, one run at a
// time, and keeps the schedule's state (the last scheduled time handled and
// what became of it) in a store, so that a restart neither repeats a run nor
// forgets one: a run missed while the process was down, the machine slept or
// the clock jumped is caught up once when it is less than a grace late, and
// skipped (and logged) when it is later than that.
//
// Specs are those of robfig/cron/v3: five fields (minute hour day-of-month
// month day-of-week) or a descriptor (@hourly, @daily, @weekly, @monthly,
// @yearly, @every 1h), evaluated in a time zone. Unlike cron/v3, a time that
// a daylight-saving change leaves out (02:30 on a spring-forward day in
// Europe) is moved forward by the gap (it runs at 03:30) instead of being
// skipped for a day, and a time that a fall-back change repeats runs once, at
// its later occurrence (see TestDaylightSavingTimes).
//
// A schedule also names what it runs: Frequency says how often a spec fires
// (at most once a day, more often, more than once a minute), and IssueID
// is the one rule that turns a time into an issue id at that fineness.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // a bare container has no zoneinfo database

	"github.com/robfig/cron/v3"
)

// Schedule is a parsed cron spec with its time zone. It is immutable and safe
// for concurrent use.
type Schedule struct {
	spec string
	zone *time.Location
	// wall evaluates a five-field spec or a descriptor on wall-clock times
	// written as UTC, so that daylight-saving gaps and repeats do not
	// exist for it; Next maps the result back into zone.
	wall *cron.SpecSchedule
	// every is an @every schedule: a fixed interval of real time.
	every cron.ConstantDelaySchedule

	freqOnce sync.Once // Frequency is computed on first use
	freq     Frequency
}

// Parse parses spec and evaluates it in loc (nil means UTC). A spec may start
// with CRON_TZ=Zone (or TZ=Zone) to name its own zone. Errors say what is
// wrong with the spec; the cron parser panics on some input ("TZ=UTC"), and
// Parse turns that into an error too.
func Parse(spec string, loc *time.Location) (s *Schedule, err error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("empty")
	}
	if loc == nil {
		loc = time.UTC
	}
	body := spec // the spec without its zone prefix
	prefix, zoneName, prefixed := "", "", false
	for _, p := range []string{"CRON_TZ=", "TZ="} {
		if rest, ok := strings.CutPrefix(spec, p); ok {
			prefix, prefixed = p, true
			var spaced bool
			zoneName, body, spaced = strings.Cut(rest, " ")
			if !spaced {
				return nil, errors.New("a time zone prefix must be followed by a space and a spec")
			}
			break
		}
	}
	if prefixed && zoneName == "" {
		return nil, errors.New("empty time zone after " + prefix)
	}
	if every, ok := strings.CutPrefix(strings.TrimSpace(body), "@every "); ok {
		if err := checkEvery(every); err != nil {
			return nil, err
		}
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("cannot parse: %v", r)
		}
	}()
	parsed, err := parser().Parse(spec)
	if err != nil {
		return nil, err
	}
	s = &Schedule{spec: spec, zone: loc}
	switch p := parsed.(type) {
	case *cron.SpecSchedule:
		if prefixed {
			s.zone = p.Location
		}
		w := *p
		w.Location = time.UTC
		s.wall = &w
	case cron.ConstantDelaySchedule:
		s.every = p
	default:
		return nil, fmt.Errorf("unsupported schedule type %T", parsed)
	}
	// A fixed instant, so that validation does not depend on the day.
	if s.Next(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, errors.New("never fires (no such date within five years)")
	}
	return s, nil
}

// checkEvery refuses what cron/v3 would silently turn into every second.
func checkEvery(d string) error {
	dur, err := time.ParseDuration(strings.TrimSpace(d))
	if err != nil {
		return fmt.Errorf("@every: %w", err)
	}
	if dur < time.Second {
		return fmt.Errorf("@every %s: the interval must be at least 1s", dur)
	}
	return nil
}

// parser accepts what the configuration documents: five fields and
// descriptors, no seconds field.
func parser() cron.Parser {
	return cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
}

// String returns the spec as given (trimmed).
func (s *Schedule) String() string { return s.spec }

// Location is the zone the schedule is evaluated in.
func (s *Schedule) Location() *time.Location { return s.zone }

// Next returns the first scheduled time strictly after t, in the schedule's
// zone, or the zero time when there is none within five years (a spec such
// as "0 0 30 2 *").
func (s *Schedule) Next(t time.Time) time.Time {
	if s.wall == nil {
		return s.every.Next(t).In(s.zone)
	}
	w := t.In(s.zone)
	f := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), time.UTC)
	// A wall time after a fall-back change can map to an instant before
	// t; the next wall time then does not. Two steps are enough, four are
	// allowed.
	for range 4 {
		f = s.wall.Next(f)
		if f.IsZero() {
			return time.Time{}
		}
		// time.Date puts a wall time inside a spring-forward gap after the
		// gap (02:30 becomes 03:30), and one that occurs twice at one of
		// its two instants: either way the time runs once.
		at := time.Date(f.Year(), f.Month(), f.Day(), f.Hour(), f.Minute(), f.Second(), 0, s.zone)
		if at.After(t) {
			return at
		}
	}
	return time.Time{}
}
