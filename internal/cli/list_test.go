package cli_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/digest/digest/internal/store"
)

// A reader who left and signed up again is listed once by list and export
// (as the subscriber), and as the sign-up by list --status pending.
func TestListOneRowPerAddress(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0, "")
	if code, _, errs := w.run("subscribers", "add", "alice@example.org", "--name", "Alice"); code != 0 {
		t.Fatalf("add: %s", errs)
	}
	if code, _, errs := w.run("subscribers", "remove", "alice@example.org"); code != 0 {
		t.Fatalf("remove: %s", errs)
	}
	st, err := store.Open(context.Background(), filepath.Join(w.dir, "digests", "digest.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutSignup(context.Background(), "alice@example.org", "Alice", nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, cmd := range [][]string{{"subscribers", "list"}, {"subscribers", "export"}} {
		_, out, errs := w.run(cmd...)
		if n := strings.Count(out, "alice@example.org"); n != 1 || !strings.Contains(out, "alice@example.org,Alice,unsubscribed") {
			t.Errorf("%s lists alice %d times:\n%s%s", cmd[1], n, out, errs)
		}
	}
	_, out, _ := w.run("subscribers", "list", "--status", "pending")
	if !strings.Contains(out, "alice@example.org,Alice,pending") {
		t.Errorf("list --status pending:\n%s", out)
	}
}
