package deliver

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// quotaRefresh is how often the caps are re-read from the store while
// other runs may be sending too (and whenever the number of runs changes).
const quotaRefresh = 10 * time.Second

// quota enforces PerHour and PerDay.
//
// Alone and without a store (SentSince nil) it counts this run's messages
// over a sliding window, keeping the time of each, so its memory is bounded
// by the larger cap.
//
// With a store it holds for the whole list across runs and processes: every
// quotaRefresh it reads how many messages all runs sent in the last hour and
// day, and lets this run use 1/peers of what is left until the next
// refresh, counting its own messages not yet recorded as used. Several
// runs together therefore never exceed a cap; the price is that the last
// few messages under a cap may wait for a later run when peers > 1.
type quota struct {
	mu      sync.Mutex
	perHour int
	perDay  int
	window  time.Duration
	times   []time.Time // ascending: local mode, or takes since the refresh

	sentSince func(ctx context.Context, since time.Time) (int, error)
	nthSent   func(ctx context.Context, since time.Time, n int) (time.Time, error)
	recorded  func() int // this run's messages recorded as sent
	taken     int        // this run's messages counted and not refunded
	refreshed time.Time
	peers     int // runs sharing the caps at the refresh
	hourUsed  int // by every run, recorded, at the refresh
	dayUsed   int
	budget    [2]int // this run's allowance for the hour and the day until the next refresh
}

func newQuota(ctx context.Context, o Options, recorded func() int, peers int) (*quota, error) {
	q := &quota{perHour: o.PerHour, perDay: o.PerDay, window: time.Hour, sentSince: o.SentSince, nthSent: o.NthSentSince,
		recorded: recorded}
	if o.PerDay > 0 {
		q.window = 24 * time.Hour
	}
	if q.sentSince == nil {
		return q, nil
	}
	return q, q.refresh(ctx, o.Now(), peers)
}

// refresh re-reads what every run sent and shares what is left of each cap
// among peers runs.
func (q *quota) refresh(ctx context.Context, now time.Time, peers int) error {
	hour, err := q.sentSince(ctx, now.Add(-time.Hour))
	if err != nil {
		return fmt.Errorf("count messages sent in the last hour: %w", err)
	}
	day := hour
	if q.perDay > 0 {
		if day, err = q.sentSince(ctx, now.Add(-24*time.Hour)); err != nil {
			return fmt.Errorf("count messages sent in the last day: %w", err)
		}
	}
	// This run's messages counted but not yet in the ledger as sent.
	inFlight := max(q.taken-q.recorded(), 0)
	q.hourUsed, q.dayUsed = hour+inFlight, day+inFlight
	q.budget[0] = max(q.perHour-q.hourUsed, 0) / max(peers, 1)
	q.budget[1] = max(q.perDay-q.dayUsed, 0) / max(peers, 1)
	q.times = q.times[:0]
	q.refreshed, q.peers = now, peers
	return nil
}

// take counts one message at now, or reports the cap that forbids it.
func (q *quota) take(ctx context.Context, now time.Time, peers int) (time.Time, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.sentSince != nil {
		if now.Sub(q.refreshed) >= quotaRefresh || now.Before(q.refreshed) || peers != q.peers {
			if err := q.refresh(ctx, now, peers); err != nil {
				return time.Time{}, err
			}
		}
		n := len(q.times)
		if q.perDay > 0 && n >= q.budget[1] {
			return time.Time{}, capError("per_day", q.perDay, "24 hours", peers, q.resume(ctx, now, 24*time.Hour, q.dayUsed-q.perDay))
		}
		if q.perHour > 0 && n >= q.budget[0] {
			return time.Time{}, capError("per_hour", q.perHour, "hour", peers, q.resume(ctx, now, time.Hour, q.hourUsed-q.perHour))
		}
		q.taken++
		q.times = append(q.times, now)
		return now, nil
	}
	// Forget what left the window.
	cut := sort.Search(len(q.times), func(i int) bool { return q.times[i].After(now.Add(-q.window)) })
	q.times = q.times[cut:]
	if q.perDay > 0 && len(q.times) >= q.perDay {
		// A slot frees when the oldest message of the day leaves it.
		return time.Time{}, capError("per_day", q.perDay, "24 hours", 1, q.times[len(q.times)-q.perDay].Add(24*time.Hour))
	}
	if q.perHour > 0 {
		inHour := len(q.times) - sort.Search(len(q.times), func(i int) bool { return q.times[i].After(now.Add(-time.Hour)) })
		if inHour >= q.perHour {
			return time.Time{}, capError("per_hour", q.perHour, "hour", 1, q.times[len(q.times)-q.perHour].Add(time.Hour))
		}
	}
	if n := len(q.times); n > 0 && now.Before(q.times[n-1]) {
		now = q.times[n-1] // keep the list sorted if the clock stepped back
	}
	q.taken++
	q.times = append(q.times, now)
	return now, nil
}

// quotaError says that a cap forbids a message until resume (on the clock
// of Options.Now).
type quotaError struct {
	msg    string
	resume time.Time
}

func (e *quotaError) Error() string { return e.msg }
func (e *quotaError) Unwrap() error { return ErrQuota }

// resume is when a cap over span, exceeded by over messages at the last
// refresh, frees its next slot: when the over-th oldest message of the
// span leaves it (asked of the store), and no sooner than the next
// refresh, when what every run sent is counted again.
func (q *quota) resume(ctx context.Context, now time.Time, span time.Duration, over int) time.Time {
	next := q.refreshed.Add(quotaRefresh)
	if q.nthSent == nil || over < 0 {
		return next
	}
	at, err := q.nthSent(ctx, now.Add(-span), over)
	if err != nil || at.IsZero() {
		return next
	}
	return maxTime(next, at.Add(span))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func capError(key string, limit int, span string, peers int, resume time.Time) error {
	msg := fmt.Sprintf("%s: %d messages in the last %s (%s)", ErrQuota, limit, span, key)
	if peers > 1 {
		msg = fmt.Sprintf("%s: %d messages in the last %s (%s, shared by %d runs)", ErrQuota, limit, span, key, peers)
	}
	return &quotaError{msg: msg, resume: resume}
}

// refund uncounts a message that was not accepted.
func (q *quota) refund(t time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := len(q.times) - 1; i >= 0; i-- {
		if q.times[i].Equal(t) {
			q.times = append(q.times[:i], q.times[i+1:]...)
			q.taken--
			return
		}
	}
	if q.sentSince != nil && q.taken > 0 {
		// Taken before a refresh emptied times: still counted in flight.
		q.taken--
	}
}
