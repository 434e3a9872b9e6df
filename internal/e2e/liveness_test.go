package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/digest/digest/internal/smtptest"
	"github.com/digest/digest/internal/store/storetest"
)

// setConfig replaces old by new in the config file at path, once.
func setConfig(t *testing.T, path, old, new string) {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(body), old, new, 1)
	if s == string(body) {
		t.Fatalf("%s has no %q to replace", path, old)
	}
	write(t, path, s)
}

// machine copies the site of config into a working directory of its own,
// as a second host would have it: the config, the secret, the sources and
// the subscribers file, but not the archive folder. It returns the new
// config's path.
func machine(t *testing.T, config string) string {
	t.Helper()
	from, dir := filepath.Dir(config), t.TempDir()
	cmd := exec.Command("cp", "-r", filepath.Join(from, "notes"), filepath.Join(from, "subscribers.csv"), dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copying the site: %v\n%s", err, out)
	}
	body, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filepath.Base(config))
	write(t, path, string(body))
	return path
}

// longLease is the delivery lease of the crash tests: far longer than
// their patience, so that finishing at all proves the dead process was
// told from its liveness, not from its lease's expiry. (The times are
// logged, not asserted: this machine is shared.)
const longLease = 10 * time.Minute

// A run killed with SIGKILL is continued at once by a rerun on the same
// host, although its lease is far from over: its pid is gone.
func TestRerunAfterKillContinuesAtOnce(t *testing.T) {
	skipWithoutSignals(t)
	t.Parallel()
	const n, conns = 300, 2
	bin := buildBinary(t)
	srv := smtptest.New(t, smtptest.WithFaults(func(string, int) smtptest.Fault {
		return smtptest.Fault{Stall: 5 * time.Millisecond}
	}))
	config, emails := newSite(t, srv, n, conns)
	setConfig(t, config, "lease: "+testLease.String(), "lease: "+longLease.String())
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()

	first := start(t, ctx, bin, config)
	waitTotal(t, ctx, srv, 50)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.exited
	killed := time.Now()
	again := start(t, ctx, bin, config)
	if code := again.wait(t); code != 0 {
		t.Fatalf("rerun right after SIGKILL: exit %d:\n%s", code, again.out.String())
	}
	t.Logf("rerun after SIGKILL finished the issue in %s (lease %s)", time.Since(killed).Round(time.Millisecond), longLease)
	exactlyOnce(t, srv, emails, conns)
}

// A run frozen (SIGSTOP) for longer than its lease loses it: another run
// takes its recipients and finishes, and once thawed (SIGCONT) the frozen
// run sends nothing more than the messages it had in flight.
func TestFrozenRunSendsNothingAfterItsLease(t *testing.T) {
	skipWithoutSignals(t)
	t.Parallel()
	const n, conns = 200, 2
	bin := buildBinary(t)
	srv := smtptest.New(t, smtptest.WithFaults(func(string, int) smtptest.Fault {
		return smtptest.Fault{Stall: 5 * time.Millisecond}
	}))
	config, emails := newSite(t, srv, n, conns)
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()

	frozen := start(t, ctx, bin, config)
	waitTotal(t, ctx, srv, 30)
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Three leases (2 s each): a real wait, since the lease runs on the
	// real clock of a process that cannot run.
	time.Sleep(3 * testLease)
	stoppedAt := srv.Total()
	if err := frozen.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	code := frozen.wait(t)
	after := srv.Total() - stoppedAt
	t.Logf("frozen at %d messages for %s; thawed, it sent %d more and exited %d", stoppedAt, 3*testLease, after, code)
	if after > conns {
		t.Errorf("the thawed run sent %d messages after its lease lapsed, more than its %d in flight:\n%s",
			after, conns, frozen.out.String())
	}
	if code == 0 {
		t.Errorf("the thawed run exited 0 without finishing:\n%s", frozen.out.String())
	}
	// A rerun finishes the issue.
	rerun := start(t, ctx, bin, config)
	if code := rerun.wait(t); code != 0 {
		t.Fatalf("rerun after the frozen run: exit %d:\n%s", code, rerun.out.String())
	}
	exactlyOnce(t, srv, emails, conns)
}

// Two machines on one Postgres, each with its own working directory and
// archive folder: the issue built by one is delivered, helped and
// published by the other from the store.
func TestTwoMachinesShareTheIssue(t *testing.T) {
	t.Parallel()
	const n, conns = 300, 2
	bin := buildBinary(t)
	srv := smtptest.New(t, smtptest.WithFaults(func(string, int) smtptest.Fault {
		return smtptest.Fault{Stall: 30 * time.Millisecond}
	}))
	configA, emails := postgresSite(t, srv, n, conns, 0)
	setConfig(t, configA, ", rate: 0,", ",")
	configB := machine(t, configA)
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()

	a := start(t, ctx, bin, configA)
	waitTotal(t, ctx, srv, 20)
	b := start(t, ctx, bin, configB, "--worker")
	if code := b.wait(t); code != 0 {
		t.Fatalf("send --worker on the second machine: exit %d:\n%s", code, b.out.String())
	}
	if code := a.wait(t); code != 0 {
		t.Fatalf("send on the first machine: exit %d:\n%s", code, a.out.String())
	}
	if sent, _, _ := b.summary(t); sent == 0 {
		t.Errorf("the second machine sent nothing:\n%s", b.out.String())
	}
	exactlyOnce(t, srv, emails, 0)

	archiveB := filepath.Join(filepath.Dir(configB), "archive")
	if _, err := os.Stat(archiveB); !os.IsNotExist(err) {
		t.Fatalf("the second machine has an archive folder before publishing: %v", err)
	}
	out, err := exec.CommandContext(ctx, bin, "archive", "--config", configB).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 issue") {
		t.Fatalf("digest archive: %v\n%s", err, out)
	}
	dirs, _ := filepath.Glob(filepath.Join(archiveB, "*", "digest.html"))
	if len(dirs) != 1 {
		t.Errorf("published archive: %v", dirs)
	}

	// Nothing to help with: one line, exit 1 or 0, never the usage.
	out, err = exec.CommandContext(ctx, bin, "send", "--config", configB, "--now", now, "--worker").CombinedOutput()
	if strings.Contains(string(out), "Usage:") || exitCode(err) == 2 {
		t.Errorf("send --worker after the issue was delivered: %v\n%s", err, out)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// The active daemon is killed with SIGKILL in the middle of a delivery;
// the standby (on Postgres, on another machine: its own working directory,
// no archive) delivers again within seconds and finishes the issue. The
// lease is longLease: only the liveness of the dead process explains a
// take-over at all.
func TestStandbyTakesOverAtOnce(t *testing.T) {
	skipWithoutSignals(t)
	for _, engine := range []storetest.Backend{storetest.SQLite, storetest.Postgres} {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			standbyTakeover(t, engine)
		})
	}
}

func standbyTakeover(t *testing.T, engine storetest.Backend) {
	const n, conns = 300, 2
	bin := buildBinary(t)
	srv := smtptest.New(t, smtptest.WithFaults(func(string, int) smtptest.Fault {
		return smtptest.Fault{Stall: 20 * time.Millisecond}
	}))
	site := newDaemonSite(t, srv, n, conns, "@every 2s")
	site.base = strings.Replace(site.base, "lease: 3s", "lease: "+longLease.String(), 1)
	config2, port2 := site.second(t)
	if engine == storetest.Postgres {
		dsn := storetest.PostgresDSN(t)
		site.base = strings.Replace(site.base, "database: digest.db", "database: "+strconv.Quote(dsn), 1)
		site.write(t, site.base, site.port)
		other := machine(t, site.config)
		config2 = filepath.Join(filepath.Dir(other), "config2.yaml")
		write(t, config2, site.base+fmt.Sprintf("server: {listen: \"127.0.0.1:%d\"}\n", port2))
	} else {
		site.write(t, site.base, site.port)
		write(t, config2, site.base+fmt.Sprintf("server: {listen: \"127.0.0.1:%d\"}\n", port2))
	}
	a := startDaemon(t, bin, site.config, site.port)
	until(t, "the first daemon is active", func() bool { return a.health().Status == "active" })
	b := startDaemon(t, bin, config2, port2)
	until(t, "the second stands by", func() bool { return b.health().Status == "standby" })

	until(t, "delivery under way", func() bool { return srv.Total() >= 40 })
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	killed := time.Now()
	at := srv.Total()
	if at >= n {
		t.Fatalf("the issue was delivered before the kill (%d messages)", at)
	}
	until(t, "the standby takes over", func() bool { return b.health().Status == "active" })
	active := time.Since(killed)
	until(t, "the standby delivers", func() bool { return srv.Total() > at+conns })
	delivering := time.Since(killed)
	t.Logf("%s: killed after %d of %d messages; standby active %s and delivering %s after SIGKILL (lease %s)",
		engine, at, n, active.Round(time.Millisecond), delivering.Round(time.Millisecond), longLease)
	until(t, "every reader served", func() bool { return len(srv.Counts()) >= n })
	exactlyOnce(t, srv, site.emails, conns)
	if len(b.logLines("taking over from a daemon whose lease expired or whose process is gone")) != 1 {
		t.Error("the take-over is not logged")
	}
	if len(b.logLines("continuing an unfinished issue: its delivery started, so it is finished whatever the schedule's grace")) == 0 &&
		!strings.Contains(b.log(), "run finished") {
		t.Error("the resume is not logged")
	}
	b.stop()
}

// A daemon started right after `digest send` was killed resumes the issue
// at once (the dead run's lease, longLease, is not waited for), and says so.
func TestDaemonResumesAfterACrashAtOnce(t *testing.T) {
	skipWithoutSignals(t)
	t.Parallel()
	const n, conns = 300, 2
	bin := buildBinary(t)
	srv := smtptest.New(t, smtptest.WithFaults(func(string, int) smtptest.Fault {
		return smtptest.Fault{Stall: 10 * time.Millisecond}
	}))
	site := newDaemonSite(t, srv, n, conns, "@every 24h")
	site.base = strings.Replace(site.base, "lease: 3s", "lease: "+longLease.String(), 1)
	site.write(t, site.base, site.port)

	send := exec.Command(bin, "send", "--config", site.config)
	send.Dir = site.dir
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	until(t, "the send delivers", func() bool { return srv.Total() >= 40 })
	if err := send.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = send.Wait()
	killed := time.Now()
	at := srv.Total()
	d := startDaemon(t, bin, site.config, site.port)
	until(t, "every reader served", func() bool { return len(srv.Counts()) >= n })
	t.Logf("killed after %d of %d; the daemon served the rest %s after the kill (lease %s)",
		at, n, time.Since(killed).Round(time.Millisecond), longLease)
	if len(d.logLines("continuing an unfinished issue: its delivery started, so it is finished whatever the schedule's grace")) == 0 {
		t.Error("the resume is not logged")
	}
	exactlyOnce(t, srv, site.emails, conns)
	d.stop()
}
