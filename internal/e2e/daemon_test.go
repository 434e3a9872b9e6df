package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/digest/digest/internal/smtptest"
)

// patience bounds every wait on a daemon: far above what each step takes
// on a loaded machine, so that only a real hang trips it.
const patience = 60 * time.Second

// daemonSite is a config for `digest daemon`: notes dated just before now
// (the daemon builds for the real time), n subscribers, SMTP to srv, a short
// lease so that take-overs happen within seconds, and a free HTTP port.
type daemonSite struct {
	dir, config string
	emails      []string
	port        int
	base        string // the config's text without server.listen
}

func newDaemonSite(t *testing.T, srv *smtptest.Server, n, conns int, schedule string) *daemonSite {
	t.Helper()
	s := &daemonSite{dir: t.TempDir()}
	notes := filepath.Join(s.dir, "notes")
	if err := os.MkdirAll(notes, 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range 5 {
		write(t, filepath.Join(notes, fmt.Sprintf("n%d.md", i)), fmt.Sprintf(
			"---\ntitle: \"Daemon note %d\"\ndate: %s\nurl: https://example.org/daemon/%d\nsummary: \"Teaser %d about the ferry timetable.\"\n---\nBody %d.\n",
			i, now.Add(-time.Duration(i+1)*time.Hour).Format(time.RFC3339), i, i, i))
	}
	var csv strings.Builder
	csv.WriteString("email,name\n")
	for i := range n {
		e := fmt.Sprintf("reader%04d@example.org", i)
		s.emails = append(s.emails, e)
		fmt.Fprintf(&csv, "%s,Reader %d\n", e, i)
	}
	write(t, filepath.Join(s.dir, "subscribers.csv"), csv.String())
	s.base = fmt.Sprintf(`newsletter:
  name: Daemon Weekly
  from: "Daemon Weekly <digest@example.org>"
  base_url: http://127.0.0.1:9
digest:
  window: 168h
sources:
  - {name: Notes, type: markdown, path: notes, section: Town}
archive: archive
database: digest.db
subscribers_csv: subscribers.csv
secret: daemon-test-secret
smtp: {host: 127.0.0.1, port: %d, tls: none, connections: %d, timeout: 5s}
delivery: {transport: smtp, lease: 3s}
schedule: %q
log: {level: info, format: json}
`, srv.Port(), conns, schedule)
	// Port 0: the daemon picks a free port and logs it (startDaemon reads
	// it), so that parallel tests never race for one.
	s.config = filepath.Join(s.dir, "config.yaml")
	s.write(t, s.base, s.port)
	return s
}

// write writes the config with body and server.listen on port.
func (s *daemonSite) write(t *testing.T, body string, port int) {
	t.Helper()
	write(t, s.config, body+fmt.Sprintf("server: {listen: \"127.0.0.1:%d\"}\n", port))
}

// second writes a config for another daemon on the same database, with its
// own HTTP port (0: picked at start), and returns its path and port.
func (s *daemonSite) second(t *testing.T) (string, int) {
	t.Helper()
	port := 0
	path := filepath.Join(s.dir, "config2.yaml")
	write(t, path, s.base+fmt.Sprintf("server: {listen: \"127.0.0.1:%d\"}\n", port))
	return path, port
}

// daemonProc is a running daemon.
type daemonProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	port   int
	stderr string // file with its log
	exited chan struct{}
	err    error
}

func startDaemon(t *testing.T, bin, config string, port int) *daemonProc {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "daemon-*.log")
	if err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{t: t, port: port, stderr: logf.Name(), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "daemon", "--config", config)
	p.cmd.Dir = filepath.Dir(config)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	if port == 0 {
		p.port = p.listenPort()
	}
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("log of daemon pid %d:\n%s", p.cmd.Process.Pid, p.log())
		}
	})
	return p
}

// listenPort waits for the daemon's start-up line and returns the port it
// listens on.
func (p *daemonProc) listenPort() int {
	p.t.Helper()
	var addr string
	until(p.t, "the daemon listens", func() bool {
		select {
		case <-p.exited:
			p.t.Fatalf("daemon exited at start (%v):\n%s", p.err, p.log())
		default:
		}
		if l := p.logLines("daemon started"); len(l) > 0 {
			addr, _ = l[0]["listen"].(string)
		}
		return addr != ""
	})
	_, port, err := net.SplitHostPort(addr)
	n, cerr := strconv.Atoi(port)
	if err != nil || cerr != nil {
		p.t.Fatalf("daemon listens on %q", addr)
	}
	return n
}

func (p *daemonProc) log() string {
	b, _ := os.ReadFile(p.stderr)
	return string(b)
}

// logLines returns the JSON log lines whose msg is msg.
func (p *daemonProc) logLines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.log()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// health is the daemon's /healthz answer (code 0: no answer).
type healthz struct {
	code     int
	Status   string `json:"status"`
	Reason   string `json:"reason"`
	Store    string `json:"store"`
	Holder   string `json:"holder"`
	Schedule string `json:"schedule"`
	Active   *struct {
		Holder string `json:"holder"`
	} `json:"active"`
	LastRun *struct {
		Scheduled time.Time `json:"scheduled"`
		Outcome   string    `json:"outcome"`
	} `json:"last_run"`
	NextRun *time.Time `json:"next_run"`
}

func (p *daemonProc) health() healthz {
	var h healthz
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", p.port))
	if err != nil {
		return h
	}
	defer resp.Body.Close()
	h.code = resp.StatusCode
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return h
}

func (p *daemonProc) get(path string) string {
	p.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", p.port, path))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return string(b)
}

// until polls cond until it holds, failing the test after patience.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and checks that the daemon exits 0 within 10 s (the
// issue's promise for a default shutdown_timeout).
func (p *daemonProc) stop() {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("pid %d still running 10s after SIGTERM", p.cmd.Process.Pid)
	}
	if p.err != nil {
		p.t.Fatalf("daemon exit after SIGTERM: %v", p.err)
	}
	p.t.Logf("pid %d stopped %s after SIGTERM", p.cmd.Process.Pid, time.Since(start).Round(time.Millisecond))
}

// exactlyOnce checks that every address got one message; it returns the
// number of extra copies when dupsAllowed > 0.
func exactlyOnce(t *testing.T, srv *smtptest.Server, emails []string, dupsAllowed int) {
	t.Helper()
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
	if len(counts) != len(emails) {
		t.Errorf("messages went to %d addresses, want %d", len(counts), len(emails))
	}
	if dups > dupsAllowed {
		t.Errorf("%d duplicates, allowed %d", dups, dupsAllowed)
	}
	t.Logf("%d messages for %d readers, %d duplicates (allowed %d)", srv.Total(), len(emails), dups, dupsAllowed)
}

func skipWithoutSignals(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("signals")
	}
}

// A schedule of a few seconds over unchanged content: every reader gets one
// issue, however many ticks pass; health and metrics answer; SIGTERM exits 0.
func TestDaemonScheduleSendsOnce(t *testing.T) {
	t.Parallel()
	skipWithoutSignals(t)
	bin := buildBinary(t)
	srv := smtptest.New(t)
	site := newDaemonSite(t, srv, 25, 2, "@every 2s")
	d := startDaemon(t, bin, site.config, site.port)

	until(t, "every reader served", func() bool { return srv.Total() >= len(site.emails) })
	first := d.health().LastRun.Scheduled
	// last_run is set when a tick starts: wait for its log line too, so
	// that the fourth run has finished, not only begun.
	until(t, "three more ticks", func() bool {
		h := d.health()
		return h.LastRun != nil && h.LastRun.Scheduled.Sub(first) >= 6*time.Second &&
			len(d.logLines("run finished")) >= 4
	})
	exactlyOnce(t, srv, site.emails, 0)

	h := d.health()
	if h.code != http.StatusOK || h.Status != "active" || h.Store != "ok" || h.NextRun == nil ||
		(h.LastRun.Outcome != "ok" && h.LastRun.Outcome != "running") { // a tick may be going on
		t.Errorf("healthz %+v, last run %+v", h, *h.LastRun)
	}
	metrics := d.get("/metrics")
	for _, want := range []string{
		fmt.Sprintf(`digest_messages_total{outcome="sent",reason="accepted"} %d`, len(site.emails)),
		`digest_issues_built_total 1`,
		`digest_daemon_active 1`,
		`digest_schedule_next_run_timestamp_seconds `,
		`digest_schedule_last_success_timestamp_seconds `,
		`digest_delivery_duration_seconds_count 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if page := d.get("/unsubscribe"); !strings.Contains(page, "Daemon Weekly") {
		t.Errorf("the daemon does not serve the readers' pages: GET /unsubscribe gave %.200q", page)
	}
	// Health may show the fourth run going on before its log line is out.
	until(t, "four runs logged", func() bool { return len(d.logLines("run finished")) >= 4 })
	runs := d.logLines("run finished")
	if len(runs) < 4 || runs[0]["issue"] == nil || runs[0]["sent"] != float64(len(site.emails)) {
		t.Errorf("run log lines: %v", runs)
	}
	if strings.Contains(d.log(), "reader0000@") {
		t.Error("the log names a subscriber")
	}
	d.stop()
}

// Two daemons on one database: one is active, the other stands by and says
// who is active; SIGKILL of the active one mid-delivery hands over within a
// minute, and the new one finishes the issue, repeating at most the
// messages that were in flight.
func TestDaemonStandbyTakesOver(t *testing.T) {
	t.Parallel()
	skipWithoutSignals(t)
	const n, conns = 400, 2
	bin := buildBinary(t)
	srv := smtptest.New(t, smtptest.WithFaults(func(string, int) smtptest.Fault {
		return smtptest.Fault{Stall: 20 * time.Millisecond}
	}))
	site := newDaemonSite(t, srv, n, conns, "@every 2s")
	config2, port2 := site.second(t)
	// The second starts once the first has created the database: two
	// processes creating one SQLite file at the same instant can fail with
	// SQLITE_BUSY in store.Open (reported; not the daemon's concern).
	a := startDaemon(t, bin, site.config, site.port)
	until(t, "the first daemon answers", func() bool { return a.health().code != 0 })
	b := startDaemon(t, bin, config2, port2)

	var active, standby *daemonProc
	until(t, "one active, one standing by", func() bool {
		ha, hb := a.health(), b.health()
		switch {
		case ha.Status == "active" && hb.Status == "standby":
			active, standby = a, b
		case hb.Status == "active" && ha.Status == "standby":
			active, standby = b, a
		default:
			return false
		}
		return true
	})
	hs := standby.health()
	if hs.code != http.StatusOK || hs.Active == nil || hs.Active.Holder != active.health().Holder {
		t.Errorf("the standby's health does not name the active daemon: %+v", hs)
	}

	until(t, "delivery under way", func() bool { return srv.Total() >= 40 })
	if err := active.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-active.exited
	killed := time.Now()
	if at := srv.Total(); at >= n {
		t.Fatalf("the issue was delivered before the kill (%d messages): nothing was in flight", at)
	} else {
		t.Logf("killed after %d of %d messages", at, n)
	}
	until(t, "the standby takes over", func() bool { return standby.health().Status == "active" })
	t.Logf("taken over %s after SIGKILL", time.Since(killed).Round(time.Millisecond))
	if time.Since(killed) > time.Minute {
		t.Errorf("take-over took %s, more than a minute", time.Since(killed))
	}
	until(t, "every reader served", func() bool { return len(srv.Counts()) >= n })
	// Let a tick or two pass: nothing more may be sent.
	settled := srv.Total()
	last := standby.health().LastRun.Scheduled
	until(t, "two more ticks", func() bool {
		h := standby.health()
		return h.LastRun != nil && h.LastRun.Scheduled.Sub(last) >= 4*time.Second
	})
	if srv.Total() != settled {
		t.Errorf("%d more messages after the issue was delivered", srv.Total()-settled)
	}
	exactlyOnce(t, srv, site.emails, conns)
	if len(standby.logLines("taking over from a daemon whose lease expired or whose process is gone")) != 1 {
		t.Error("the take-over is not logged")
	}
	standby.stop()
}

// SIGTERM in the middle of a delivery: the daemon lets messages in flight
// finish, records them and exits 0; a later `digest send` finishes the issue
// with nobody skipped and nobody served twice.
func TestDaemonGracefulStop(t *testing.T) {
	t.Parallel()
	skipWithoutSignals(t)
	const n, conns = 300, 2
	bin := buildBinary(t)
	srv := smtptest.New(t, smtptest.WithFaults(func(string, int) smtptest.Fault {
		return smtptest.Fault{Stall: 10 * time.Millisecond}
	}))
	site := newDaemonSite(t, srv, n, conns, "@every 2s")
	d := startDaemon(t, bin, site.config, site.port)
	until(t, "delivery under way", func() bool { return srv.Total() >= 40 })

	// A send by hand meanwhile is told who delivers, and sends nothing.
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	manual := exec.CommandContext(ctx, bin, "send", "--config", site.config)
	manual.Dir = site.dir
	out, err := manual.CombinedOutput()
	if code := manual.ProcessState.ExitCode(); code != 1 || !busy(string(out)) {
		t.Errorf("send during the daemon's delivery: exit %d (%v), want 1 and who delivers:\n%s", code, err, out)
	}

	d.stop()
	stopped := srv.Total()
	if stopped >= n {
		t.Fatalf("the whole issue went out before SIGTERM (%d messages): nothing was interrupted", stopped)
	}
	t.Logf("stopped after %d of %d messages", stopped, n)

	cmd := exec.CommandContext(ctx, bin, "send", "--config", site.config)
	cmd.Dir = site.dir
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("send after the daemon stopped: %v\n%s", err, out)
	}
	exactlyOnce(t, srv, site.emails, 0)
}

// SIGHUP with a broken configuration keeps the old one (and the daemon
// healthy); with a good one it takes the new schedule.
func TestDaemonReload(t *testing.T) {
	t.Parallel()
	skipWithoutSignals(t)
	bin := buildBinary(t)
	srv := smtptest.New(t)
	site := newDaemonSite(t, srv, 3, 1, "@every 1h")
	d := startDaemon(t, bin, site.config, site.port)
	until(t, "active", func() bool { return d.health().Status == "active" })

	tmpl := filepath.Join(site.dir, "broken-templates")
	if err := os.MkdirAll(tmpl, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(tmpl, "subject.tmpl"), "{{.Issue.Nope")
	for i, broken := range []string{
		"newsletter: [not a mapping\n",                                                                     // YAML
		strings.Replace(site.base, "@every 1h", "@every 1h tomorrow", 1),                                   // schedule
		strings.Replace(site.base, "archive: archive", "archive: archive\ntemplates: broken-templates", 1), // template
	} {
		site.write(t, broken, site.port)
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		until(t, fmt.Sprintf("reload %d refused", i+1), func() bool { return len(d.logLines("reload failed: keeping the configuration in use")) == i+1 })
		if h := d.health(); h.code != http.StatusOK || h.Schedule != "@every 1h" {
			t.Errorf("after broken reload %d: %+v", i+1, h)
		}
	}
	for _, l := range d.logLines("reload failed: keeping the configuration in use") {
		t.Logf("refused: %v", l["err"])
	}

	site.write(t, strings.Replace(site.base, "@every 1h", "@every 30m", 1), site.port)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	until(t, "reloaded", func() bool { return d.health().Schedule == "@every 30m" })
	if next := d.health().NextRun; next == nil || time.Until(*next) > 31*time.Minute {
		t.Errorf("next run %v after the new schedule of 30m", next)
	}
	d.stop()
}
