package bounce

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// memRecorder keeps events in memory; fail makes it unavailable.
type memRecorder struct {
	mu     sync.Mutex
	events []Event
	fail   bool
}

func (m *memRecorder) RecordBounce(_ context.Context, ev Event) (Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return ev, errors.New("database is locked")
	}
	ev.Action = ActionNone
	m.events = append(m.events, ev)
	return ev, nil
}

func startReceiver(t *testing.T, rec Recorder, o ReceiverOptions) (addr string, refused *[]string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	o.Refused = func(r string) { mu.Lock(); got = append(got, r); mu.Unlock() }
	h := &Handler{Parser: NewParser(Options{BounceAddress: "bounces@news.example.org", MaxSize: 64 << 10}), Resolver: resolver, Store: rec}
	return serveReceiver(t, h, o), &got
}

// serveReceiver runs a receiver of h on a free port until the test ends.
func serveReceiver(t *testing.T, h *Handler, o ReceiverOptions) (addr string) {
	t.Helper()
	r := NewReceiver(h, o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func send(addr, from, to string, data []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(from, []string{to}, strings.NewReader(string(data))); err != nil {
		return err
	}
	return c.Quit()
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestReceiver(t *testing.T) {
	t.Parallel()
	dsn, err := os.ReadFile("testdata/dsn-hard.eml")
	if err != nil {
		t.Fatal(err)
	}
	rec := &memRecorder{}
	addr, refused := startReceiver(t, rec, ReceiverOptions{Rate: 0.001, Burst: 4})
	verp := "bounces+NDIuMjAyNi0wNS0wNJfl2xF32LK5sJeuTP_k8mI@news.example.org"
	if err := send(addr, "", verp, dsn); err != nil {
		t.Fatalf("a DSN from <> to a VERP address: %v", err)
	}
	if len(rec.events) != 1 || rec.events[0].Kind != Hard || rec.events[0].Reader.Via != "verp" || rec.events[0].Source != "smtp" {
		t.Fatalf("events %+v", rec.events)
	}
	if err := send(addr, "", "someone@example.org", dsn); smtpCode(err) != 550 {
		t.Errorf("relaying: %v, want 550", err)
	}
	// A VERP form whose token is not signed with the secret: refused at
	// RCPT, nothing kept.
	forged := "bounces+NDIuMjAyNi0wNS0wNJfl2xF32LK5sJeuTP_k8mX@news.example.org"
	if err := send(addr, "", forged, dsn); smtpCode(err) != 550 {
		t.Errorf("a forged VERP token: %v, want 550", err)
	}
	big := []byte("Subject: x\r\n\r\n" + strings.Repeat(strings.Repeat("x", 70)+"\r\n", 1000))
	if err := send(addr, "", "bounces@news.example.org", big); smtpCode(err) != 552 {
		t.Errorf("70 KB over a 64 KB cap: %v, want 552", err)
	}
	// The burst of 4 is spent: the fourth message is refused for now.
	if err := send(addr, "", "bounces@news.example.org", dsn); smtpCode(err) != 421 {
		t.Errorf("over the rate: %v, want 421", err)
	}
	if len(rec.events) != 1 {
		t.Errorf("%d events recorded, want 1", len(rec.events))
	}
	if strings.Join(*refused, ",") != "token,size,rate" {
		t.Errorf("refused %q", *refused)
	}
}

func TestReceiverStoreDown(t *testing.T) {
	t.Parallel()
	dsn, _ := os.ReadFile("testdata/dsn-hard.eml")
	addr, _ := startReceiver(t, &memRecorder{fail: true}, ReceiverOptions{})
	if err := send(addr, "", "bounces@news.example.org", dsn); smtpCode(err) != 451 {
		t.Errorf("store down: %v, want 451 (the relay retries)", err)
	}
}

// A VERP address is checked against the store at RCPT: when the store
// cannot answer, the relay is told to retry rather than that the address
// does not exist.
func TestReceiverCannotCheckAToken(t *testing.T) {
	t.Parallel()
	dsn, _ := os.ReadFile("testdata/dsn-hard.eml")
	h := &Handler{Parser: NewParser(Options{BounceAddress: "bounces@news.example.org", MaxSize: 64 << 10}),
		Resolver: Resolver{Secret: testSecret, Lookup: func(int64) (string, error) { return "", errors.New("database is locked") }},
		Store:    &memRecorder{}}
	addr := serveReceiver(t, h, ReceiverOptions{})
	verp := "bounces+NDIuMjAyNi0wNS0wNJfl2xF32LK5sJeuTP_k8mI@news.example.org"
	if err := send(addr, "", verp, dsn); smtpCode(err) != 451 {
		t.Errorf("token check with the store down: %v, want 451", err)
	}
}
