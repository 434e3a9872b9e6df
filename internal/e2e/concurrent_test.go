package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/digest/digest/internal/smtptest"
)

// stamps records when the server accepted each message.
type stamps struct {
	mu sync.Mutex
	at []time.Time
}

func (s *stamps) add(string) { s.mu.Lock(); s.at = append(s.at, time.Now()); s.mu.Unlock() }

// maxPerSecond is the most messages accepted within any one second.
func (s *stamps) maxPerSecond() int {
	s.mu.Lock()
	at := slices.Clone(s.at)
	s.mu.Unlock()
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	best, j := 0, 0
	for i := range at {
		for at[i].Sub(at[j]) >= time.Second {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// proc is one running digest process.
type proc struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	exited chan struct{}
}

func start(t *testing.T, ctx context.Context, bin, config string, args ...string) *proc {
	t.Helper()
	p := &proc{exited: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, bin, append([]string{"send", "--config", config, "--now", now}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	return p
}

// wait waits for the process and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	<-p.exited
	return p.cmd.ProcessState.ExitCode()
}

// waitTotal waits until the server accepted n messages.
func waitTotal(t *testing.T, ctx context.Context, srv *smtptest.Server, n int) {
	t.Helper()
	for srv.Total() < n {
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for %d messages (have %d)", n, srv.Total())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// rateSite is a site whose list rate is limited.
func rateSite(t *testing.T, srv *smtptest.Server, n, conns int, rate float64) (string, []string) {
	t.Helper()
	config, emails := newSite(t, srv, n, conns)
	body, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(body), "connections: "+fmt.Sprint(conns)+",", fmt.Sprintf("connections: %d, rate: %g,", conns, rate), 1)
	write(t, config, s)
	return config, emails
}

// checkOnce reports readers who got nothing, and returns the duplicates.
func checkAll(t *testing.T, srv *smtptest.Server, emails []string) (dups int) {
	t.Helper()
	counts := srv.Counts()
	for _, e := range emails {
		switch c := counts[e]; {
		case c == 0:
			t.Errorf("%s received nothing", e)
		case c > 1:
			dups += c - 1
		}
	}
	return dups
}

// TestConcurrentSendsNeverDouble starts a send, then a second plain send,
// which must refuse and send nothing, then a send --worker, which helps:
// every reader gets exactly one copy and the two live runs together keep
// to the list's rate.
func TestConcurrentSendsNeverDouble(t *testing.T) {
	t.Parallel()
	const n, conns, rate = 600, 2, 150.0
	bin := buildBinary(t)
	st := &stamps{}
	srv := smtptest.New(t, smtptest.WithDiscard(), smtptest.WithOnData(st.add))
	config, emails := rateSite(t, srv, n, conns, rate)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	first := start(t, ctx, bin, config)
	waitTotal(t, ctx, srv, 40)
	second := start(t, ctx, bin, config)
	if code := second.wait(t); code != 1 || !busy(second.out.String()) {
		t.Fatalf("second send: exit %d, want 1 and who is delivering:\n%s", code, second.out.String())
	}
	if !strings.Contains(second.out.String(), "Nothing sent") {
		t.Errorf("second send does not say it sent nothing:\n%s", second.out.String())
	}
	helper := start(t, ctx, bin, config, "--worker")
	if code := helper.wait(t); code != 0 {
		t.Errorf("send --worker: exit %d:\n%s", code, helper.out.String())
	}
	if code := first.wait(t); code != 0 {
		t.Errorf("first send: exit %d:\n%s", code, first.out.String())
	}
	if !strings.Contains(helper.out.String(), "Working beside 1 other run") {
		t.Errorf("the worker did not join:\n%s", helper.out.String())
	}
	if dups := checkAll(t, srv, emails); dups != 0 {
		t.Errorf("%d duplicates from live runs", dups)
	}
	if srv.Total() != n {
		t.Errorf("%d messages for %d readers", srv.Total(), n)
	}
	// The rate is the list's: a limiter admits one burst message over it.
	if got, limit := st.maxPerSecond(), int(rate*1.1)+conns+2; got > limit {
		t.Errorf("%d messages within one second, over the list's rate %g (limit %d)", got, rate, limit)
	}
	t.Logf("busiest second: %d messages (rate %g)", st.maxPerSecond(), rate)
	// Exit status and summary agree with the ledger.
	for _, p := range []*proc{first, helper} {
		if !strings.Contains(p.out.String(), fmt.Sprintf("%d sent, 0 failed, 0 skipped, 0 pending of %d", n, n)) {
			t.Errorf("summary does not match the ledger:\n%s", p.out.String())
		}
	}
}

// TestKilledWorkerTakenOver runs three processes on one database, a send
// and two workers, and SIGKILLs one worker in the middle: the others take
// over its recipients once its lease expires, without a rerun; nobody is
// lost and duplicates stay within the dead worker's messages in flight.
func TestKilledWorkerTakenOver(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL semantics")
	}
	const n, conns, rate = 900, 2, 300.0
	bin := buildBinary(t)
	st := &stamps{}
	srv := smtptest.New(t, smtptest.WithDiscard(), smtptest.WithOnData(st.add))
	config, emails := rateSite(t, srv, n, conns, rate)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	first := start(t, ctx, bin, config)
	waitTotal(t, ctx, srv, 30)
	victim := start(t, ctx, bin, config, "--worker")
	waitTotal(t, ctx, srv, 60)
	other := start(t, ctx, bin, config, "--worker")
	waitTotal(t, ctx, srv, 400)
	_ = victim.cmd.Process.Signal(syscall.SIGKILL)
	<-victim.exited
	if code := first.wait(t); code != 0 {
		t.Errorf("first send: exit %d:\n%s", code, first.out.String())
	}
	if code := other.wait(t); code != 0 {
		t.Errorf("other worker: exit %d:\n%s", code, other.out.String())
	}
	dups := checkAll(t, srv, emails)
	t.Logf("%d messages, %d duplicates (allowed %d: the killed worker's connections), busiest second %d (rate %g)",
		srv.Total(), dups, conns, st.maxPerSecond(), rate)
	if dups > conns {
		t.Errorf("%d duplicates, more than the killed worker's %d connections", dups, conns)
	}
	if got, limit := st.maxPerSecond(), int(rate*1.1)+3*conns+2; got > limit {
		t.Errorf("%d messages within one second, over the list's rate %g (limit %d)", got, rate, limit)
	}
	// Nothing is left: a further send says so.
	again := start(t, ctx, bin, config)
	if code := again.wait(t); code != 0 || !strings.Contains(again.out.String(), "already delivered") {
		t.Errorf("send after all: exit %d:\n%s", code, again.out.String())
	}
}
