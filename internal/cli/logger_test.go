package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/digest/digest/internal/config"
)

// A log collector (anything but a terminal) gets JSON unless log.format says
// otherwise.
func TestNewLoggerFormat(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		format string
		json   bool
	}{
		{"", true}, {"auto", true}, {"json", true}, {"text", false},
	} {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			newLogger(&lockedWriter{w: &buf}, config.Log{Level: "info", Format: tt.format}).Info("run finished", "issue", "2026-05-04", "sent", 3)
			line := strings.TrimSpace(buf.String())
			var m map[string]any
			isJSON := json.Unmarshal([]byte(line), &m) == nil
			if isJSON != tt.json {
				t.Fatalf("format %q: got %q", tt.format, line)
			}
			if isJSON && (m["msg"] != "run finished" || m["issue"] != "2026-05-04") {
				t.Errorf("JSON line %v", m)
			}
			if !isJSON && !strings.Contains(line, `msg="run finished" issue=2026-05-04 sent=3`) {
				t.Errorf("text line %q", line)
			}
		})
	}
	var buf bytes.Buffer
	newLogger(&buf, config.Log{Level: "warn", Format: "text"}).Info("hidden")
	if buf.Len() != 0 {
		t.Errorf("info logged at level warn: %q", buf.String())
	}
}
