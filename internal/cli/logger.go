package cli

import (
	"io"
	"log/slog"

	"github.com/digest/digest/internal/config"
)

// newLogger logs to w at log.level: as text for a person at a terminal, as
// JSON (one object a line) for a log collector otherwise, unless log.format
// says which. Secrets and subscriber lists are never logged: callers pass
// counts and ids, not addresses.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	return leveledLogger(w, c.Format, c.SlogLevel())
}

// leveledLogger is newLogger with a level that may change later (a
// *slog.LevelVar, for the daemon's reload).
func leveledLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: readableDurations}
	json := format == "json"
	if format == "" || format == "auto" {
		json = !isTerminal(w)
	}
	if json {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// readableDurations writes durations as "1.5s", not as nanoseconds: the JSON
// handler would print 1500000000.
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
