package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/store/storetest"
)

func TestRetryTimes(t *testing.T) { storetest.Run(t, testRetryTimes) }

// A row recorded pending with a retry delay is not claimed before its time
// (on the lease clock), then is, with its attempts; the issue is not
// delivered while it waits.
func testRetryTimes(t *testing.T, db storetest.Backend) {
	s, c := openTest(t, db)
	ctx := context.Background()
	const issue = "w10"
	ids := seed(t, s, 3, issue)
	_, err := s.Enqueue(ctx, issue)
	must(t, err)
	r := beginRun(t, s, issue, "a")
	got, err := r.Claim(ctx, issue, 10)
	must(t, err)
	if len(got) != 3 {
		t.Fatalf("claimed %v", recipientIDs(got))
	}
	must(t, r.Record(ctx, issue, []ledger.Outcome{
		{SubscriberID: ids[0], Status: ledger.Sent},
		{SubscriberID: ids[1], Status: ledger.Pending, Attempts: 1, Code: 452, Reply: "mailbox full", RetryAfter: 5 * time.Minute},
		{SubscriberID: ids[2], Status: ledger.Pending, Attempts: 1, Code: 451, Reply: "later"},
	}))
	got, err = r.Claim(ctx, issue, 10)
	must(t, err)
	if !slices.Equal(recipientIDs(got), []int64{ids[2]}) {
		t.Fatalf("claimed %v at once, want only %d (no delay)", recipientIDs(got), ids[2])
	}
	must(t, r.Release(ctx, issue, []int64{ids[2]}))
	if c := counts(t, s, issue); c.Delivered() || c.Pending != 2 {
		t.Errorf("counts %+v while a reader waits for a retry", c)
	}
	if n, next, err := s.RetriesWaiting(ctx, issue); err != nil || n != 1 || !next.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("RetriesWaiting = %d, %s, %v; want 1 due at %s", n, next, err, t0.Add(5*time.Minute))
	}

	c.Set(t0.Add(5*time.Minute - time.Second))
	got, err = r.Claim(ctx, issue, 10)
	must(t, err)
	if !slices.Equal(recipientIDs(got), []int64{ids[2]}) {
		t.Fatalf("claimed %v before the retry time", recipientIDs(got))
	}
	c.Set(t0.Add(5 * time.Minute))
	if n, _, err := s.RetriesWaiting(ctx, issue); err != nil || n != 0 {
		t.Errorf("RetriesWaiting once due = %d, %v; want 0", n, err)
	}
	got, err = r.Claim(ctx, issue, 10)
	must(t, err)
	if len(got) != 1 || got[0].SubscriberID != ids[1] || got[0].Attempts != 1 {
		t.Fatalf("claimed %+v once due, want subscriber %d with 1 attempt", got, ids[1])
	}
}

func TestRelayOutageRecord(t *testing.T) { storetest.Run(t, testRelayOutageRecord) }

func testRelayOutageRecord(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	if _, ok, err := s.LastRelayOutage(ctx); err != nil || ok {
		t.Fatalf("fresh store: outage %v, %v", ok, err)
	}
	want := RelayOutage{Since: t0, Reply: "421 4.3.2 shutting down"}
	must(t, s.SaveRelayOutage(ctx, want))
	must(t, s.SaveRelayOutage(ctx, want)) // again: replaces
	got, ok, err := s.LastRelayOutage(ctx)
	if err != nil || !ok || !got.Since.Equal(want.Since) || got.Reply != want.Reply {
		t.Fatalf("outage %+v %v %v, want %+v", got, ok, err, want)
	}
	must(t, s.ClearRelayOutage(ctx))
	if _, ok, _ := s.LastRelayOutage(ctx); ok {
		t.Error("outage still there after Clear")
	}
}

func TestNthSentSince(t *testing.T) { storetest.Run(t, testNthSentSince) }

func testNthSentSince(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	const issue = "w10"
	ids := seed(t, s, 3, issue)
	_, err := s.Enqueue(ctx, issue)
	must(t, err)
	r := beginRun(t, s, issue, "a")
	_, err = r.Claim(ctx, issue, 10)
	must(t, err)
	var outs []ledger.Outcome
	for i, id := range ids {
		outs = append(outs, ledger.Outcome{SubscriberID: id, Status: ledger.Sent, At: t0.Add(time.Duration(i) * time.Minute)})
	}
	must(t, r.Record(ctx, issue, outs))
	for _, tt := range []struct {
		since time.Time
		n     int
		want  time.Time
	}{
		{t0, 0, t0}, {t0, 2, t0.Add(2 * time.Minute)}, {t0, 3, time.Time{}},
		{t0.Add(time.Second), 0, t0.Add(time.Minute)},
	} {
		got, err := s.NthSentSince(ctx, tt.since, tt.n)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("NthSentSince(%s, %d) = %s, %v; want %s", tt.since, tt.n, got, err, tt.want)
		}
	}
}
