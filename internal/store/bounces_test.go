package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/bounce"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/store/storetest"
	"github.com/digest/digest/internal/subscriber"
)

// event is a bounce event about reader id (0: nobody) on day d after t0.
func event(kind bounce.Kind, id int64, day int, fp string) bounce.Event {
	return bounce.Event{Fingerprint: fp, At: t0.Add(time.Duration(day) * 24 * time.Hour), Source: "test",
		Verdict: bounce.Verdict{Kind: kind, Status: "5.1.1"},
		Reader:  bounce.Reader{SubscriberID: id, IssueID: "i1", Via: "verp"}}
}

func TestBouncePolicy(t *testing.T) { storetest.Run(t, testBouncePolicy) }

func testBouncePolicy(t *testing.T, db storetest.Backend) {
	type step struct {
		kind   bounce.Kind
		day    int
		fp     string // "" : unique
		action string
	}
	tests := []struct {
		name   string
		start  string // status before
		steps  []step
		status string
	}{
		{"hard bounces at once", "active", []step{{bounce.Hard, 0, "", bounce.ActionBounced}}, "bounced"},
		{"replay is harmless", "active", []step{{bounce.Complaint, 0, "x", bounce.ActionComplained}, {bounce.Complaint, 0, "x", bounce.ActionDuplicate}}, "complained"},
		{"complaint over unsubscribed", "unsubscribed", []step{{bounce.Complaint, 0, "", bounce.ActionComplained}}, "complained"},
		{"hard leaves unsubscribed", "unsubscribed", []step{{bounce.Hard, 0, "", bounce.ActionNone}}, "unsubscribed"},
		{"sender block changes no one", "active", []step{{bounce.SenderBlock, 0, "", bounce.ActionNone}, {bounce.SenderBlock, 1, "", bounce.ActionNone},
			{bounce.SenderBlock, 2, "", bounce.ActionNone}}, "active"},
		{"delays count for nothing", "active", []step{{bounce.Delayed, 0, "", bounce.ActionNone}, {bounce.Delayed, 1, "", bounce.ActionNone},
			{bounce.Delayed, 2, "", bounce.ActionNone}, {bounce.AutoReply, 3, "", bounce.ActionNone}}, "active"},
		{"three soft days bounce", "active", []step{{bounce.Soft, 0, "", bounce.ActionScored}, {bounce.Soft, 0, "", bounce.ActionScored},
			{bounce.Soft, 5, "", bounce.ActionScored}, {bounce.Soft, 20, "", bounce.ActionBounced}}, "bounced"},
		{"soft days outside 30 days", "active", []step{{bounce.Soft, 0, "", bounce.ActionScored}, {bounce.Soft, 20, "", bounce.ActionScored},
			{bounce.Soft, 40, "", bounce.ActionScored}}, "active"},
		{"a delivery resets", "active", []step{{bounce.Soft, 0, "", bounce.ActionScored}, {bounce.Soft, 1, "", bounce.ActionScored},
			{bounce.Delivered, 2, "", bounce.ActionReset}, {bounce.Soft, 3, "", bounce.ActionScored}, {bounce.Soft, 4, "", bounce.ActionScored}}, "active"},
		{"unmatched changes no one", "active", []step{{bounce.Unmatched, 0, "", bounce.ActionNone}}, "active"},
	}
	s, _ := openTest(t, db)
	ctx := context.Background()
	for i, tt := range tests {
		email := fmt.Sprintf("r%d@example.org", i)
		_, err := s.Add(ctx, email, "")
		must(t, err)
		id := mustGet(t, s, email).ID
		if tt.start != "active" {
			must(t, s.SetStatus(ctx, id, tt.start))
		}
		for j, st := range tt.steps {
			fp := st.fp
			if fp == "" {
				fp = fmt.Sprintf("%d-%d", i, j)
			}
			ev, err := s.RecordBounce(ctx, event(st.kind, id, st.day, fmt.Sprintf("%d-%s", i, fp)))
			must(t, err)
			if ev.Action != st.action {
				t.Errorf("%s: step %d (%s day %d): action %q, want %q", tt.name, j, st.kind, st.day, ev.Action, st.action)
			}
		}
		if got := mustGet(t, s, email).Status; got != tt.status {
			t.Errorf("%s: status %q, want %q", tt.name, got, tt.status)
		}
	}
}

func TestComplainedStaysComplained(t *testing.T) { storetest.Run(t, testComplainedStaysComplained) }

func testComplainedStaysComplained(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	ids := seed(t, s, 3, "i1")
	_, err := s.RecordBounce(ctx, event(bounce.Complaint, ids[1], 0, "c"))
	must(t, err)
	email := mustGet(t, s, "user00001@example.org").Email
	// Neither an import nor the operator's add re-activates a reader who
	// complained.
	_, err = s.Sync(ctx, []subscriber.Row{{Email: email, Status: subscriber.StatusActive}})
	must(t, err)
	_, err = s.Put(ctx, subscriber.Row{Email: email, Name: "New name"})
	must(t, err)
	got := mustGet(t, s, email)
	if got.Status != subscriber.StatusComplained || got.Name != "New name" {
		t.Fatalf("after import and add: %+v", got)
	}
	n, err := s.Enqueue(ctx, "i1")
	must(t, err)
	if n != 2 {
		t.Errorf("enqueued %d, want the 2 others", n)
	}
}

func TestUnmatchedKeptForAWhile(t *testing.T) { storetest.Run(t, testUnmatchedKeptForAWhile) }

func testUnmatchedKeptForAWhile(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	old := event(bounce.Unmatched, 0, 0, "")
	old.Raw, old.Reason = []byte("garbage"), "neither a bounce"
	ev, err := s.RecordBounce(ctx, old)
	must(t, err)
	raw, err := s.BounceRaw(ctx, ev.ID)
	must(t, err)
	if string(raw) != "garbage" || ev.Fingerprint == "" {
		t.Fatalf("raw %q, fingerprint %q", raw, ev.Fingerprint)
	}
	// The same bytes again are the same event.
	if again, err := s.RecordBounce(ctx, old); err != nil || again.Action != bounce.ActionDuplicate {
		t.Fatalf("replay: %q, %v", again.Action, err)
	}
	_, err = s.RecordBounce(ctx, event(bounce.Delivered, 0, 0, "delivered"))
	must(t, err)
	_, err = s.RecordBounce(ctx, event(bounce.Hard, 0, 0, "hard"))
	must(t, err)
	later := event(bounce.Unmatched, 0, 31, "later")
	later.Raw = []byte("more garbage")
	_, err = s.RecordBounce(ctx, later)
	must(t, err)
	evs, err := s.RecentBounces(ctx, 10)
	must(t, err)
	if len(evs) != 2 || evs[0].Kind != bounce.Unmatched || evs[1].Kind != bounce.Hard {
		t.Fatalf("events %+v, want the later unmatched one and the hard bounce", evs)
	}
	totals, err := s.BounceTotals(ctx)
	must(t, err)
	if totals[[2]string{"unmatched", "test"}] != 1 {
		t.Errorf("totals %v", totals)
	}
}

func TestRawCopiesHaveABudget(t *testing.T) { storetest.Run(t, testRawCopiesHaveABudget) }

// The copies of unmatched messages kept hold at most the budget together:
// past it events are kept without their copy, saying so; copies older than
// UnmatchedKeep go, even of events that stay.
func testRawCopiesHaveABudget(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	s.rawBudget = 25
	ctx := context.Background()
	record := func(kind bounce.Kind, day int, fp, raw string) bounce.Event {
		t.Helper()
		ev := event(kind, 0, day, fp)
		ev.Raw, ev.Reason = []byte(raw), "names nobody"
		got, err := s.RecordBounce(ctx, ev)
		must(t, err)
		return got
	}
	first := record(bounce.Hard, 0, "a", "0123456789")
	second := record(bounce.Unmatched, 0, "b", "0123456789")
	third := record(bounce.Unmatched, 0, "c", "0123456789")
	for _, c := range []struct {
		ev   bounce.Event
		want string
	}{{first, "0123456789"}, {second, "0123456789"}, {third, ""}} {
		raw, err := s.BounceRaw(ctx, c.ev.ID)
		if c.want == "" {
			if !errors.Is(err, ledger.ErrNotFound) {
				t.Errorf("event %s: copy %q, %v; want none kept, over the budget", c.ev.Fingerprint, raw, err)
			}
			continue
		}
		if err != nil || string(raw) != c.want {
			t.Errorf("event %s: copy %q, %v", c.ev.Fingerprint, raw, err)
		}
	}
	evs, err := s.RecentBounces(ctx, 10)
	must(t, err)
	if len(evs) != 3 || !strings.Contains(evs[0].Reason, "names nobody; its copy was not kept") {
		t.Errorf("latest event's reason %q", evs[0].Reason)
	}
	// A month later the unmatched ones are gone, and so is the hard
	// bounce's copy, though the event stays: room for new copies.
	later := record(bounce.Unmatched, 31, "d", "abcdefghij")
	if raw, err := s.BounceRaw(ctx, later.ID); err != nil || string(raw) != "abcdefghij" {
		t.Errorf("a month later: copy %q, %v", raw, err)
	}
	if raw, err := s.BounceRaw(ctx, first.ID); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("the old hard bounce's copy: %q, %v; want dropped", raw, err)
	}
}

func TestIssueOutcome(t *testing.T) { storetest.Run(t, testIssueOutcome) }

func testIssueOutcome(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	ids := seed(t, s, 5, "i1")
	_, err := s.Enqueue(ctx, "i1")
	must(t, err)
	r := beginRun(t, s, "i1", "run")
	claimed, err := r.Claim(ctx, "i1", 10)
	must(t, err)
	outs := sentOutcomes(claimed)
	must(t, r.Record(ctx, "i1", outs))
	for i, k := range []bounce.Kind{bounce.Hard, bounce.Soft, bounce.Complaint, bounce.SenderBlock} {
		_, err := s.RecordBounce(ctx, event(k, ids[i], 0, string(k)))
		must(t, err)
	}
	must(t, s.Unsubscribe(ctx, ids[4]))
	o, err := s.IssueOutcome(ctx, "i1")
	must(t, err)
	want := ledger.IssueOutcome{Hard: 1, Soft: 1, Complaints: 1, Unsubscribed: 1, Bounced: 1, Complained: 1}
	if o != want {
		t.Errorf("outcome %+v, want %+v", o, want)
	}
}

// TestBounceMigrationKeepsRows re-runs the SQLite rebuild of subscribers
// over a ledger: no delivery row may go with the old table.
func TestBounceMigrationKeepsRows(t *testing.T) {
	path := storetest.SQLite.Fresh(t)
	c := newClock()
	s := openAt(t, path, c)
	ctx := context.Background()
	seed(t, s, 4, "i1")
	_, err := s.Enqueue(ctx, "i1")
	must(t, err)
	_, err = s.db.ExecContext(ctx, `DROP TABLE bounce_events; DELETE FROM schema_migrations WHERE version = 10`)
	must(t, err)
	s.Close()
	s = openAt(t, path, c)
	if n := counts(t, s, "i1").Pending; n != 4 {
		t.Fatalf("%d pending rows after the migration, want 4", n)
	}
	var fk int
	must(t, s.db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk))
	if fk != 1 {
		t.Fatal("foreign keys left off")
	}
	_, err = s.RecordBounce(ctx, event(bounce.Complaint, 1, 0, "c"))
	must(t, err)
	if st := mustGet(t, s, "user00000@example.org").Status; st != subscriber.StatusComplained {
		t.Fatalf("status %q", st)
	}
}

func sentOutcomes(rs []ledger.Recipient) []ledger.Outcome {
	outs := make([]ledger.Outcome, len(rs))
	for i, r := range rs {
		outs[i] = ledger.Outcome{SubscriberID: r.SubscriberID, Status: ledger.Sent, Attempts: 1, At: t0}
	}
	return outs
}

func TestWasSent(t *testing.T) { storetest.Run(t, testWasSent) }

func testWasSent(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	ids := seed(t, s, 2, "i1")
	_, err := s.Enqueue(ctx, "i1")
	must(t, err)
	r := beginRun(t, s, "i1", "run")
	claimed, err := r.Claim(ctx, "i1", 1)
	must(t, err)
	must(t, r.Record(ctx, "i1", sentOutcomes(claimed)))
	for _, tt := range []struct {
		issue string
		id    int64
		want  bool
	}{{"i1", claimed[0].SubscriberID, true}, {"i1", ids[1], false}, {"i2", ids[0], false}} {
		got, err := s.WasSent(ctx, tt.issue, tt.id)
		if err != nil || got != tt.want {
			t.Errorf("WasSent(%s, %d) = %v, %v; want %v", tt.issue, tt.id, got, err, tt.want)
		}
	}
}

func TestDeletedReaderLeavesNoScore(t *testing.T) { storetest.Run(t, testDeletedReaderLeavesNoScore) }

func testDeletedReaderLeavesNoScore(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	_, err := s.Add(ctx, "gone@example.org", "")
	must(t, err)
	id := mustGet(t, s, "gone@example.org").ID
	for day := range 2 {
		_, err := s.RecordBounce(ctx, event(bounce.Soft, id, day, fmt.Sprint("soft", day)))
		must(t, err)
	}
	must(t, s.Delete(ctx, "gone@example.org"))
	evs, err := s.RecentBounces(ctx, 10)
	must(t, err)
	if len(evs) != 2 || evs[0].Reader.SubscriberID != 0 {
		t.Fatalf("events after the delete: %+v", evs)
	}
}
