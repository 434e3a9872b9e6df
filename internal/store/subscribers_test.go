package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/store/storetest"
	"github.com/digest/digest/internal/subscriber"
)

func TestPutReportsWhatChanged(t *testing.T) { storetest.Run(t, testPutReportsWhatChanged) }

func testPutReportsWhatChanged(t *testing.T, db storetest.Backend) {
	s, c := openTest(t, db)
	ctx := context.Background()
	res, err := s.Put(ctx, subscriber.Row{Email: "QUINN@example.org", Name: "Quinn", Topics: []string{"World", "science"}})
	must(t, err)
	if !res.Created || res.After.Email != "QUINN@example.org" || !reflect.DeepEqual(res.After.Topics, []string{"science", "world"}) {
		t.Fatalf("first Put = %+v", res)
	}
	must(t, s.Remove(ctx, "quinn@example.org"))

	c.Set(t0.Add(time.Hour))
	res, err = s.Put(ctx, subscriber.Row{Email: "quinn@example.org"})
	must(t, err)
	if res.Created || res.Before.Email != "QUINN@example.org" || res.Before.Status != subscriber.StatusUnsubscribed {
		t.Errorf("Before = %+v", res.Before)
	}
	want := subscriber.Subscriber{ID: res.Before.ID, Email: "quinn@example.org", Name: "Quinn", Status: subscriber.StatusActive,
		Topics: []string{"science", "world"}, Created: t0, Updated: t0.Add(time.Hour)}
	if !reflect.DeepEqual(res.After, want) {
		t.Errorf("After = %+v, want %+v", res.After, want)
	}
	if got := mustGet(t, s, "QUINN@EXAMPLE.ORG"); !reflect.DeepEqual(got, want) {
		t.Errorf("stored %+v", got)
	}
	// Empty topics (not nil) mean every topic.
	res, err = s.Put(ctx, subscriber.Row{Email: "quinn@example.org", Topics: []string{}})
	must(t, err)
	if res.After.Topics != nil {
		t.Errorf("topics %q, want none", res.After.Topics)
	}
}

func TestImportStatusesTopicsAndCreated(t *testing.T) {
	storetest.Run(t, testImportStatusesTopicsAndCreated)
}

func testImportStatusesTopicsAndCreated(t *testing.T, db storetest.Backend) {
	s, c := openTest(t, db)
	ctx := context.Background()
	_, err := s.Add(ctx, "known@example.org", "Known")
	must(t, err)
	_, err = s.PutSignup(ctx, "pending@example.org", "P", nil)
	must(t, err)
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	c.Set(t0.Add(time.Hour))
	rows := []subscriber.Row{
		{Line: 2, Email: "ann@example.org", Name: "Ann", Topics: []string{"world"}, Created: created},
		{Line: 3, Email: "bob@example.org", Status: subscriber.StatusUnsubscribed},
		{Line: 4, Email: "carol@example.org", Status: subscriber.StatusBounced},
		// Known: the status column never changes a stored status; topics do.
		{Line: 5, Email: "known@example.org", Status: subscriber.StatusUnsubscribed, Topics: []string{"town"}},
		{Line: 6, Email: "Pending@example.org", Name: "Pat"},
		// A list exported from another store keeps its complaints.
		{Line: 7, Email: "dan@example.org", Status: subscriber.StatusComplained},
	}
	res, err := s.Sync(ctx, rows)
	must(t, err)
	if want := (SyncResult{Added: 5, Updated: 1}); res != want {
		t.Errorf("Sync = %+v, want %+v", res, want)
	}
	for email, want := range map[string]struct {
		status  string
		topics  []string
		created time.Time
	}{
		"ann@example.org":     {subscriber.StatusActive, []string{"world"}, created},
		"bob@example.org":     {subscriber.StatusUnsubscribed, nil, t0.Add(time.Hour)},
		"carol@example.org":   {subscriber.StatusBounced, nil, t0.Add(time.Hour)},
		"known@example.org":   {subscriber.StatusActive, []string{"town"}, t0},
		"pending@example.org": {subscriber.StatusActive, nil, t0.Add(time.Hour)},
		"dan@example.org":     {subscriber.StatusComplained, nil, t0.Add(time.Hour)},
	} {
		got := mustGet(t, s, email)
		if got.Status != want.status || !reflect.DeepEqual(got.Topics, want.topics) || !got.Created.Equal(want.created) {
			t.Errorf("%s: %+v, want %+v", email, got, want)
		}
	}
	// The import superseded the pending sign-up.
	if _, err := s.SignupByEmail(ctx, "pending@example.org"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("sign-up left after import: %v", err)
	}
	// Nil topics keep the stored ones.
	res, err = s.Sync(ctx, []subscriber.Row{{Line: 2, Email: "known@example.org"}})
	must(t, err)
	if res.Unchanged != 1 || !reflect.DeepEqual(mustGet(t, s, "known@example.org").Topics, []string{"town"}) {
		t.Errorf("a row without topics changed them: %+v", res)
	}
	if _, err := s.Sync(ctx, []subscriber.Row{{Line: 7, Email: "x@example.org", Status: "pending"}}); err == nil {
		t.Error("a pending row was imported")
	}
}

func TestSignupFlow(t *testing.T) { storetest.Run(t, testSignupFlow) }

func testSignupFlow(t *testing.T, db storetest.Backend) {
	s, c := openTest(t, db)
	ctx := context.Background()
	su, err := s.PutSignup(ctx, "Nia@example.org", "Nia", []string{"World"})
	must(t, err)
	if su.ID == 0 || su.Email != "Nia@example.org" || !reflect.DeepEqual(su.Topics, []string{"world"}) || !su.Created.Equal(t0) {
		t.Fatalf("PutSignup = %+v", su)
	}
	// Not a subscriber: never enqueued, not counted.
	if _, err := s.Get(ctx, "nia@example.org"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("a sign-up is a subscriber: %v", err)
	}
	// A second request renews it and keeps the id.
	c.Set(t0.Add(time.Hour))
	again, err := s.PutSignup(ctx, "nia@EXAMPLE.org", "Nia N.", nil)
	must(t, err)
	if again.ID != su.ID || again.Name != "Nia N." || again.Topics != nil || !again.Created.Equal(t0.Add(time.Hour)) {
		t.Errorf("renewed sign-up = %+v", again)
	}
	var listed []subscriber.Signup
	must(t, s.ListSignups(ctx, func(su subscriber.Signup) error { listed = append(listed, su); return nil }))
	if len(listed) != 1 || listed[0].ID != su.ID {
		t.Errorf("ListSignups = %+v", listed)
	}

	sub, err := s.ConfirmSignup(ctx, su.ID)
	must(t, err)
	if sub.Status != subscriber.StatusActive || sub.Email != "nia@EXAMPLE.org" || sub.Name != "Nia N." {
		t.Errorf("confirmed = %+v", sub)
	}
	if _, err := s.ConfirmSignup(ctx, su.ID); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("second confirm: %v, want ErrNotFound", err)
	}
	if _, err := s.Signup(ctx, su.ID); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("sign-up left after confirm: %v", err)
	}

	// An unsubscribed reader who signs up again stays unsubscribed until
	// the address is confirmed, and then gets the new topics.
	must(t, s.Unsubscribe(ctx, sub.ID))
	su2, err := s.PutSignup(ctx, "nia@example.org", "", []string{"town"})
	must(t, err)
	if got := mustGet(t, s, "nia@example.org"); got.Status != subscriber.StatusUnsubscribed {
		t.Errorf("a sign-up changed the status to %s before confirmation", got.Status)
	}
	sub, err = s.ConfirmSignup(ctx, su2.ID)
	must(t, err)
	if sub.Status != subscriber.StatusActive || sub.Name != "Nia N." || !reflect.DeepEqual(sub.Topics, []string{"town"}) {
		t.Errorf("re-confirmed = %+v", sub)
	}
}

func TestPurgeSignups(t *testing.T) { storetest.Run(t, testPurgeSignups) }

func testPurgeSignups(t *testing.T, db storetest.Backend) {
	s, c := openTest(t, db)
	ctx := context.Background()
	for i := range 3 {
		c.Set(t0.Add(time.Duration(i) * 24 * time.Hour))
		_, err := s.PutSignup(ctx, fmt.Sprintf("p%d@example.org", i), "", nil)
		must(t, err)
	}
	n, err := s.PurgeSignups(ctx, t0.Add(36*time.Hour))
	must(t, err)
	if n != 2 {
		t.Errorf("purged %d, want 2", n)
	}
	if _, err := s.SignupByEmail(ctx, "p2@example.org"); err != nil {
		t.Errorf("the young sign-up was purged: %v", err)
	}
}

func TestRemoveAndDeletePendingSignup(t *testing.T) {
	storetest.Run(t, testRemoveAndDeletePendingSignup)
}

func testRemoveAndDeletePendingSignup(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	_, err := s.PutSignup(ctx, "p@example.org", "", nil)
	must(t, err)
	must(t, s.Remove(ctx, "P@example.org"))
	if err := s.Remove(ctx, "p@example.org"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("second Remove: %v", err)
	}
	_, err = s.PutSignup(ctx, "p@example.org", "", nil)
	must(t, err)
	_, err = s.Add(ctx, "q@example.org", "")
	must(t, err)
	_, err = s.PutSignup(ctx, "q@example.org", "", nil)
	must(t, err)
	must(t, s.Delete(ctx, "p@example.org"))
	must(t, s.Delete(ctx, "q@example.org"))
	for _, e := range []string{"p@example.org", "q@example.org"} {
		if _, err := s.SignupByEmail(ctx, e); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("%s: sign-up left after Delete: %v", e, err)
		}
	}
}

func TestPreferencesAndResubscribe(t *testing.T) { storetest.Run(t, testPreferencesAndResubscribe) }

func testPreferencesAndResubscribe(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	ctx := context.Background()
	_, err := s.Add(ctx, "ann@example.org", "Ann")
	must(t, err)
	id := mustGet(t, s, "ann@example.org").ID
	must(t, s.SetPreferences(ctx, id, "Ann B.", []string{"Town", "world", "town"}))
	got, err := s.Subscriber(ctx, id)
	must(t, err)
	if got.Name != "Ann B." || !reflect.DeepEqual(got.Topics, []string{"town", "world"}) {
		t.Errorf("after SetPreferences: %+v", got)
	}
	if err := s.SetPreferences(ctx, id+9, "", nil); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("SetPreferences of unknown id: %v", err)
	}
	if _, err := s.Subscriber(ctx, id+9); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Subscriber of unknown id: %v", err)
	}

	must(t, s.Unsubscribe(ctx, id))
	must(t, s.Resubscribe(ctx, id))
	if got := mustGet(t, s, "ann@example.org"); got.Status != subscriber.StatusActive {
		t.Errorf("after Resubscribe: %s", got.Status)
	}
	// A bounced address is not re-activated by its reader's link.
	must(t, s.SetStatus(ctx, id, subscriber.StatusBounced))
	must(t, s.Resubscribe(ctx, id))
	if got := mustGet(t, s, "ann@example.org"); got.Status != subscriber.StatusBounced {
		t.Errorf("Resubscribe of a bounced address: %s", got.Status)
	}
	if err := s.Resubscribe(ctx, id+9); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Resubscribe of unknown id: %v", err)
	}
}
