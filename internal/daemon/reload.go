package daemon

import (
	"context"
	"time"
)

// reloadRecord is the last reload, for /healthz.
type reloadRecord struct {
	At  time.Time
	Err string // empty when it worked
}

// Reload reads the configuration again (Options.Load) and, when it loads
// and wires, makes it the current one: the next run uses it, the schedule
// follows a new spec, and the readers' pages switch over (those of the old
// configuration are closed once their queued work is done). On an error
// it logs why, keeps the configuration in use and shows the failure in
// /healthz. It reports whether the new configuration is in use.
func (d *Daemon) Reload(ctx context.Context) bool {
	cfg, err := d.o.Load(ctx)
	rec := &reloadRecord{At: d.clock.Now()}
	if err != nil {
		rec.Err = errLine(err)
		d.log.Error("reload failed: keeping the configuration in use", "err", rec.Err)
		d.mu.Lock()
		d.reload = rec
		d.mu.Unlock()
		return false
	}
	d.mu.Lock()
	old := d.cfg
	d.cfg, d.reload = cfg, rec
	loop := d.loop
	d.mu.Unlock()
	if old.Close != nil && old.Web != cfg.Web {
		go func() {
			c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := old.Close(c); err != nil {
				d.log.Warn("stopping the readers' mail sender of the old configuration", "err", errLine(err))
			}
		}()
	}
	if loop != nil && (cfg.Schedule.String() != old.Schedule.String() ||
		cfg.Schedule.Location().String() != old.Schedule.Location().String()) {
		loop.Reschedule(cfg.Schedule)
	}
	d.log.Info("configuration reloaded", "schedule", cfg.Schedule.String())
	return true
}

// Close stops the current configuration's readers' pages once their queued
// work is done (at most 30 s): after Run returned.
func (d *Daemon) Close(ctx context.Context) {
	cfg := d.current()
	if cfg.Close == nil {
		return
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := cfg.Close(c); err != nil {
		d.log.Warn("stopping the readers' mail sender", "err", errLine(err))
	}
}
