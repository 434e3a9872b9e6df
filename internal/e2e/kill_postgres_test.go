package e2e

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/smtptest"
	"github.com/digest/digest/internal/store/storetest"
)

// TestKillAndResumePostgres is TestKillAndResume with the ledger on
// Postgres (DIGEST_TEST_POSTGRES; skipped without it, failed under CI),
// where a run keeps several Records in flight and a run's rows follow
// its lease: `digest send` is killed with SIGKILL after a random number
// of messages, three times, and rerun until it exits 0. Nobody may be
// skipped, and each kill may repeat at most one message per connection.
func TestKillAndResumePostgres(t *testing.T) {
	t.Parallel()
	if os.Getenv(storetest.EnvPostgres) == "" {
		storetest.PostgresDSN(t) // skips, or fails under CI
	}
	const n, conns, maxKills = 1500, 4, 3
	bin := buildBinary(t)
	srv := smtptest.New(t, smtptest.WithDiscard(), smtptest.WithFaults(func(string, int) smtptest.Fault {
		return smtptest.Fault{Stall: 500 * time.Microsecond}
	}))
	config, emails := newSite(t, srv, n, conns)
	body, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	write(t, config, strings.Replace(string(body), "database: digest.db\n",
		"database: "+strconv.Quote(storetest.PostgresDSN(t))+"\n", 1))
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 19))

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	kills := 0
	for runs := 0; ; runs++ {
		if runs > 20 || ctx.Err() != nil {
			t.Fatalf("no clean exit after %d runs, %d kills", runs, kills)
		}
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "send", "--config", config, "--now", now)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if kills < maxKills {
			target := srv.Total() + 50 + rng.IntN(300)
			if waitFor(exited, func() bool { return srv.Total() >= target }) {
				kills += kill(cmd, exited)
				continue
			}
		} else {
			<-exited
		}
		code := cmd.ProcessState.ExitCode()
		if code == 0 {
			break
		}
		if code != 1 {
			t.Fatalf("run %d: exit %d:\n%s", runs+1, code, out.String())
		}
		if busy(out.String()) {
			time.Sleep(testLease / 4) // a killed run's lease is not over yet
		}
	}
	counts := srv.Counts()
	dups := 0
	for _, e := range emails {
		switch c := counts[e]; {
		case c == 0:
			t.Errorf("%s received nothing", e)
		case c > 1:
			dups += c - 1
		}
	}
	t.Logf("%d kills, %d messages for %d readers, %d duplicates (allowed %d)", kills, srv.Total(), n, dups, conns*kills)
	if dups > conns*kills {
		t.Errorf("%d duplicates after %d kills, more than one per connection per kill (%d)", dups, kills, conns*kills)
	}
}
