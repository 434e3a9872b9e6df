package web

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/subscriber"
)

// fakeStore is an in-memory Store. Every change bumps version, so a test
// can tell that a request changed nothing.
type fakeStore struct {
	mu      sync.Mutex
	now     func() time.Time
	subs    map[int64]*subscriber.Subscriber
	signups map[int64]*subscriber.Signup
	nextID  int64
	version int
	fail    error // when set, every call fails with it
}

var _ Store = (*fakeStore)(nil)

func newFakeStore(now func() time.Time) *fakeStore {
	return &fakeStore{now: now, subs: map[int64]*subscriber.Subscriber{}, signups: map[int64]*subscriber.Signup{}}
}

func (f *fakeStore) add(email, name, status string, topics ...string) subscriber.Subscriber {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	s := &subscriber.Subscriber{ID: f.nextID, Email: email, Name: name, Status: status, Topics: topics, Created: f.now()}
	f.subs[s.ID] = s
	return *s
}

func (f *fakeStore) changes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.version
}

func (f *fakeStore) byKey(email string) *subscriber.Subscriber {
	for _, s := range f.subs {
		if subscriber.EmailKey(s.Email) == subscriber.EmailKey(email) {
			return s
		}
	}
	return nil
}

func (f *fakeStore) Subscriber(_ context.Context, id int64) (subscriber.Subscriber, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return subscriber.Subscriber{}, f.fail
	}
	s, ok := f.subs[id]
	if !ok {
		return subscriber.Subscriber{}, fmt.Errorf("subscriber %d: %w", id, ledger.ErrNotFound)
	}
	return *s, nil
}

func (f *fakeStore) Get(_ context.Context, email string) (subscriber.Subscriber, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return subscriber.Subscriber{}, f.fail
	}
	if s := f.byKey(email); s != nil {
		return *s, nil
	}
	return subscriber.Subscriber{}, fmt.Errorf("subscriber %s: %w", email, ledger.ErrNotFound)
}

func (f *fakeStore) setStatus(id int64, from []string, to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	s, ok := f.subs[id]
	if !ok {
		return fmt.Errorf("subscriber %d: %w", id, ledger.ErrNotFound)
	}
	if slices.Contains(from, s.Status) && s.Status != to {
		s.Status = to
		f.version++
	}
	return nil
}

func (f *fakeStore) Unsubscribe(_ context.Context, id int64) error {
	return f.setStatus(id, []string{subscriber.StatusActive, subscriber.StatusBounced}, subscriber.StatusUnsubscribed)
}

func (f *fakeStore) Resubscribe(_ context.Context, id int64) error {
	return f.setStatus(id, []string{subscriber.StatusUnsubscribed}, subscriber.StatusActive)
}

func (f *fakeStore) SetPreferences(_ context.Context, id int64, name string, topics []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.subs[id]
	if !ok {
		return fmt.Errorf("subscriber %d: %w", id, ledger.ErrNotFound)
	}
	s.Name, s.Topics = name, topics
	f.version++
	return nil
}

func (f *fakeStore) PutSignup(_ context.Context, email, name string, topics []string) (subscriber.Signup, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	for _, su := range f.signups {
		if subscriber.EmailKey(su.Email) == subscriber.EmailKey(email) {
			su.Email, su.Name, su.Topics, su.Created = email, name, topics, f.now()
			return *su, nil
		}
	}
	f.nextID++
	su := &subscriber.Signup{ID: f.nextID, Email: email, Name: name, Topics: topics, Created: f.now()}
	f.signups[su.ID] = su
	return *su, nil
}

func (f *fakeStore) Signup(_ context.Context, id int64) (subscriber.Signup, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	su, ok := f.signups[id]
	if !ok {
		return subscriber.Signup{}, fmt.Errorf("sign-up %d: %w", id, ledger.ErrNotFound)
	}
	return *su, nil
}

func (f *fakeStore) ConfirmSignup(_ context.Context, id int64) (subscriber.Subscriber, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	su, ok := f.signups[id]
	if !ok {
		return subscriber.Subscriber{}, fmt.Errorf("sign-up %d: %w", id, ledger.ErrNotFound)
	}
	delete(f.signups, id)
	f.version++
	s := f.byKey(su.Email)
	if s == nil {
		f.nextID++
		s = &subscriber.Subscriber{ID: f.nextID, Email: su.Email, Created: f.now()}
		f.subs[s.ID] = s
	}
	s.Status, s.Topics = subscriber.StatusActive, su.Topics
	if su.Name != "" {
		s.Name = su.Name
	}
	return *s, nil
}

// fakeMailer records the notices it is given.
type fakeMailer struct {
	mu   sync.Mutex
	sent []mail.Notice
}

func (m *fakeMailer) Send(_ context.Context, n mail.Notice) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, n)
	return nil
}

func (m *fakeMailer) notices() []mail.Notice {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sent)
}
