package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/digest/digest/internal/schedule"
)

// Health is the body of /healthz. Times are RFC 3339, in UTC.
type Health struct {
	Status string `json:"status"` // one of the Role constants
	Reason string `json:"reason,omitempty"`
	Store  string `json:"store"` // "ok", or why the store cannot be reached
	Holder string `json:"holder"`
	// Active is who is active, when standing by.
	Active   *LeaseInfo `json:"active,omitempty"`
	Schedule string     `json:"schedule"`
	Running  bool       `json:"running"`
	// RunningFor is the scheduled time of the run in progress.
	RunningFor string `json:"running_for,omitempty"`
	// LastRun is the latest of the runs this daemon finished and of what
	// the schedule recorded (a skipped time, the active daemon's record
	// when standing by); absent before anything ran.
	LastRun *LastRun `json:"last_run,omitempty"`
	NextRun string   `json:"next_run,omitempty"`
	// LastReload is the last SIGHUP reload, with its error when it failed
	// (the configuration in use is then the one before).
	LastReload *ReloadInfo `json:"last_reload,omitempty"`
	// Relay is what delivery reports of the SMTP relay while it waits for
	// it (Options.Relay); the status is then "degraded".
	Relay any `json:"relay,omitempty"`
}

// LeaseInfo is the active daemon's lease, seen from a standby.
type LeaseInfo struct {
	Holder  string `json:"holder"`
	Since   string `json:"since"`
	Expires string `json:"expires"`
}

// LastRun is one run's record.
type LastRun struct {
	Scheduled string `json:"scheduled,omitempty"` // empty for a resume
	Kind      string `json:"kind,omitempty"`
	Outcome   string `json:"outcome"` // ok, failed, interrupted, skipped, running
	At        string `json:"at"`
	Detail    string `json:"detail,omitempty"`
}

// ReloadInfo is the last reload.
type ReloadInfo struct {
	At    string `json:"at"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// stamp is t in the one form /healthz uses; empty for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Health reports what the daemon does, and the HTTP status to answer
// with: 200 when it is active or standing by and the store answers, 503
// with a reason otherwise.
func (d *Daemon) Health(ctx context.Context) (Health, int) {
	d.mu.Lock()
	h := Health{Status: d.role, Reason: d.problem, Holder: d.o.Holder.String(), Schedule: d.cfg.Schedule.String()}
	if d.other != nil {
		h.Active = &LeaseInfo{Holder: d.other.Holder.String(), Since: stamp(d.other.Since), Expires: stamp(d.other.Expires)}
	}
	if r := d.reload; r != nil {
		h.LastReload = &ReloadInfo{At: stamp(r.At), OK: r.Err == "", Error: r.Err}
	}
	loop, sched, last := d.loop, d.cfg.Schedule, d.last
	d.mu.Unlock()
	if d.o.Relay != nil {
		h.Relay = d.o.Relay()
	}

	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, found, err := d.o.Store.LoadState(ctx, Name)
	h.Store = "ok"
	if err != nil {
		h.Store = errLine(err)
		if h.Reason == "" {
			h.Reason = "the store cannot be reached"
		}
	}
	var next time.Time
	switch {
	case loop != nil:
		ls := loop.Status()
		h.Running, next = ls.Running, ls.Next
		if ls.Running {
			h.RunningFor = stamp(ls.Current.Scheduled)
		}
		h.LastRun = latest(last, ls.Last)
	case err == nil && found:
		// Not active: what the active daemon recorded, and its next time.
		h.LastRun = latest(last, st)
		next = sched.Next(st.Scheduled)
	}
	h.NextRun = stamp(next)
	return h, healthCode(&h)
}

// StatusDegraded is the /healthz status of an active daemon whose delivery
// waits for the SMTP relay (or a sending cap).
const StatusDegraded = "degraded"

// healthCode is 200 for a healthy active or standby daemon (degraded
// while its delivery waits for the relay), 503 otherwise (with a reason).
func healthCode(h *Health) int {
	if h.Status == RoleActive && h.Reason == "" && h.Relay != nil {
		// Still 200: the process works (readers' pages, the schedule, the
		// paused run that resumes by itself) and a restart would not bring
		// the relay back; alert on the body or on digest_relay_up instead.
		h.Status = StatusDegraded
		return http.StatusOK
	}
	if h.Status != RoleActive && h.Status != RoleStandby {
		if h.Reason == "" {
			h.Reason = "the daemon is " + h.Status
		}
		return http.StatusServiceUnavailable
	}
	if h.Reason != "" {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

// latest is the later of this daemon's last finished run and the
// schedule's record; a record that only says the schedule started (nothing
// ran yet) is none.
func latest(own *runRecord, st schedule.State) *LastRun {
	useState := st.Outcome != "" && st.Outcome != schedule.OutcomeStarted &&
		(own == nil || st.At.After(own.At))
	switch {
	case useState:
		return &LastRun{Scheduled: stamp(st.Scheduled), Outcome: string(st.Outcome), At: stamp(st.At), Detail: st.Detail}
	case own != nil:
		return &LastRun{Scheduled: stamp(own.Scheduled), Kind: own.Kind, Outcome: own.Outcome, At: stamp(own.At), Detail: own.Detail}
	}
	return nil
}

// Routes is the daemon's HTTP: /healthz, metrics (when set) at /metrics,
// and the readers' pages of the current configuration.
func (d *Daemon) Routes(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", d.serveHealth)
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.Handle("/", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		d.current().Web.ServeHTTP(rw, r)
	}))
	return mux
}

func (d *Daemon) serveHealth(rw http.ResponseWriter, r *http.Request) {
	h, code := d.Health(r.Context())
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(code)
	enc := json.NewEncoder(rw)
	enc.SetIndent("", "  ")
	_ = enc.Encode(h)
}
