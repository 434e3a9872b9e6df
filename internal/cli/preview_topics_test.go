package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/digest/digest/internal/cli"
)

// TestPreviewViewAsKeepsTheReadersTopics reproduces a defect found by hand:
// "View as" a subscriber with topics shows the whole issue ("Topics: all.")
// while delivery sends that reader only the sections of their topics, so
// the preview differs from what is sent (issue 11: "their topics, their
// exact sections").
func TestPreviewViewAsKeepsTheReadersTopics(t *testing.T) {
	t.Parallel()
	w := newPreviewWorld(t)
	var out, errb bytes.Buffer
	if err := cli.Run(context.Background(), []string{"subscribers", "add", "tess@example.org", "--name", "Tess", "--topics", "town", "--config", w.config}, &out, &errb); err != nil {
		t.Fatalf("subscribers add: %v\n%s", err, errb.String())
	}
	base := w.start(t)
	waitPage(t, base, "Ferry timetable changes for winter")

	body := page(t, base+"?as=tess@example.org")
	text := between(body, `id="text-part">`, "</pre>")
	if !strings.Contains(text, "Choir concert in the town hall") {
		t.Fatalf("tess's text part lacks her Town story:\n%s", text)
	}
	if strings.Contains(text, "Ferry timetable changes for winter") {
		t.Errorf("tess (topics: town) is shown the World story that delivery leaves out of her message")
	}
	if strings.Contains(body, "Topics: all.") {
		t.Errorf("the reader panel says \"Topics: all.\" for a subscriber whose topics are [town]")
	}
}

// between is the text of s after the first start and before the next end.
func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	in, _, _ := strings.Cut(after, end)
	return in
}
