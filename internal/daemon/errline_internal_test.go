package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestErrLineKeepsJoinedErrorsApart reproduces a defect seen in the
// daemon's log after SIGTERM mid-delivery: the joined errors ran together
// as "issue 2026-12-01: context canceled 216 recipients are still pending",
// one sentence glued to the next (and "context canceled" where the user
// expects "interrupted").
func TestErrLineKeepsJoinedErrorsApart(t *testing.T) {
	t.Parallel()
	err := errors.Join(fmt.Errorf("issue 2026-12-01: %w", context.Canceled), errors.New("216 recipients are still pending"))
	got := errLine(err)
	if strings.Contains(got, "canceled 216") {
		t.Errorf("errLine = %q: the two errors run together", got)
	}
}
