package clocktest_test

import (
	"context"
	"testing"
	"time"

	"github.com/digest/digest/internal/clocktest"
)

var t0 = time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)

func TestTimersFireWhenTheClockReachesThem(t *testing.T) {
	t.Parallel()
	c := clocktest.New(t0)
	soon, later := c.NewTimer(time.Minute), c.NewTimer(time.Hour)
	if at := c.WaitTimer(t, time.Second); !at.Equal(t0.Add(time.Minute)) && !at.Equal(t0.Add(time.Hour)) {
		t.Errorf("WaitTimer = %v, want a pending timer's time", at)
	}
	c.Advance(time.Minute)
	select {
	case at := <-soon.C():
		if !at.Equal(t0.Add(time.Minute)) {
			t.Errorf("fired at %v", at)
		}
	default:
		t.Fatal("the one-minute timer did not fire at one minute")
	}
	select {
	case <-later.C():
		t.Fatal("the one-hour timer fired at one minute")
	default:
	}
	if !later.Stop() || later.Stop() {
		t.Error("Stop reports wrongly whether the timer was active")
	}
	c.Set(t0.Add(2 * time.Hour))
	select {
	case <-later.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	if now := c.NewTimer(0); len(now.C()) != 1 {
		t.Error("a timer of zero did not fire at once")
	}
}

func TestSleepAdvancesUnlessCanceled(t *testing.T) {
	t.Parallel()
	c := clocktest.New(t0)
	if !c.Sleep(context.Background(), 5*time.Second) || !c.Now().Equal(t0.Add(5*time.Second)) {
		t.Errorf("after Sleep(5s): %v", c.Now())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c.Sleep(ctx, time.Hour) || !c.Now().Equal(t0.Add(5*time.Second)) {
		t.Errorf("Sleep on an ended context advanced to %v", c.Now())
	}
	if took := c.Until(t, "ten seconds", time.Second, time.Minute, func() bool {
		return !c.Now().Before(t0.Add(15 * time.Second))
	}); took != 10*time.Second {
		t.Errorf("Until took %v of fake time, want 10s", took)
	}
}

// Sleeps of several goroutines at once all count.
func TestConcurrentAdvancesAddUp(t *testing.T) {
	t.Parallel()
	c := clocktest.New(t0)
	done := make(chan struct{})
	for range 8 {
		go func() {
			for range 100 {
				c.Sleep(context.Background(), time.Second)
			}
			done <- struct{}{}
		}()
	}
	for range 8 {
		<-done
	}
	if got := c.Now().Sub(t0); got != 800*time.Second {
		t.Errorf("8 × 100 sleeps of 1s advanced the clock %v", got)
	}
}
