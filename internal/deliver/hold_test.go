package deliver_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/smtptest"
)

// stuckLedger's first Record that holds a sent outcome does not return
// until the engine gave up a connection (a stalled commit), then
// succeeds or fails with err (and so does every later Record).
type stuckLedger struct {
	*fakeLedger
	closed <-chan struct{}
	err    error
	once   sync.Once
	failed atomic.Bool // every Record fails once the stuck one did
}

func (l *stuckLedger) Record(ctx context.Context, issueID string, outs []ledger.Outcome) error {
	first := false
	for _, o := range outs {
		if o.Status == ledger.Sent {
			l.once.Do(func() { first = true })
		}
	}
	if first {
		select {
		case <-l.closed:
		case <-time.After(10 * time.Second): // the test fails below instead of hanging
		}
		l.failed.Store(l.err != nil)
	}
	if l.failed.Load() {
		return l.err
	}
	return l.fakeLedger.Record(ctx, issueID, outs)
}

// closeSignal is a Transport whose connections report their Close.
type closeSignal struct {
	deliver.Transport
	once   sync.Once
	closed chan struct{}
	opens  atomic.Int32
}

func (t *closeSignal) Open(ctx context.Context) (deliver.Conn, error) {
	c, err := t.Transport.Open(ctx)
	if err != nil {
		return nil, err
	}
	t.opens.Add(1)
	return &signalConn{Conn: c, t: t}, nil
}

type signalConn struct {
	deliver.Conn
	t *closeSignal
}

func (c *signalConn) Send(ctx context.Context, m *mail.Message, ready deliver.Ready) (bool, error) {
	return c.Conn.Send(ctx, m, ready)
}

func (c *signalConn) Close() error {
	c.t.once.Do(func() { close(c.t.closed) })
	return c.Conn.Close()
}

// A commit that hangs while the next message waits for its final "."
// costs the connection, not the crash rule: past HoldMax the connection
// is dropped without the final "." (the relay never accepts that
// message), and the message goes again on a new connection once the
// commit returned; when the commit fails instead, the run stops and the
// held message was never accepted.
func TestRunHoldCap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		err      error
		accepted int
	}{
		{"commit returns late", nil, 3},
		{"commit fails", errors.New("disk full"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const n = 3
			srv := smtptest.New(t)
			tr := &closeSignal{Transport: smtpTransport(t, srv, nil), closed: make(chan struct{})}
			l := &stuckLedger{fakeLedger: newFakeLedger(issueID, n), closed: tr.closed, err: tc.err}
			opts := fastOptions()
			opts.Connections, opts.HoldMax = 1, 20*time.Millisecond
			opts.Sleep = func(ctx context.Context, _ time.Duration) bool { return ctx.Err() == nil }
			sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, tr, opts)
			if got := srv.Total(); got != tc.accepted {
				t.Errorf("server accepted %d messages, want %d", got, tc.accepted)
			}
			for rcpt, c := range srv.Counts() {
				if c != 1 {
					t.Errorf("%s got %d copies", rcpt, c)
				}
			}
			if tc.err == nil {
				if err != nil || sum.Sent != n {
					t.Fatalf("summary %+v, err %v", sum, err)
				}
				l.check(t)
				if tr.opens.Load() < 2 {
					t.Errorf("%d connections opened, want a second one after the hold", tr.opens.Load())
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			// The first row stays sending (accepted, not recorded: the
			// next claim recovers it once the lease is over); the held
			// one was released.
			if st := l.row(1).status; st != ledger.Sending {
				t.Errorf("row 1 is %s, want sending", st)
			}
			if st := l.row(2).status; st != ledger.Pending {
				t.Errorf("row 2 is %s, want pending", st)
			}
		})
	}
}

// With many connections a claim takes 8 rows per connection when that is
// more than BatchSize: 600 rows over 32 connections take 3 claims of up to
// 256 and a last empty one, not 61 of BatchSize.
func TestRunClaimsGrowWithConnections(t *testing.T) {
	t.Parallel()
	const n = 600
	l := newFakeLedger(issueID, n)
	srv := smtptest.New(t, smtptest.WithDiscard())
	opts := fastOptions()
	opts.Connections = 32
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if err != nil || sum.Sent != n {
		t.Fatalf("summary %+v, err %v", sum, err)
	}
	l.check(t)
	l.mu.Lock()
	claims := l.claims
	l.mu.Unlock()
	if claims != 4 {
		t.Errorf("%d claims for %d rows over %d connections, want 4", claims, n, opts.Connections)
	}
}
