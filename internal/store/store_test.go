package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/clocktest"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/store/storetest"
	"github.com/digest/digest/internal/subscriber"
)

var t0 = time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)

// newClock is a settable test clock at t0.
func newClock() *clocktest.Clock { return clocktest.New(t0) }

func openAt(t testing.TB, path string, c *clocktest.Clock) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, WithClock(c.Now), WithLeaseClock(c.Now))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openTest opens a fresh, empty database of the engine db.
func openTest(t testing.TB, db storetest.Backend) (*Store, *clocktest.Clock) {
	t.Helper()
	c := newClock()
	return openAt(t, db.Fresh(t), c), c
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustGet(t testing.TB, s *Store, email string) subscriber.Subscriber {
	t.Helper()
	sub, err := s.Get(context.Background(), email)
	must(t, err)
	return sub
}

func TestOpenMigrationsIdempotent(t *testing.T) { storetest.Run(t, testOpenMigrationsIdempotent) }

func testOpenMigrationsIdempotent(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	path := db.Fresh(t)
	c := newClock()
	for i := range 3 {
		s, err := Open(ctx, path, WithClock(c.Now))
		if err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		v, err := s.SchemaVersion(ctx)
		must(t, err)
		if v != len(s.d.migrations()) {
			t.Errorf("open #%d: schema version %d, want %d", i, v, len(s.d.migrations()))
		}
		var n int
		must(t, s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
		if n != len(s.d.migrations()) {
			t.Errorf("open #%d: %d migration rows, want %d", i, n, len(s.d.migrations()))
		}
		if i == 0 {
			_, err := s.Add(ctx, "ann@example.org", "Ann")
			must(t, err)
		}
		if got := mustGet(t, s, "ann@example.org"); got.Name != "Ann" {
			t.Errorf("open #%d: data lost: %+v", i, got)
		}
		must(t, s.Close())
	}
}

// TestOpenSettings checks what each engine is opened with: SQLite's pragmas
// (WAL, foreign keys, busy timeout, FULL sync); on Postgres a UTC session
// whose times scan in UTC, durable commits and a pool of several
// connections.
func TestOpenSettings(t *testing.T) { storetest.Run(t, testOpenSettings) }

func testOpenSettings(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	settings := map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"busy_timeout": "5000",
		"synchronous":  "2", // FULL
	}
	show := "PRAGMA "
	if db == storetest.Postgres {
		settings = map[string]string{"TimeZone": "UTC", "synchronous_commit": "on", "application_name": "digest"}
		show = "SHOW "
	}
	for name, want := range settings {
		var got string
		must(t, s.db.QueryRowContext(ctx, show+name).Scan(&got))
		if got != want {
			t.Errorf("%s%s = %s, want %s", show, name, got, want)
		}
	}
	wantConns := 1
	if db == storetest.Postgres {
		wantConns = pgMaxConns
		var now time.Time
		must(t, s.db.QueryRowContext(ctx, "SELECT now()").Scan(&now))
		if now.Location() != time.UTC {
			t.Errorf("a TIMESTAMPTZ scans in %v, want UTC", now.Location())
		}
	}
	if got := s.db.Stats().MaxOpenConnections; got != wantConns {
		t.Errorf("pool of %d connections, want %d", got, wantConns)
	}
}

func TestOpenErrors(t *testing.T) { storetest.Run(t, testOpenErrors) }

func testOpenErrors(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	tests := []struct{ dsn, want string }{
		{"", "empty database path"},
		{filepath.Join(t.TempDir(), "a?b.db"), "must not contain"},
	}
	if db == storetest.Postgres {
		// No server needed: a malformed URL, and a port where nothing
		// listens. The password never shows in the error.
		tests = []struct{ dsn, want string }{
			{"postgres://digest:hunter2@127.0.0.1:99999/digest", "open store"},
			{"postgres://digest:hunter2@127.0.0.1:1/digest?sslmode=disable", "127.0.0.1:1"},
		}
	}
	for _, tt := range tests {
		_, err := Open(ctx, tt.dsn)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) = %v, want an error with %q and no password", tt.dsn, err, tt.want)
		}
	}
}

func TestAdd(t *testing.T) { storetest.Run(t, testAdd) }

func testAdd(t *testing.T, db storetest.Backend) {
	s, c := openTest(t, db)
	ctx := context.Background()

	created, err := s.Add(ctx, "  Ann@Example.org ", "Ann")
	must(t, err)
	if !created {
		t.Fatal("first Add: created = false")
	}
	ann := mustGet(t, s, "ann@example.ORG")
	want := subscriber.Subscriber{ID: ann.ID, Email: "Ann@Example.org", Name: "Ann", Status: subscriber.StatusActive, Created: t0, Updated: t0}
	if !reflect.DeepEqual(ann, want) {
		t.Fatalf("Get = %+v, want %+v", ann, want)
	}

	// Same address in another case: the same subscriber, renamed, and
	// spelled as the operator wrote it now.
	c.Set(t0.Add(time.Hour))
	created, err = s.Add(ctx, "ANN@EXAMPLE.ORG", "Ann B.")
	must(t, err)
	if created {
		t.Error("Add of a known address in another case: created = true")
	}
	if got := mustGet(t, s, "ann@example.org"); got.Name != "Ann B." || got.Email != "ANN@EXAMPLE.ORG" || got.ID != ann.ID || !got.Created.Equal(t0) {
		t.Errorf("after second Add: %+v", got)
	}

	// Add re-activates an unsubscribed or bounced address.
	for _, status := range []string{subscriber.StatusUnsubscribed, subscriber.StatusBounced} {
		must(t, s.SetStatus(ctx, ann.ID, status))
		if _, err := s.Add(ctx, "ann@example.org", "Ann"); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, s, "ann@example.org"); got.Status != subscriber.StatusActive {
			t.Errorf("Add after %s: status %s, want active", status, got.Status)
		}
	}

	// An empty name keeps the stored one.
	_, err = s.Add(ctx, "ann@example.org", "")
	must(t, err)
	if got := mustGet(t, s, "ann@example.org"); got.Name != "Ann" {
		t.Errorf("Add with empty name: name %q, want %q", got.Name, "Ann")
	}

	for _, bad := range []string{"", "not an address", "Ann <ann@example.org>"} {
		if _, err := s.Add(ctx, bad, ""); err == nil {
			t.Errorf("Add(%q) succeeded", bad)
		}
	}
	if n, err := s.CountActive(ctx); err != nil || n != 1 {
		t.Errorf("CountActive = %d, %v; want 1", n, err)
	}
}

func TestSyncNeverReactivates(t *testing.T) { storetest.Run(t, testSyncNeverReactivates) }

func testSyncNeverReactivates(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	for _, e := range []string{"ann@example.org", "bob@example.org", "carol@example.org", "dave@example.org"} {
		_, err := s.Add(ctx, e, "old")
		must(t, err)
	}
	must(t, s.Remove(ctx, "bob@example.org"))
	must(t, s.SetStatus(ctx, mustGet(t, s, "carol@example.org").ID, subscriber.StatusBounced))

	rows := []subscriber.Row{
		{Line: 2, Email: "ANN@example.org", Name: "Ann"},   // renamed
		{Line: 3, Email: "bob@example.org", Name: "Bob"},   // renamed, stays unsubscribed
		{Line: 4, Email: "carol@example.org", Name: "old"}, // unchanged, stays bounced
		{Line: 5, Email: "dave@example.org", Name: ""},     // empty name keeps "old"
		{Line: 6, Email: "Eve@example.org", Name: "Eve"},   // added
	}
	res, err := s.Sync(ctx, rows)
	must(t, err)
	if want := (SyncResult{Added: 1, Updated: 2, Unchanged: 2}); res != want {
		t.Errorf("Sync = %+v, want %+v", res, want)
	}
	for email, want := range map[string][2]string{
		"ann@example.org":   {"Ann", subscriber.StatusActive},
		"bob@example.org":   {"Bob", subscriber.StatusUnsubscribed},
		"carol@example.org": {"old", subscriber.StatusBounced},
		"dave@example.org":  {"old", subscriber.StatusActive},
		"eve@example.org":   {"Eve", subscriber.StatusActive},
	} {
		got := mustGet(t, s, email)
		if got.Name != want[0] || got.Status != want[1] {
			t.Errorf("%s: name %q status %s, want %q %s", email, got.Name, got.Status, want[0], want[1])
		}
	}

	// Again: nothing to do.
	res, err = s.Sync(ctx, rows)
	must(t, err)
	if want := (SyncResult{Unchanged: 5}); res != want {
		t.Errorf("second Sync = %+v, want %+v", res, want)
	}

	// A bad row fails the whole sync, naming its line, and changes nothing.
	_, err = s.Sync(ctx, []subscriber.Row{{Line: 2, Email: "zed@example.org"}, {Line: 9, Email: "bad"}})
	if err == nil || !strings.Contains(err.Error(), "line 9") {
		t.Errorf("Sync with a bad row: %v, want an error naming line 9", err)
	}
	if _, err := s.Get(ctx, "zed@example.org"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("failed Sync left zed behind: %v", err)
	}
}

func TestRemoveAndDelete(t *testing.T) { storetest.Run(t, testRemoveAndDelete) }

func testRemoveAndDelete(t *testing.T, db storetest.Backend) {
	s, c := openTest(t, db)
	ctx := context.Background()
	_, err := s.Add(ctx, "Ann@example.org", "Ann")
	must(t, err)
	_, err = s.Add(ctx, "bob@example.org", "Bob")
	must(t, err)

	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"remove unknown", func() error { return s.Remove(ctx, "zed@example.org") }, ledger.ErrNotFound},
		{"delete unknown", func() error { return s.Delete(ctx, "zed@example.org") }, ledger.ErrNotFound},
		{"remove in other case", func() error { return s.Remove(ctx, "ANN@EXAMPLE.ORG") }, nil},
		{"remove twice", func() error { return s.Remove(ctx, "ann@example.org") }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if got := mustGet(t, s, "ann@example.org"); got.Status != subscriber.StatusUnsubscribed {
		t.Errorf("after Remove: status %s", got.Status)
	}

	// Delete takes the ledger rows with it.
	bob := mustGet(t, s, "bob@example.org")
	_, err = s.SaveIssue(ctx, Issue{ID: "2025-w10"})
	must(t, err)
	_, err = s.Enqueue(ctx, "2025-w10")
	must(t, err)
	must(t, s.Delete(ctx, "BOB@example.org"))
	if _, err := s.Get(ctx, "bob@example.org"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	var n int
	must(t, s.db.QueryRowContext(ctx, s.d.bind(`SELECT COUNT(*) FROM deliveries WHERE subscriber_id = ?`), bob.ID).Scan(&n))
	if n != 0 {
		t.Errorf("%d ledger rows left after Delete", n)
	}
	c.Set(t0.Add(time.Hour))
	created, err := s.Add(ctx, "bob@example.org", "Bob")
	must(t, err)
	if !created {
		t.Error("Add after Delete: created = false")
	}
}

func TestList(t *testing.T) { storetest.Run(t, testList) }

func testList(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	const n = listPage*2 + 17
	rows := make([]subscriber.Row, n)
	for i := range rows {
		rows[i] = subscriber.Row{Line: i + 2, Email: fmt.Sprintf("user%04d@example.org", i)}
	}
	_, err := s.Sync(ctx, rows)
	must(t, err)

	var got []string
	var last int64
	err = s.List(ctx, func(sub subscriber.Subscriber) error {
		if sub.ID <= last {
			t.Fatalf("id %d after %d: not in id order", sub.ID, last)
		}
		last = sub.ID
		got = append(got, sub.Email)
		// The callback may use the store (the single connection is free).
		if len(got) == listPage {
			if _, err := s.CountActive(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	must(t, err)
	if len(got) != n || got[0] != rows[0].Email || got[n-1] != rows[n-1].Email {
		t.Fatalf("List gave %d subscribers, want %d", len(got), n)
	}

	stop := errors.New("stop")
	calls := 0
	err = s.List(ctx, func(subscriber.Subscriber) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List with failing fn: err %v after %d calls", err, calls)
	}
}

func TestSetStatusAndUnsubscribe(t *testing.T) { storetest.Run(t, testSetStatusAndUnsubscribe) }

func testSetStatusAndUnsubscribe(t *testing.T, db storetest.Backend) {
	s, c := openTest(t, db)
	ctx := context.Background()
	_, err := s.Add(ctx, "ann@example.org", "")
	must(t, err)
	id := mustGet(t, s, "ann@example.org").ID

	if err := s.SetStatus(ctx, id, "gone"); err == nil {
		t.Error("SetStatus with an unknown status succeeded")
	}
	if err := s.SetStatus(ctx, id+100, subscriber.StatusBounced); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("SetStatus of unknown id: %v", err)
	}
	if err := s.Unsubscribe(ctx, id+100); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Unsubscribe of unknown id: %v", err)
	}

	unsubAt := func() time.Time {
		var at *time.Time
		must(t, s.db.QueryRowContext(ctx, s.d.bind(`SELECT unsubscribed_at FROM subscribers WHERE id = ?`), id).Scan(&at))
		if at == nil {
			return time.Time{}
		}
		return at.UTC()
	}
	c.Set(t0.Add(time.Minute))
	must(t, s.Unsubscribe(ctx, id))
	c.Set(t0.Add(time.Hour))
	must(t, s.Unsubscribe(ctx, id)) // idempotent
	if got := mustGet(t, s, "ann@example.org"); got.Status != subscriber.StatusUnsubscribed {
		t.Errorf("status %s after Unsubscribe", got.Status)
	}
	if at := unsubAt(); !at.Equal(t0.Add(time.Minute)) {
		t.Errorf("unsubscribed_at %v, want the first time %v", at, t0.Add(time.Minute))
	}
	if n, _ := s.CountActive(ctx); n != 0 {
		t.Errorf("CountActive = %d after Unsubscribe", n)
	}
	must(t, s.SetStatus(ctx, id, subscriber.StatusActive))
	if at := unsubAt(); !at.IsZero() {
		t.Errorf("unsubscribed_at %v after re-activation, want NULL", at)
	}
}

func TestSecretStableAcrossReopen(t *testing.T) { storetest.Run(t, testSecretStableAcrossReopen) }

func testSecretStableAcrossReopen(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	path := db.Fresh(t)
	c := newClock()
	s := openAt(t, path, c)
	a, err := s.Secret(ctx)
	must(t, err)
	b, err := s.Secret(ctx)
	must(t, err)
	must(t, s.Close())
	s2 := openAt(t, path, c)
	d, err := s2.Secret(ctx)
	must(t, err)
	if len(a) != 32 || string(a) != string(b) || string(a) != string(d) {
		t.Fatalf("secrets differ or are not 32 bytes: %x %x %x", a, b, d)
	}
	other, _ := openTest(t, db)
	e, err := other.Secret(ctx)
	must(t, err)
	if string(e) == string(a) {
		t.Error("two databases got the same secret")
	}
}

func TestIssues(t *testing.T) { storetest.Run(t, testIssues) }

func testIssues(t *testing.T, db storetest.Backend) {
	s, c := openTest(t, db)
	ctx := context.Background()
	if _, err := s.LatestIssue(ctx); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("LatestIssue on empty store: %v", err)
	}
	if _, err := s.GetIssue(ctx, "nope"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("GetIssue unknown: %v", err)
	}
	if _, err := s.SaveIssue(ctx, Issue{}); err == nil {
		t.Error("SaveIssue without id succeeded")
	}

	built := time.Date(2025, 3, 3, 7, 0, 0, 0, time.FixedZone("CET", 3600))
	first, err := s.SaveIssue(ctx, Issue{ID: "2025-w10", BuiltAt: built, Articles: 12})
	must(t, err)
	want := Issue{ID: "2025-w10", Number: 1, BuiltAt: built.UTC(), Articles: 12}
	if first != want {
		t.Fatalf("SaveIssue = %+v, want %+v", first, want)
	}
	// Saving the same id again changes nothing.
	again, err := s.SaveIssue(ctx, Issue{ID: "2025-w10", Articles: 1})
	must(t, err)
	if again != want {
		t.Errorf("second SaveIssue = %+v, want the stored %+v", again, want)
	}
	second, err := s.SaveIssue(ctx, Issue{ID: "2025-w11"})
	must(t, err)
	if second.Number != 2 || !second.BuiltAt.Equal(t0) {
		t.Errorf("second issue = %+v, want number 2 built at the clock's time", second)
	}
	if _, err := s.SaveIssue(ctx, Issue{ID: "dup", Number: 2}); err == nil {
		t.Error("SaveIssue with a taken number succeeded")
	}
	latest, err := s.LatestIssue(ctx)
	must(t, err)
	if latest.ID != "2025-w11" {
		t.Errorf("LatestIssue = %s", latest.ID)
	}

	done := t0.Add(2 * time.Hour)
	must(t, s.MarkIssueComplete(ctx, "2025-w10", done))
	c.Set(t0.Add(5 * time.Hour))
	must(t, s.MarkIssueComplete(ctx, "2025-w10", time.Time{}))
	got, err := s.GetIssue(ctx, "2025-w10")
	must(t, err)
	if !got.CompletedAt.Equal(done) {
		t.Errorf("CompletedAt = %v, want the first %v", got.CompletedAt, done)
	}
	if err := s.MarkIssueComplete(ctx, "nope", done); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("MarkIssueComplete unknown: %v", err)
	}
}

func TestSeenArticles(t *testing.T) { storetest.Run(t, testSeenArticles) }

func testSeenArticles(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	path := db.Fresh(t)
	c := newClock()
	s := openAt(t, path, c)
	t1, t2 := t0, t0.Add(24*time.Hour)

	got, err := s.FirstSeen(ctx, []string{"a", "b"}, t1)
	must(t, err)
	if want := map[string]time.Time{"a": t1, "b": t1}; !reflect.DeepEqual(got, want) {
		t.Errorf("FirstSeen #1 = %v, want %v", got, want)
	}
	must(t, s.Close())
	s = openAt(t, path, c)
	got, err = s.FirstSeen(ctx, []string{"b", "c"}, t2)
	must(t, err)
	if want := map[string]time.Time{"b": t1, "c": t2}; !reflect.DeepEqual(got, want) {
		t.Errorf("FirstSeen #2 = %v, want %v", got, want)
	}

	must(t, s.MarkArticlesSent(ctx, "w10", []string{"a", "b", "new"}))
	must(t, s.MarkArticlesSent(ctx, "w11", []string{"b", "c"}))
	tests := []struct {
		except string
		want   map[string]string
	}{
		{"w12", map[string]string{"a": "w10", "b": "w10", "c": "w11", "new": "w10"}},
		{"w10", map[string]string{"c": "w11"}},
	}
	for _, tt := range tests {
		t.Run("except "+tt.except, func(t *testing.T) {
			got, err := s.SentBefore(ctx, []string{"a", "b", "c", "new", "never"}, tt.except)
			must(t, err)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SentBefore = %v, want %v", got, tt.want)
			}
		})
	}
	// MarkArticlesSent on an unseen id records it as seen now.
	got, err = s.FirstSeen(ctx, []string{"new"}, t2)
	must(t, err)
	if !got["new"].Equal(t0) {
		t.Errorf("first seen of an id marked sent first: %v, want %v", got["new"], t0)
	}
}

// seed adds n active subscribers and one issue, and returns their ids.
func seed(t testing.TB, s *Store, n int, issueID string) []int64 {
	t.Helper()
	ctx := context.Background()
	rows := make([]subscriber.Row, n)
	for i := range rows {
		rows[i] = subscriber.Row{Email: fmt.Sprintf("user%05d@example.org", i), Name: fmt.Sprintf("User %d", i)}
	}
	_, err := s.Sync(ctx, rows)
	must(t, err)
	_, err = s.SaveIssue(ctx, Issue{ID: issueID})
	must(t, err)
	ids := make([]int64, 0, n)
	must(t, s.List(ctx, func(sub subscriber.Subscriber) error { ids = append(ids, sub.ID); return nil }))
	return ids
}

func counts(t testing.TB, s *Store, issue string) ledger.Counts {
	t.Helper()
	c, err := s.Counts(context.Background(), issue)
	must(t, err)
	return c
}

// testLease is the lease of the runs in these tests.
const testLease = 30 * time.Second

// recoverAfter is when the rows of a run whose lease began at t0 (and was
// never renewed) are certainly recovered: on Postgres a third of the lease
// and a second after it ended (a renewal may still be committing).
const recoverAfter = testLease + testLease/3 + time.Second

// beginRun registers a run named id of the issue (a worker, so that several
// can run at once).
func beginRun(t testing.TB, s *Store, issue, id string) *Run {
	t.Helper()
	r, err := s.BeginRun(context.Background(), ledger.RunInfo{ID: id, Host: "test", PID: 1, IssueID: issue, Worker: true}, testLease)
	must(t, err)
	return r
}

func recipientIDs(rs []ledger.Recipient) []int64 {
	ids := make([]int64, len(rs))
	for i, r := range rs {
		ids[i] = r.SubscriberID
	}
	return ids
}

func TestLedgerFlow(t *testing.T) { storetest.Run(t, testLedgerFlow) }

func testLedgerFlow(t *testing.T, db storetest.Backend) {
	s, c := openTest(t, db)
	ctx := context.Background()
	const issue = "2025-w10"
	ids := seed(t, s, 6, issue)
	must(t, s.Remove(ctx, "user00005@example.org")) // not enqueued

	if _, err := s.Enqueue(ctx, "nope"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Enqueue of unknown issue: %v", err)
	}
	added, err := s.Enqueue(ctx, issue)
	must(t, err)
	if added != 5 {
		t.Fatalf("Enqueue added %d, want 5", added)
	}
	if added, _ := s.Enqueue(ctx, issue); added != 0 {
		t.Errorf("second Enqueue added %d, want 0", added)
	}
	if got := counts(t, s, issue); got != (ledger.Counts{Pending: 5}) {
		t.Errorf("counts after Enqueue: %+v", got)
	}

	r := beginRun(t, s, issue, "run-a")
	if _, err := r.Claim(ctx, issue, 0); err == nil {
		t.Error("Claim with limit 0 succeeded")
	}
	batch, err := r.Claim(ctx, issue, 2)
	must(t, err)
	if got := recipientIDs(batch); !reflect.DeepEqual(got, ids[:2]) {
		t.Fatalf("first claim %v, want %v", got, ids[:2])
	}
	if batch[0].Email != "user00000@example.org" || batch[0].Name != "User 0" || batch[0].IssueID != issue {
		t.Errorf("recipient = %+v", batch[0])
	}
	if got := counts(t, s, issue); got != (ledger.Counts{Pending: 3, Sending: 2}) {
		t.Errorf("counts after Claim: %+v", got)
	}

	// ids[0] sent, ids[1] deferred (4xx): back to pending.
	sentAt := t0.Add(time.Minute)
	must(t, r.Record(ctx, issue, []ledger.Outcome{
		{SubscriberID: ids[0], Status: ledger.Sent, Attempts: 1, Code: 250, At: sentAt},
		{SubscriberID: ids[1], Status: ledger.Pending, Code: 451, Enhanced: "4.7.1", Reply: "try later"},
	}))
	if got := counts(t, s, issue); got != (ledger.Counts{Pending: 4, Sent: 1}) {
		t.Errorf("counts after Record: %+v", got)
	}
	var (
		attempts int
		reply    string
		at       *time.Time
	)
	must(t, s.db.QueryRowContext(ctx, s.d.bind(`SELECT sent_at FROM deliveries WHERE issue_id = ? AND subscriber_id = ?`), issue, ids[0]).Scan(&at))
	if at == nil || !at.Equal(sentAt) {
		t.Errorf("sent_at = %v, want %v", at, sentAt)
	}
	must(t, s.db.QueryRowContext(ctx, s.d.bind(`SELECT attempts, last_reply FROM deliveries WHERE issue_id = ? AND subscriber_id = ?`), issue, ids[1]).Scan(&attempts, &reply))
	if attempts != 1 || reply != "try later" {
		t.Errorf("deferred row: attempts %d reply %q", attempts, reply)
	}

	// ids[2] unsubscribes before its turn: settled as skipped by the claim,
	// and returned as gone so that nothing is sent to it.
	must(t, s.Unsubscribe(ctx, ids[2]))
	c.Set(t0.Add(time.Hour))
	batch, err = r.Claim(ctx, issue, 10)
	must(t, err)
	if got, want := recipientIDs(batch), []int64{ids[1], ids[2], ids[3], ids[4]}; !reflect.DeepEqual(got, want) {
		t.Fatalf("second claim %v, want %v", got, want)
	}
	if batch[0].Attempts != 1 {
		t.Errorf("re-claimed row has Attempts %d, want 1", batch[0].Attempts)
	}
	for _, rc := range batch {
		if gone := rc.SubscriberID == ids[2]; (rc.Gone != "") != gone || (gone && rc.Gone != subscriber.StatusUnsubscribed) {
			t.Errorf("recipient %d: Gone = %q", rc.SubscriberID, rc.Gone)
		}
	}

	must(t, r.Record(ctx, issue, []ledger.Outcome{
		{SubscriberID: ids[1], Status: ledger.Sent, Attempts: 3, Code: 250},
		{SubscriberID: ids[3], Status: ledger.Failed, Attempts: 1, Code: 550, Enhanced: "5.1.1", Reply: "no such user", Bounced: true},
		{SubscriberID: ids[4], Status: ledger.Failed, Attempts: 1, Code: 554, Reply: "spam"},
	}))
	// A repeated or late outcome does not undo a final row.
	must(t, r.Record(ctx, issue, []ledger.Outcome{{SubscriberID: ids[0], Status: ledger.Failed, Reply: "late"}}))
	if err := r.Record(ctx, issue, []ledger.Outcome{{SubscriberID: ids[0], Status: "done"}}); err == nil {
		t.Error("Record with an unknown status succeeded")
	}

	if got := counts(t, s, issue); got != (ledger.Counts{Sent: 2, Failed: 2, Skipped: 1}) || got.Total() != 5 {
		t.Errorf("final counts: %+v", got)
	}
	if got := mustGet(t, s, "user00003@example.org").Status; got != subscriber.StatusBounced {
		t.Errorf("bounced subscriber has status %s", got)
	}
	if got := mustGet(t, s, "user00004@example.org").Status; got != subscriber.StatusActive {
		t.Errorf("failed-not-bounced subscriber has status %s", got)
	}
	fails, err := s.Failures(ctx, issue, 0)
	must(t, err)
	wantFails := []ledger.Failure{
		{Email: "user00003@example.org", Attempts: 1, Code: 550, Enhanced: "5.1.1", Reply: "no such user"},
		{Email: "user00004@example.org", Attempts: 1, Code: 554, Reply: "spam"},
	}
	if !reflect.DeepEqual(fails, wantFails) {
		t.Errorf("Failures:\n got %+v\nwant %+v", fails, wantFails)
	}
	fails, err = s.Failures(ctx, issue, 2)
	must(t, err)
	if len(fails) != 2 {
		t.Errorf("Failures with limit 2 gave %d", len(fails))
	}
	must(t, s.db.QueryRowContext(ctx, s.d.bind(`SELECT attempts FROM deliveries WHERE issue_id = ? AND subscriber_id = ?`), issue, ids[1]).Scan(&attempts))
	if attempts != 3 {
		t.Errorf("attempts = %d, want Outcome.Attempts 3", attempts)
	}
	if batch, _ := r.Claim(ctx, issue, 10); len(batch) != 0 {
		t.Errorf("claim after all settled returned %v", recipientIDs(batch))
	}
}

func TestCrashRecoveryAndRelease(t *testing.T) { storetest.Run(t, testCrashRecoveryAndRelease) }

func testCrashRecoveryAndRelease(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	path := db.Fresh(t)
	c := newClock()
	s := openAt(t, path, c)
	const issue = "w10"
	ids := seed(t, s, 5, issue)
	_, err := s.Enqueue(ctx, issue)
	must(t, err)
	dead := beginRun(t, s, issue, "dead")
	batch, err := dead.Claim(ctx, issue, 3)
	must(t, err)
	must(t, dead.Record(ctx, issue, []ledger.Outcome{{SubscriberID: batch[0].SubscriberID, Status: ledger.Sent}}))
	must(t, s.Close()) // "crash": two rows left in sending under dead's lease

	s = openAt(t, path, c)
	if got := counts(t, s, issue); got != (ledger.Counts{Pending: 2, Sending: 2, Sent: 1}) {
		t.Fatalf("counts after crash: %+v", got)
	}
	added, err := s.Enqueue(ctx, issue)
	must(t, err)
	if added != 0 {
		t.Errorf("Enqueue after crash added %d", added)
	}
	if got := counts(t, s, issue); got != (ledger.Counts{Pending: 2, Sending: 2, Sent: 1}) {
		t.Fatalf("Enqueue touched rows in flight: %+v", got)
	}
	next := beginRun(t, s, issue, "next")
	// While dead's lease lasts, its rows are not taken.
	batch, err = next.Claim(ctx, issue, 10)
	must(t, err)
	if got := recipientIDs(batch); !reflect.DeepEqual(got, ids[3:]) {
		t.Fatalf("claim within the lease %v, want %v", got, ids[3:])
	}
	if n, err := next.HeldByOthers(ctx, issue); err != nil || n != 2 {
		t.Errorf("HeldByOthers = %d, %v; want 2", n, err)
	}
	// After it, they are; next renewed its own in time.
	c.Set(t0.Add(testLease * 2 / 3))
	if live, err := next.Renew(ctx); err != nil || live != 2 {
		t.Fatalf("Renew = %d, %v; want 2 live runs (dead's lease not yet over)", live, err)
	}
	c.Set(t0.Add(recoverAfter))
	batch, err = next.Claim(ctx, issue, 10)
	must(t, err)
	if got := recipientIDs(batch); !reflect.DeepEqual(got, ids[1:3]) {
		t.Fatalf("claim after the lease %v, want %v", got, ids[1:3])
	}

	// Graceful stop: the ones not attempted go back; a sent one is untouched.
	must(t, next.Record(ctx, issue, []ledger.Outcome{{SubscriberID: ids[1], Status: ledger.Sent}}))
	must(t, next.Release(ctx, issue, []int64{ids[1], ids[2], ids[3]}))
	if got := counts(t, s, issue); got != (ledger.Counts{Pending: 2, Sending: 1, Sent: 2}) {
		t.Errorf("counts after Release: %+v", got)
	}
	must(t, next.End(ctx))
	if got := counts(t, s, issue); got != (ledger.Counts{Pending: 3, Sent: 2}) {
		t.Errorf("counts after End: %+v", got)
	}
}

func TestClaimConcurrent(t *testing.T) { storetest.Run(t, testClaimConcurrent) }

func testClaimConcurrent(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	path := db.Fresh(t)
	c := newClock()
	// Three Stores on one database stand for three processes (on
	// Postgres each has a pool of several connections); each has
	// goroutines.
	stores := []*Store{openAt(t, path, c), openAt(t, path, c), openAt(t, path, c)}
	const n, issue = 600, "w10"
	seed(t, stores[0], n, issue)
	_, err := stores[0].Enqueue(ctx, issue)
	must(t, err)

	var (
		mu      sync.Mutex
		claimed = map[int64]int{}
		wg      sync.WaitGroup
		errs    atomic.Value
	)
	for w := range 8 {
		wg.Add(1)
		go func(s *Store) {
			defer wg.Done()
			r := beginRun(t, s, issue, fmt.Sprintf("worker-%d", w))
			for {
				batch, err := r.Claim(ctx, issue, 7)
				if err != nil {
					errs.Store(err)
					return
				}
				if len(batch) == 0 {
					return
				}
				outs := make([]ledger.Outcome, len(batch))
				mu.Lock()
				for i, r := range batch {
					claimed[r.SubscriberID]++
					outs[i] = ledger.Outcome{SubscriberID: r.SubscriberID, Status: ledger.Sent, Code: 250}
				}
				mu.Unlock()
				if err := r.Record(ctx, issue, outs); err != nil {
					errs.Store(err)
					return
				}
			}
		}(stores[w%len(stores)])
	}
	wg.Wait()
	if err, _ := errs.Load().(error); err != nil {
		t.Fatal(err)
	}
	if len(claimed) != n {
		t.Errorf("%d distinct rows claimed, want %d", len(claimed), n)
	}
	for id, k := range claimed {
		if k != 1 {
			t.Errorf("subscriber %d claimed %d times", id, k)
		}
	}
	if got := counts(t, stores[1], issue); got != (ledger.Counts{Sent: n}) {
		t.Errorf("counts: %+v", got)
	}
}

// BenchmarkClaim measures claiming one batch of 100 pending rows.
func BenchmarkClaim(b *testing.B) {
	eachBackend(b, func(b *testing.B, db storetest.Backend) {
		s, _ := openTest(b, db)
		ctx := context.Background()
		const batch, issue = 100, "w10"
		bulkSubscribers(b, s, b.N*batch)
		_, err := s.SaveIssue(ctx, Issue{ID: issue})
		must(b, err)
		_, err = s.Enqueue(ctx, issue)
		must(b, err)
		r := beginRun(b, s, issue, "bench")
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			rs, err := r.Claim(ctx, issue, batch)
			must(b, err)
			if len(rs) != batch {
				b.Fatalf("claimed %d", len(rs))
			}
		}
	})
}

// eachBackend runs a benchmark once per engine, as sub-benchmarks.
func eachBackend(b *testing.B, fn func(b *testing.B, db storetest.Backend)) {
	for _, db := range storetest.Backends() {
		b.Run(string(db), func(b *testing.B) { fn(b, db) })
	}
}

// bulkSubscribers inserts n active subscribers in one statement.
func bulkSubscribers(b *testing.B, s *Store, n int) {
	q := `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO subscribers (email, email_key, name, status, created_at, updated_at)
		SELECT 'u' || i || '@example.org', 'u' || i || '@example.org', 'User', 'active', ?, ? FROM n`
	if s.d == dialectPostgres {
		q = `INSERT INTO subscribers (email, email_key, name, status, created_at, updated_at)
		SELECT 'u' || i || '@example.org', 'u' || i || '@example.org', 'User', 'active', ?::timestamptz, ?::timestamptz
		FROM generate_series(1, ?::integer) AS i`
		_, err := s.db.ExecContext(context.Background(), s.d.bind(q), t0, t0, n)
		must(b, err)
		return
	}
	_, err := s.db.ExecContext(context.Background(), q, n, t0, t0)
	must(b, err)
}

// BenchmarkRecord measures recording one batch of 100 outcomes (sent) in one
// transaction; the claim that precedes each batch is not timed.
func BenchmarkRecord(b *testing.B) {
	eachBackend(b, func(b *testing.B, db storetest.Backend) {
		s, _ := openTest(b, db)
		ctx := context.Background()
		const batch, issue = 100, "w10"
		bulkSubscribers(b, s, b.N*batch) // enough rows for every iteration
		_, err := s.SaveIssue(ctx, Issue{ID: issue})
		must(b, err)
		_, err = s.Enqueue(ctx, issue)
		must(b, err)
		outs := make([]ledger.Outcome, batch)
		r := beginRun(b, s, issue, "bench")
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			rs, err := r.Claim(ctx, issue, batch)
			must(b, err)
			for j, r := range rs {
				outs[j] = ledger.Outcome{SubscriberID: r.SubscriberID, Status: ledger.Sent, Attempts: 1, Code: 250, At: t0}
			}
			b.StartTimer()
			must(b, r.Record(ctx, issue, outs[:len(rs)]))
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "outcomes/s")
	})
}

// BenchmarkEnqueue measures enqueueing an issue for 100,000 subscribers.
func BenchmarkEnqueue(b *testing.B) {
	eachBackend(b, func(b *testing.B, db storetest.Backend) {
		s, _ := openTest(b, db)
		ctx := context.Background()
		const n = 100_000
		bulkSubscribers(b, s, n)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			id := fmt.Sprintf("issue-%d", i)
			_, err := s.SaveIssue(ctx, Issue{ID: id})
			must(b, err)
			b.StartTimer()
			added, err := s.Enqueue(ctx, id)
			must(b, err)
			if added != n {
				b.Fatalf("added %d", added)
			}
		}
	})
}

func TestDeleteUnsentIssue(t *testing.T) { storetest.Run(t, testDeleteUnsentIssue) }

func testDeleteUnsentIssue(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	seed(t, s, 2, "sent")
	_, err := s.SaveIssue(ctx, Issue{ID: "unsent"})
	must(t, err)
	_, err = s.Enqueue(ctx, "sent")
	must(t, err)
	if err := s.DeleteUnsentIssue(ctx, "sent"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("deleting an issue whose delivery started: %v, want ErrNotFound", err)
	}
	must(t, s.DeleteUnsentIssue(ctx, "unsent"))
	if _, err := s.GetIssue(ctx, "unsent"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("unsent issue still there: %v", err)
	}
	if _, err := s.GetIssue(ctx, "sent"); err != nil {
		t.Errorf("the started issue is gone: %v", err)
	}
	// Its number is free again.
	next, err := s.SaveIssue(ctx, Issue{ID: "next"})
	must(t, err)
	if next.Number != 2 {
		t.Errorf("next issue got number %d, want 2", next.Number)
	}
}

func TestRecentIssues(t *testing.T) { storetest.Run(t, testRecentIssues) }

// Issues of several a day list newest first by the time their ids name,
// not by number (a late catch-up, a build for an earlier time).
func testRecentIssues(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	for _, id := range []string{"2026-12-03", "2026-12-04-1900", "2026-12-04-0700", "2026-12-04-190005", "2026-12-05"} {
		_, err := s.SaveIssue(ctx, Issue{ID: id})
		must(t, err)
	}
	got, err := s.RecentIssues(ctx, 4)
	must(t, err)
	var ids []string
	for _, is := range got {
		ids = append(ids, is.ID)
	}
	if want := "2026-12-05 2026-12-04-190005 2026-12-04-1900 2026-12-04-0700"; strings.Join(ids, " ") != want {
		t.Errorf("RecentIssues = %q, want %q", ids, want)
	}
	if got[2].Number != 2 {
		t.Errorf("issue %s has number %d, want 2 (numbers count issues as built)", got[2].ID, got[2].Number)
	}
}
