package deliver

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// quota enforces PerHour and PerDay over a sliding window. It keeps the time
// of each message counted in the last day (or hour), so its memory is
// bounded by the larger cap.
type quota struct {
	mu      sync.Mutex
	perHour int
	perDay  int
	window  time.Duration
	times   []time.Time // ascending
}

func newQuota(ctx context.Context, o Options) (*quota, error) {
	q := &quota{perHour: o.PerHour, perDay: o.PerDay, window: time.Hour}
	if o.PerDay > 0 {
		q.window = 24 * time.Hour
	}
	if o.SentSince == nil {
		return q, nil
	}
	// Seed with earlier runs: their exact times are unknown, so count the
	// last hour's as sent now and the rest of the day's as sent an hour ago
	// (they leave the day window no later than they really would).
	now := o.Now()
	hour, err := o.SentSince(ctx, now.Add(-time.Hour))
	if err != nil {
		return nil, fmt.Errorf("count messages sent in the last hour: %w", err)
	}
	day := hour
	if o.PerDay > 0 {
		if day, err = o.SentSince(ctx, now.Add(-24*time.Hour)); err != nil {
			return nil, fmt.Errorf("count messages sent in the last day: %w", err)
		}
	}
	for range max(day-hour, 0) {
		q.times = append(q.times, now.Add(-time.Hour))
	}
	for range hour {
		q.times = append(q.times, now)
	}
	return q, nil
}

// take counts one message at now, or reports the cap that forbids it.
func (q *quota) take(now time.Time) (time.Time, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	// Forget what left the window.
	cut := sort.Search(len(q.times), func(i int) bool { return q.times[i].After(now.Add(-q.window)) })
	q.times = q.times[cut:]
	if q.perDay > 0 && len(q.times) >= q.perDay {
		return time.Time{}, fmt.Errorf("%w: %d messages in the last 24 hours (per_day)", ErrQuota, q.perDay)
	}
	if q.perHour > 0 {
		inHour := len(q.times) - sort.Search(len(q.times), func(i int) bool { return q.times[i].After(now.Add(-time.Hour)) })
		if inHour >= q.perHour {
			return time.Time{}, fmt.Errorf("%w: %d messages in the last hour (per_hour)", ErrQuota, q.perHour)
		}
	}
	if n := len(q.times); n > 0 && now.Before(q.times[n-1]) {
		now = q.times[n-1] // keep the list sorted if the clock stepped back
	}
	q.times = append(q.times, now)
	return now, nil
}

// refund uncounts a message that was not accepted.
func (q *quota) refund(t time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := len(q.times) - 1; i >= 0; i-- {
		if q.times[i].Equal(t) {
			q.times = append(q.times[:i], q.times[i+1:]...)
			return
		}
	}
}
