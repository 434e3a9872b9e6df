package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/digest/digest/internal/smtptest"
	"github.com/digest/digest/internal/store/storetest"
)

// postgresSite is rateSite with its store in a fresh Postgres schema of its
// own (storetest.PostgresDSN: skipped without DIGEST_TEST_POSTGRES, failed
// when CI=true).
func postgresSite(t *testing.T, srv *smtptest.Server, n, conns int, rate float64) (string, []string) {
	t.Helper()
	dsn := storetest.PostgresDSN(t)
	config, emails := rateSite(t, srv, n, conns, rate)
	body, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(body), "database: digest.db\n", "database: "+strconv.Quote(dsn)+"\n", 1)
	if s == string(body) {
		t.Fatal("the site's config has no database line to replace")
	}
	write(t, config, s)
	return config, emails
}

// runStat is one run's line in `digest status`.
type runStat struct {
	state         string
	claimed, sent int
}

var runLine = regexp.MustCompile(`^\s+pid (\d+) on \S+\s+(delivering \(worker\)|delivering|ended|gone \(died or cut off\))\s+(\d+)\s+(\d+)\s`)

// status runs `digest status` and returns its runs by pid.
func status(t *testing.T, ctx context.Context, bin, config string) (map[int]runStat, string) {
	t.Helper()
	out, err := exec.CommandContext(ctx, bin, "status", "--config", config).CombinedOutput()
	if err != nil {
		t.Fatalf("digest status: %v\n%s", err, out)
	}
	runs := map[int]runStat{}
	for _, line := range strings.Split(string(out), "\n") {
		m := runLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		claimed, _ := strconv.Atoi(m[3])
		sent, _ := strconv.Atoi(m[4])
		runs[pid] = runStat{state: m[2], claimed: claimed, sent: sent}
	}
	return runs, string(out)
}

var sentNow = regexp.MustCompile(`: (\d+) sent now; issue total (\d+) sent, (\d+) failed, (\d+) skipped, (\d+) pending of (\d+)`)

// summary reads a finished run's "N sent now; issue total …" line: what it
// sent, and the sent and pending at its end.
func (p *proc) summary(t *testing.T) (sent, total, pending int) {
	t.Helper()
	m := sentNow.FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("no delivery summary in the output of pid %d:\n%s", p.cmd.Process.Pid, p.out.String())
	}
	sent, _ = strconv.Atoi(m[1])
	total, _ = strconv.Atoi(m[2])
	pending, _ = strconv.Atoi(m[5])
	return sent, total, pending
}

// waitRunsSending polls `digest status` until every one of pids is a live
// run that has sent something, and returns that status.
func waitRunsSending(t *testing.T, ctx context.Context, bin, config string, pids []int) map[int]runStat {
	t.Helper()
	for {
		runs, out := status(t, ctx, bin, config)
		ok := true
		for _, pid := range pids {
			r, found := runs[pid]
			ok = ok && found && strings.HasPrefix(r.state, "delivering") && r.sent > 0
		}
		if ok {
			return runs
		}
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for runs %v to send; last status:\n%s", pids, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPostgresWorkers delivers one issue from one Postgres database with
// several real processes at once, kills one of them with SIGKILL in the
// middle, and reruns: every reader gets the issue, duplicates stay within
// the dead run's messages in flight (one per connection), the live runs
// send side by side (each its share of the messages accepted while all were
// live, read from the ledger's owners through `digest status`), and
// together they keep to the list's rate.
func TestPostgresWorkers(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL semantics")
	}
	cases := []struct {
		name string
		// workers: how many processes deliver at once; the first is a
		// plain send (started alone) unless together is set, then all
		// are send --worker started at the same moment.
		workers  int
		together bool
		// victim is the index of the process killed mid-send.
		victim int
		// rerun starts a send --worker right after the kill, as a
		// supervisor restarting the dead process would.
		rerun bool
	}{
		{name: "send and a worker, the send killed", workers: 2, victim: 0},
		{name: "three workers at once, one killed and restarted", workers: 3, together: true, victim: 1, rerun: true},
	}
	if os.Getenv(storetest.EnvPostgres) == "" {
		storetest.PostgresDSN(t) // skips, or fails when CI=true, before the build
	}
	bin := buildBinary(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const n, conns, rate = 1500, 2, 300.0
			st := &stamps{}
			srv := smtptest.New(t, smtptest.WithDiscard(), smtptest.WithOnData(st.add))
			config, emails := postgresSite(t, srv, n, conns, rate)
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()

			var procs []*proc
			for i := range tc.workers {
				switch {
				case tc.together:
					procs = append(procs, start(t, ctx, bin, config, "--worker"))
				case i == 0:
					procs = append(procs, start(t, ctx, bin, config))
					waitTotal(t, ctx, srv, 30)
				default:
					procs = append(procs, start(t, ctx, bin, config, "--worker"))
				}
			}
			pids := make([]int, len(procs))
			for i, p := range procs {
				pids[i] = p.cmd.Process.Pid
			}

			// A window in which every process is live and sending: each
			// must account for a fair part of what the list sent in it.
			before := waitRunsSending(t, ctx, bin, config, pids)
			from := srv.Total()
			waitTotal(t, ctx, srv, from+n/4)
			after, out := status(t, ctx, bin, config)
			window := 0
			for _, pid := range pids {
				window += after[pid].sent - before[pid].sent
			}
			for _, pid := range pids {
				got := after[pid].sent - before[pid].sent
				t.Logf("pid %d sent %d of the %d recorded while all %d were live", pid, got, window, tc.workers)
				if got < window/(2*tc.workers) {
					t.Errorf("pid %d sent %d of %d while %d runs were live, less than half its share:\n%s",
						pid, got, window, tc.workers, out)
				}
			}

			victim := procs[tc.victim]
			_ = victim.cmd.Process.Signal(syscall.SIGKILL)
			<-victim.exited
			var rerun *proc
			if tc.rerun {
				rerun = start(t, ctx, bin, config, "--worker")
			}
			live := []*proc{}
			for i, p := range procs {
				if i != tc.victim {
					live = append(live, p)
				}
			}
			if rerun != nil {
				live = append(live, rerun)
			}
			sentBy := 0
			for _, p := range live {
				if code := p.wait(t); code != 0 {
					t.Errorf("pid %d: exit %d:\n%s", p.cmd.Process.Pid, code, p.out.String())
					continue
				}
				s, _, _ := p.summary(t)
				sentBy += s
			}
			if rerun != nil && !strings.Contains(rerun.out.String(), "Working beside") {
				t.Errorf("the restarted worker did not join the live runs:\n%s", rerun.out.String())
			}

			// The rerun: nothing is left, and a plain send says so.
			again := start(t, ctx, bin, config)
			if code := again.wait(t); code != 0 || !strings.Contains(again.out.String(), "already delivered") {
				t.Errorf("send after all: exit %d:\n%s", code, again.out.String())
			}

			dups := checkAll(t, srv, emails)
			t.Logf("%d messages for %d readers, %d duplicates (allowed %d: the killed run's connections), busiest second %d (rate %g)",
				srv.Total(), n, dups, conns, st.maxPerSecond(), rate)
			if dups > conns {
				t.Errorf("%d duplicates, more than the killed run's %d connections", dups, conns)
			}
			if got, limit := st.maxPerSecond(), int(rate*1.1)+tc.workers*conns+2; got > limit {
				t.Errorf("%d messages within one second, over the list's rate %g (limit %d)", got, rate, limit)
			}

			// The ledger agrees: every row sent once, by its owner; the dead
			// run is listed as gone, the others as ended, and what each live
			// one recorded is what it said it sent.
			final, out := status(t, ctx, bin, config)
			if !strings.Contains(out, fmt.Sprintf("sent %d, failed 0, skipped 0, pending 0, sending 0 (of %d)", n, n)) {
				t.Errorf("status does not show the issue delivered:\n%s", out)
			}
			recorded := 0
			for _, r := range final {
				recorded += r.sent
			}
			if recorded != n {
				t.Errorf("runs in status recorded %d sent, want %d:\n%s", recorded, n, out)
			}
			if r := final[victim.cmd.Process.Pid]; r.state != "gone (died or cut off)" || r.sent == 0 {
				t.Errorf("killed run in status: %+v, want gone with some sent:\n%s", r, out)
			}
			for _, p := range live {
				s, _, _ := p.summary(t)
				if r := final[p.cmd.Process.Pid]; r.state != "ended" || r.sent != s {
					t.Errorf("pid %d in status: %+v, want ended with the %d it says it sent:\n%s", p.cmd.Process.Pid, r, s, out)
				}
			}
			if sentBy+final[victim.cmd.Process.Pid].sent != n {
				t.Errorf("the live runs say they sent %d and the killed one recorded %d: want %d in all",
					sentBy, final[victim.cmd.Process.Pid].sent, n)
			}
		})
	}
}
