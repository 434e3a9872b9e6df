package deliver

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// NewProgressPrinter returns a Progress callback that writes to w (normally
// stderr). On a terminal (isTTY) it redraws one line: a bar, counts, rate
// and ETA, ending the line on the last report. Otherwise it writes a log
// line at most every 5 seconds, and the last report always. It is safe for
// use from one goroutine at a time, as Issue calls it.
func NewProgressPrinter(w io.Writer, isTTY bool) func(Progress) {
	var (
		mu      sync.Mutex
		printed bool
		lastAt  time.Duration // Elapsed of the last line printed
	)
	return func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if isTTY {
			end := ""
			if p.Done {
				end = "\n"
			}
			fmt.Fprintf(w, "\r%s%s\x1b[K%s", bar(p, 24), progressText(p), end)
			return
		}
		if !p.Done && printed && p.Elapsed-lastAt < 5*time.Second {
			return
		}
		printed, lastAt = true, p.Elapsed
		fmt.Fprintf(w, "delivering: %s\n", progressText(p))
	}
}

func progressText(p Progress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d sent", p.Sent, p.Total)
	if p.Failed > 0 {
		fmt.Fprintf(&b, ", %d failed", p.Failed)
	}
	if p.Skipped > 0 {
		fmt.Fprintf(&b, ", %d skipped", p.Skipped)
	}
	fmt.Fprintf(&b, ", %d pending, %.0f msg/s", p.Pending, p.Rate)
	if r := p.Relay; r.Down && !p.Done {
		what := "relay unavailable"
		if r.Quota {
			what = "sending cap reached"
		}
		fmt.Fprintf(&b, "; %s since %s, retrying in %s", what, r.Since.Local().Format("15:04"),
			max(r.Retry.Sub(p.Now), 0).Round(time.Second))
		return b.String()
	}
	if eta := p.ETA(); eta > 0 && !p.Done {
		fmt.Fprintf(&b, ", ETA %s", roundDuration(eta))
	} else if p.Done {
		fmt.Fprintf(&b, ", %s", roundDuration(p.Elapsed))
	}
	return b.String()
}

// bar draws "[#####.....] 42% ".
func bar(p Progress, width int) string {
	frac := 0.0
	if p.Total > 0 {
		frac = float64(p.Sent+p.Failed+p.Skipped) / float64(p.Total)
	}
	frac = min(max(frac, 0), 1)
	full := int(frac * float64(width))
	return "[" + strings.Repeat("#", full) + strings.Repeat(".", width-full) + fmt.Sprintf("] %3.0f%% ", frac*100)
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}
