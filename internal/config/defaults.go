package config

import (
	"path/filepath"
	"time"
)

// Default values, in one place. Load decodes the file over Default(), so a
// key written explicitly (even as 0 or "") keeps the written value and is then
// checked by Validate; the derived defaults in applyDefaults fill what depends
// on other keys.
const (
	DefaultWindow        = 168 * time.Hour
	DefaultMaxArticles   = 30
	DefaultTeaserLength  = 280
	DefaultSourceTimeout = 20 * time.Second
	// DefaultScheduleGrace: a weekly issue caught up the same day is
	// welcome; one sent the next day is not.
	DefaultScheduleGrace   = 12 * time.Hour
	DefaultShutdownTimeout = 10 * time.Second
)

// Default returns the configuration used for every key the file leaves out,
// before the derived defaults (smtp.port from smtp.tls, delivery.outbox from
// archive, each source's section and timeout) are filled in by Load.
func Default() Config {
	return Config{
		Newsletter: Newsletter{Timezone: "UTC", DoubleOptIn: true},
		Digest: Digest{
			Window:       DefaultWindow,
			MaxArticles:  DefaultMaxArticles,
			TeaserLength: DefaultTeaserLength,
		},
		Templates: "templates",
		Archive:   "digests",
		Database:  "digests/digest.db",
		SMTP: SMTP{
			TLS:         "starttls",
			Auth:        "auto",
			Connections: 4,
			Timeout:     30 * time.Second,
			DataTimeout: 10 * time.Minute,
		},
		Delivery: Delivery{
			Transport:   "smtp",
			MaxAttempts: 5,
			Lease:       30 * time.Second,
			RetryFor:    48 * time.Hour,
			OutageWait:  10 * time.Minute,
			// 10% after 500 messages: see Delivery.PauseOnBounceRate.
			PauseOnBounceRate: 0.1,
		},
		Schedule:        "0 8 * * MON",
		ScheduleGrace:   DefaultScheduleGrace,
		ShutdownTimeout: DefaultShutdownTimeout,
		Server:          Server{Listen: "127.0.0.1:8080"},
		Log:             Log{Level: "info", Format: "auto"},
	}
}

// applyDefaults fills the defaults that depend on other keys. A zero value
// here means "not set": an explicit `port: 0` gets the default port.
func (c *Config) applyDefaults() {
	if c.SMTP.Port == 0 {
		switch c.SMTP.TLS {
		case "tls":
			c.SMTP.Port = 465
		case "none":
			c.SMTP.Port = 25
		default:
			c.SMTP.Port = 587
		}
	}
	if c.Delivery.Outbox == "" && c.Archive != "" {
		c.Delivery.Outbox = filepath.Join(c.Archive, "outbox")
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.Section == "" {
			s.Section = s.Name
		}
		if s.Timeout == 0 {
			s.Timeout = DefaultSourceTimeout
		}
		if s.Topics == nil && s.Section != "" {
			s.Topics = []string{s.Section}
		}
	}
}
