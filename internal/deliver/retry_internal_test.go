package deliver

import (
	"testing"
	"time"
)

// The waits between a reader's attempts grow and add up to retry_for.
func TestRetrySchedule(t *testing.T) {
	tests := []struct {
		attempts int
		retryFor time.Duration
		first    time.Duration
	}{
		{5, 48 * time.Hour, 5 * time.Minute},
		{10, 48 * time.Hour, 5 * time.Minute},
		{3, 10 * time.Minute, 5 * time.Minute},
		{5, 8 * time.Minute, 2 * time.Minute}, // too short to start at 5m: even steps
		{1, 48 * time.Hour, 5 * time.Minute},  // one attempt: never used
	}
	for _, tt := range tests {
		s := retrySchedule(tt.attempts, tt.retryFor)
		if want := max(tt.attempts-1, 1); len(s) != want {
			t.Errorf("%d attempts: %d waits, want %d", tt.attempts, len(s), want)
			continue
		}
		var sum time.Duration
		for i, d := range s {
			sum += d
			if i > 0 && d < s[i-1] {
				t.Errorf("%d over %s: %v does not grow", tt.attempts, tt.retryFor, s)
			}
		}
		if s[0] != tt.first {
			t.Errorf("%d over %s: first wait %s, want %s", tt.attempts, tt.retryFor, s[0], tt.first)
		}
		if tt.attempts > 1 && (sum < tt.retryFor-time.Duration(len(s))*time.Second || sum > tt.retryFor+time.Duration(len(s))*time.Second) {
			t.Errorf("%d over %s: waits %v add up to %s", tt.attempts, tt.retryFor, s, sum)
		}
	}
}
