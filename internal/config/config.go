// Package config turns the YAML configuration file into a typed, validated Config.
//
// It is read only by package cli; every other package takes its own small
// options struct, filled in by cli from a Config.
package config

import "time"

// Config is the whole configuration file, after defaults and environment
// overrides have been applied.
type Config struct {
	Newsletter     Newsletter `yaml:"newsletter"`
	Digest         Digest     `yaml:"digest"`
	Sources        []Source   `yaml:"sources"`
	Templates      string     `yaml:"templates"`
	Archive        string     `yaml:"archive"`
	Database       string     `yaml:"database"`
	SubscribersCSV string     `yaml:"subscribers_csv"`
	SMTP           SMTP       `yaml:"smtp"`
	Delivery       Delivery   `yaml:"delivery"`
	Bounces        Bounces    `yaml:"bounces"`
	Schedule       string     `yaml:"schedule"`
	// ScheduleGrace is how late the daemon may still start a scheduled
	// run that it missed (it was down, the clock jumped); a later one is
	// skipped and logged, never sent days late. Default 12h.
	ScheduleGrace time.Duration `yaml:"schedule_grace"`
	// ShutdownTimeout bounds how long the daemon, once told to stop, waits
	// for messages in flight before it exits. Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	Server          Server        `yaml:"server"`
	Secret          string        `yaml:"secret"`
	// MetricsFile, when set, receives the run's metrics in the Prometheus
	// text format after every command (node_exporter's textfile collector).
	MetricsFile string `yaml:"metrics_file"`
	Log         Log    `yaml:"log"`
	DKIM        DKIM   `yaml:"dkim"`

	// Path is the file the configuration was read from, as given to Load;
	// relative paths in the file (templates, archive, database unless it is a
	// postgres:// URL, subscribers_csv, delivery.outbox, sources' path) are
	// resolved against its directory. Errors start with it.
	Path string `yaml:"-"`
}

// Newsletter describes the publication.
type Newsletter struct {
	Name       string `yaml:"name"`
	From       string `yaml:"from"`        // "Name <addr@example.org>" or a bare address
	ReplyTo    string `yaml:"reply_to"`    // optional
	BaseURL    string `yaml:"base_url"`    // where the web endpoints (unsubscribe) live
	Timezone   string `yaml:"timezone"`    // IANA zone, default UTC
	Language   string `yaml:"language"`    // BCP 47 tag: lang of the issues and archive, French spacing for fr; default en
	Footer     string `yaml:"footer"`      // postal / contact line shown in the footer
	ArchiveURL string `yaml:"archive_url"` // optional public URL of the archive folder
	// DoubleOptIn (default true): a sign-up through the web form becomes a
	// subscriber only once the address is confirmed by the mailed link.
	// Imports and `subscribers add` are trusted either way.
	DoubleOptIn bool `yaml:"double_opt_in"`
	// AllowDotlessDomains accepts addresses such as user@localhost, which
	// cannot be delivered over the internet (private networks, tests).
	AllowDotlessDomains bool `yaml:"allow_dotless_domains"`
}

// Digest controls selection.
type Digest struct {
	Window       time.Duration `yaml:"window"`        // default 168h
	MaxArticles  int           `yaml:"max_articles"`  // default 30
	TeaserLength int           `yaml:"teaser_length"` // characters, default 280
	// Intro is an optional Markdown file with the editor\'s introduction to
	// the next issue, shown at the top of both parts.
	Intro string `yaml:"intro"`
}

// Source is one entry of sources:.
type Source struct {
	Name    string        `yaml:"name"`
	Type    string        `yaml:"type"` // feed | markdown | page
	URL     string        `yaml:"url"`
	Path    string        `yaml:"path"`
	Section string        `yaml:"section"` // default: Name
	Timeout time.Duration `yaml:"timeout"` // default 20s
	// Selectors pick articles out of a web page (type page).
	Selectors Selectors `yaml:"selectors"`
	// FetchTeasers (type page): for an item without a teaser, read the
	// article's own page for its og:description / description meta.
	FetchTeasers bool `yaml:"fetch_teasers"`
	// Topics readers can choose this source's stories by; default: its
	// section. An empty list ("topics: []") sends its stories to everyone.
	Topics []string `yaml:"topics"`
	// MaxItems, when set, is the most stories of this source in one issue,
	// newest first; the rest stay eligible for the next issue.
	MaxItems *int `yaml:"max_items"`
	// Settle is how long a story must stay unchanged before it is taken
	// (0, the default: at once); SettleMax caps the wait from the first
	// sight (see SettleLimit).
	Settle    time.Duration `yaml:"settle"`
	SettleMax time.Duration `yaml:"settle_max"`
	// Backfill, when set, is how many of its stories the source brings the
	// first time it is seen, newest first; the older ones are never sent.
	Backfill *int `yaml:"backfill"`
}

// Selectors are the CSS selectors of a page source; item is required, the
// others are looked up inside each item and have sensible defaults.
type Selectors struct {
	Item   string `yaml:"item"`
	Title  string `yaml:"title"`
	Link   string `yaml:"link"`
	Teaser string `yaml:"teaser"`
	Date   string `yaml:"date"`
	Image  string `yaml:"image"`
}

// SMTP is the relay used by the smtp transport.
type SMTP struct {
	Host               string        `yaml:"host"`
	Port               int           `yaml:"port"` // default 587 (starttls), 465 (tls), 25 (none)
	Username           string        `yaml:"username"`
	Password           string        `yaml:"password"`    // env DIGEST_SMTP_PASSWORD wins
	TLS                string        `yaml:"tls"`         // none | starttls | tls; default starttls
	Connections        int           `yaml:"connections"` // default 4
	Rate               float64       `yaml:"rate"`        // messages per second, 0 = unlimited
	Timeout            time.Duration `yaml:"timeout"`     // per SMTP command, default 30s
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify"`
	// DataTimeout is the wait for the reply to the end of a message's DATA,
	// default 10m (RFC 5321): a timeout there is ambiguous, the relay may
	// have accepted the message.
	DataTimeout time.Duration `yaml:"data_timeout"`
	// Auth is the AUTH mechanism: auto (default), plain, login or cram-md5.
	Auth string `yaml:"auth"`
	// EnvelopeFrom is the MAIL FROM address, where bounces go; empty means
	// newsletter.from's address.
	EnvelopeFrom string `yaml:"envelope_from"`
	// HELO is the name given in EHLO; empty means the machine's host
	// name, which behind NAT is often not one the relay accepts.
	HELO string `yaml:"helo"`
	// PerHour and PerDay cap messages for relays with quotas; 0 = no cap.
	PerHour int `yaml:"per_hour"`
	PerDay  int `yaml:"per_day"`
}

// DKIM signs outgoing mail when Domain is set.
type DKIM struct {
	Domain         string `yaml:"domain"`
	Selector       string `yaml:"selector"`
	PrivateKeyFile string `yaml:"private_key_file"` // PEM: RSA or Ed25519
}

// Delivery selects the transport.
type Delivery struct {
	Transport   string `yaml:"transport"`    // smtp | file; default smtp
	Outbox      string `yaml:"outbox"`       // for file; default <archive>/outbox
	MaxAttempts int    `yaml:"max_attempts"` // default 5
	// Lease is how long a delivery run's claim on its recipients lasts
	// without renewal (renewed every 2s, or a third of it if shorter): the
	// recipients of a run
	// that was killed are taken over by another run this long after its
	// last renewal. Default 30s.
	Lease time.Duration `yaml:"lease"`
	// RetryFor is how long a reader's own temporary failures (greylisting,
	// a full mailbox) are retried, max_attempts in all at growing
	// intervals, across runs; the reader is failed after that. Default 48h.
	RetryFor time.Duration `yaml:"retry_for"`
	// OutageWait is how long a one-shot send waits for a relay that is
	// down (or a sending cap) before it exits with everyone still pending.
	// The daemon waits as long as it takes. Default 10m.
	OutageWait time.Duration `yaml:"outage_wait"`
	// PauseOnBounceRate pauses a delivery once more than this share of
	// the messages done (after the first 500) failed or came back as hard
	// bounces: a list that burns the sender's reputation. Default 0.1
	// (10%); 0 turns the check off.
	PauseOnBounceRate float64 `yaml:"pause_on_bounce_rate"`
}

// Server is the HTTP listener of `digest serve` and the daemon.
type Server struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:8080
	// ClientIPHeader names the header a reverse proxy puts the client's
	// address in (X-Forwarded-For, X-Real-IP), for the per-client rate
	// limits; empty means the connection's own address.
	ClientIPHeader string `yaml:"client_ip_header"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error; default info
	Format string `yaml:"format"` // auto | text | json; default auto: text on a terminal, JSON otherwise
}
