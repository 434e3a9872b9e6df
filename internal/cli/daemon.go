package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/digest/digest/internal/config"
	"github.com/digest/digest/internal/daemon"
	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/web"
)

// daemonCmd is `digest daemon`: it wires internal/daemon (election,
// schedule, resume, reload, health) to the config, the store, HTTP and the
// signals.
type daemonCmd struct {
	e     *env // the streams, the store and the metrics; e.cfg is the first config
	level *slog.LevelVar
	log   *slog.Logger
	d     *daemon.Daemon
	// relay is what the runs know of the SMTP relay, kept across reloads.
	relay *deliver.RelayState
}

func (e *env) daemon(ctx context.Context, args []string) error {
	f := newFlags(e, "daemon", false)
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	e.metrics.Runtime()
	c := &daemonCmd{e: e, level: new(slog.LevelVar), relay: e.newRelayState()}
	e.metrics.RelayUp(true) // digest_relay_up exists from the start
	c.level.Set(e.cfg.Log.SlogLevel())
	e.log = leveledLogger(e.stderr, e.cfg.Log.Format, c.level)
	c.log = e.log
	first, err := c.wire(ctx, e.cfg)
	if err != nil {
		return err
	}
	c.d = daemon.New(daemon.Options{
		Store: e.store, Holder: e.store.Process(), Logger: c.log, Metrics: e.metrics,
		Load: c.reload, Observe: c.observe, Relay: c.relayHealth,
	}, first)
	return c.run(ctx)
}

// wire builds what one configuration gives the daemon: the use case, the
// schedule and the readers' pages. Errors are those of a bad configuration
// (templates, sources, DKIM key), wrapped as such where the command would
// exit 2.
func (c *daemonCmd) wire(ctx context.Context, cfg *config.Config) (*daemon.Config, error) {
	ce := &env{stdout: c.e.stdout, stderr: c.e.stderr, configPath: c.e.configPath,
		cfg: cfg, log: c.log, store: c.e.store, metrics: c.e.metrics, clock: c.e.clock}
	sched, err := cfg.ParseSchedule()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: schedule: %w", config.ErrInvalid, cfg.Path, err)
	}
	p, err := ce.pipeline()
	if err != nil {
		return nil, err
	}
	if err := ce.wireDelivery(ctx, p); err != nil {
		return nil, err
	}
	// Logs, not a progress bar: the daemon's stderr is a log stream.
	p.Delivery.Engine.Progress = nil
	// The daemon waits out any relay outage, its runs sharing one state.
	p.Delivery.Engine.OutageWait, p.Delivery.Engine.Relay = -1, c.relay
	p.Delivery.Chosen = func(b *pipeline.Built, continued bool) {
		if continued {
			// However late: schedule_grace is about starting an issue; one
			// that reached some readers is finished for the others.
			c.log.Info("continuing an unfinished issue: its delivery started, so it is finished whatever the schedule's grace",
				"issue", b.Issue.ID)
		}
	}
	h, err := ce.webHandler(ctx)
	if err != nil {
		return nil, err
	}
	return &daemon.Config{
		Schedule: sched, Grace: cfg.ScheduleGrace, Lease: cfg.Delivery.Lease, ShutdownTimeout: cfg.ShutdownTimeout,
		Deliver: p.Deliver, Web: h, Close: h.Close,
	}, nil
}

// reload reads the configuration file again and wires it (daemon.Options.Load).
// The database and server.listen stay as they were until a restart.
func (c *daemonCmd) reload(ctx context.Context) (*daemon.Config, error) {
	old := c.e.cfg
	cfg, err := config.Load(c.e.configPath, os.Getenv)
	if err != nil {
		return nil, err
	}
	if cfg.Database != old.Database {
		c.log.Warn("reload: a new database takes a restart; keeping the old one", "database", old.Database)
		cfg.Database = old.Database
	}
	if cfg.Server.Listen != old.Server.Listen {
		c.log.Warn("reload: a new server.listen takes a restart; keeping the old one", "listen", old.Server.Listen)
		cfg.Server.Listen = old.Server.Listen
	}
	if cfg.Log.Format != old.Log.Format {
		c.log.Warn("reload: a new log.format takes a restart")
	}
	w, err := c.wire(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c.level.Set(cfg.Log.SlogLevel())
	return w, nil
}

// relayHealth is the relay's state for /healthz while delivery waits for
// it, nil while it answers (daemon.Options.Relay).
func (c *daemonCmd) relayHealth() any {
	if r := relayHealth(c.relay); r != nil {
		return r
	}
	return nil
}

// observe counts a run's build and delivery in the metrics, as send does.
func (c *daemonCmd) observe(res pipeline.Result) {
	if res.Built != nil {
		c.e.observe(res.Built)
	}
	c.e.recordDelivery(res)
}

// run serves HTTP and runs the daemon until ctx is cancelled; SIGHUP
// reloads the configuration.
func (c *daemonCmd) run(ctx context.Context) error {
	cfg := c.e.cfg
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		c.d.Close(ctx)
		return fmt.Errorf("%s: server.listen: %w", cfg.Path, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/hooks/", c.e.hooksHandler())
	mux.Handle("/", c.d.Routes(c.e.metrics.Handler()))
	srv := web.NewServer(mux)
	srv.ErrorLog = slog.NewLogLogger(c.log.Handler(), slog.LevelWarn)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	purgeCtx, stopPurge := context.WithCancel(ctx)
	bounces, err := c.e.startBounces(purgeCtx)
	if err != nil {
		stopPurge()
		_ = srv.Close()
		c.d.Close(ctx)
		return err
	}
	purged := make(chan struct{})
	go func() {
		defer close(purged)
		c.e.purgeLoop(purgeCtx)
	}()
	sched, _ := cfg.ParseSchedule()
	c.log.Info("daemon started", "listen", ln.Addr().String(), "holder", c.e.store.Process().String(),
		"schedule", cfg.Schedule, "zone", sched.Location().String())

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reloads := make(chan struct{})
	go func() {
		defer close(reloads)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				c.d.Reload(ctx)
			}
		}
	}()

	err = c.d.Run(ctx)
	// The work has stopped (bounded by shutdown_timeout); HTTP answers
	// are quick, a couple of seconds is enough for those in progress.
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		c.log.Warn("HTTP server shutdown", "err", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		c.log.Error("HTTP server", "err", err)
	}
	stopPurge()
	<-purged
	if berr := bounces.Wait(); berr != nil {
		c.log.Error("bounce intake", "err", berr)
	}
	<-reloads
	c.d.Close(ctx)
	c.log.Info("daemon stopped")
	return err
}

// healthcheck asks a running daemon's /healthz and exits 0 when it answers
// 200 (active or standing by), 1 otherwise: the container's HEALTHCHECK,
// which has no curl or wget in an empty image.
func (e *env) healthcheck(ctx context.Context, args []string) error {
	f := newFlags(e, "healthcheck", false)
	target := f.String("url", "", "health URL to ask (default: /healthz on server.listen)")
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	if *target == "" {
		cfg, err := config.Load(e.configPath, nil)
		if err != nil {
			return err
		}
		*target = healthURL(cfg.Server.Listen)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return usagef("healthcheck --url: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &exitError{code: ExitFailed, err: fmt.Errorf("healthcheck: %w", err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprint(e.stdout, string(body))
	if resp.StatusCode != http.StatusOK {
		return &exitError{code: ExitFailed, err: fmt.Errorf("healthcheck %s: %s", *target, resp.Status)}
	}
	return nil
}

// healthURL is /healthz on the address the daemon listens on, reached over
// loopback when it listens on every interface.
func healthURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen + "/healthz"
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz"
}
