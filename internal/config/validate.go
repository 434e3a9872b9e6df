package config

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // newsletter.timezone must load on hosts without a zoneinfo database
	"unicode"

	"github.com/digest/digest/internal/schedule"
)

// Validate checks the whole configuration and returns every problem, joined
// with errors.Join, one per line, each naming the dotted key at fault
// ("config.yaml: sources[2].url: …"). The error wraps ErrInvalid; nil means
// valid. secret may be empty (the store then generates one).
func (c *Config) Validate() error {
	return joinProblems(c.validate(nil))
}

// validator collects problems; lines (from Load, may be nil) gives the line
// of a key, or of its nearest ancestor present in the file.
type validator struct {
	file     string
	lines    map[string]int
	problems []error
}

func (v *validator) line(key string) int {
	for key != "" {
		if l, ok := v.lines[key]; ok {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

func (v *validator) addf(key, format string, args ...any) {
	v.problems = append(v.problems, problem{file: v.file, line: v.line(key), key: key, msg: fmt.Sprintf(format, args...)})
}

func (v *validator) wrap(key, msg string, err error) {
	v.problems = append(v.problems, problem{file: v.file, line: v.line(key), key: key, msg: msg, err: err})
}

// oneOf checks that val is one of allowed.
func (v *validator) oneOf(key, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.addf(key, "%q is not one of %s", val, strings.Join(allowed, ", "))
}

// httpURL checks that raw is an absolute http or https URL.
func (v *validator) httpURL(key, raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		v.wrap(key, fmt.Sprintf("%q is not a URL", raw), err)
		return
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.addf(key, "%q is not an absolute http or https URL", raw)
	}
}

func (c *Config) validate(lines map[string]int) []error {
	file := c.Path
	if file == "" {
		file = "config"
	}
	v := &validator{file: file, lines: lines}

	n := c.Newsletter
	if strings.TrimSpace(n.Name) == "" {
		v.addf("newsletter.name", "required")
	}
	if n.From == "" {
		v.addf("newsletter.from", "required (e.g. \"Weekly <news@example.org>\")")
	} else if _, err := mail.ParseAddress(n.From); err != nil {
		v.wrap("newsletter.from", fmt.Sprintf("%q is not an email address", n.From), err)
	}
	if n.ReplyTo != "" {
		if _, err := mail.ParseAddress(n.ReplyTo); err != nil {
			v.wrap("newsletter.reply_to", fmt.Sprintf("%q is not an email address", n.ReplyTo), err)
		}
	}
	if n.BaseURL == "" {
		v.addf("newsletter.base_url", "required (the public URL of the web endpoints, e.g. \"https://news.example.org\")")
	} else {
		v.httpURL("newsletter.base_url", n.BaseURL)
	}
	if n.ArchiveURL != "" {
		v.httpURL("newsletter.archive_url", n.ArchiveURL)
	}
	if _, err := time.LoadLocation(n.Timezone); err != nil {
		v.wrap("newsletter.timezone", fmt.Sprintf("%q is not a known IANA time zone", n.Timezone), err)
	}
	if n.Language != "" && !languageTag.MatchString(n.Language) {
		v.addf("newsletter.language", "%q is not a language tag (e.g. en, fr, pt-BR)", n.Language)
	}

	if c.Digest.Window <= 0 {
		v.addf("digest.window", "must be positive, got %s", c.Digest.Window)
	}
	if c.Digest.MaxArticles < 1 {
		v.addf("digest.max_articles", "must be at least 1, got %d", c.Digest.MaxArticles)
	}
	if c.Digest.TeaserLength < 20 {
		v.addf("digest.teaser_length", "must be at least 20 characters, got %d", c.Digest.TeaserLength)
	}

	c.validateSources(v)

	if c.Archive == "" {
		v.addf("archive", "required (a directory for built issues)")
	}
	if c.Database == "" {
		v.addf("database", "required (a SQLite file or a postgres:// URL)")
	}

	s := c.SMTP
	v.oneOf("smtp.tls", s.TLS, "none", "starttls", "tls")
	if s.Port < 1 || s.Port > 65535 {
		v.addf("smtp.port", "must be between 1 and 65535, got %d", s.Port)
	}
	if s.Connections < 1 || s.Connections > 100 {
		v.addf("smtp.connections", "must be between 1 and 100, got %d", s.Connections)
	}
	if s.Rate < 0 || math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) {
		v.addf("smtp.rate", "must be 0 (unlimited) or a positive number of messages per second, got %v", s.Rate)
	}
	if s.Timeout <= 0 {
		v.addf("smtp.timeout", "must be positive, got %s", s.Timeout)
	}
	if s.DataTimeout <= 0 {
		v.addf("smtp.data_timeout", "must be positive, got %s", s.DataTimeout)
	}
	v.oneOf("smtp.auth", s.Auth, "auto", "plain", "login", "cram-md5")
	if s.EnvelopeFrom != "" {
		if _, err := mail.ParseAddress(s.EnvelopeFrom); err != nil {
			v.addf("smtp.envelope_from", "%q is not an email address", s.EnvelopeFrom)
		}
	}
	if s.PerHour < 0 {
		v.addf("smtp.per_hour", "must be 0 (no cap) or positive, got %d", s.PerHour)
	}
	if s.PerDay < 0 {
		v.addf("smtp.per_day", "must be 0 (no cap) or positive, got %d", s.PerDay)
	}
	if d := c.DKIM; d != (DKIM{}) {
		if d.Domain == "" {
			v.addf("dkim.domain", "required when dkim is set")
		}
		if d.Selector == "" {
			v.addf("dkim.selector", "required when dkim is set")
		}
		if d.PrivateKeyFile == "" {
			v.addf("dkim.private_key_file", "required when dkim is set (a PEM file with an RSA or Ed25519 key)")
		}
	}
	if c.Delivery.Transport == "smtp" && strings.TrimSpace(s.Host) == "" {
		v.addf("smtp.host", "required when delivery.transport is smtp")
	}

	v.oneOf("delivery.transport", c.Delivery.Transport, "smtp", "file")
	if c.Delivery.Transport == "file" && c.Delivery.Outbox == "" {
		v.addf("delivery.outbox", "required when delivery.transport is file")
	}
	if c.Delivery.Lease < time.Second {
		v.addf("delivery.lease", "must be at least 1s, got %s", c.Delivery.Lease)
	}
	if c.Delivery.MaxAttempts < 1 {
		v.addf("delivery.max_attempts", "must be at least 1, got %d", c.Delivery.MaxAttempts)
	}
	if c.Delivery.RetryFor < time.Minute {
		v.addf("delivery.retry_for", "must be at least 1m, got %s", c.Delivery.RetryFor)
	}
	if c.Delivery.OutageWait < 0 {
		v.addf("delivery.outage_wait", "must not be negative, got %s", c.Delivery.OutageWait)
	}

	if _, err := c.ParseSchedule(); err != nil {
		v.wrap("schedule", fmt.Sprintf("%q is not a cron schedule (e.g. \"0 8 * * MON\" or \"@weekly\")", c.Schedule), err)
	}
	if c.ScheduleGrace < time.Minute {
		v.addf("schedule_grace", "must be at least 1m (a run never starts at the exact second), got %s", c.ScheduleGrace)
	}
	if c.ShutdownTimeout <= 0 {
		v.addf("shutdown_timeout", "must be positive, got %s", c.ShutdownTimeout)
	}

	c.validateBounces(v)
	if err := checkListen(c.Server.Listen); err != nil {
		v.wrap("server.listen", fmt.Sprintf("%q is not host:port", c.Server.Listen), err)
	}
	if h := c.Server.ClientIPHeader; h != "" && !validHeaderName(h) {
		v.addf("server.client_ip_header", "%q is not a header name (e.g. X-Forwarded-For or X-Real-IP)", h)
	}

	v.oneOf("log.level", strings.ToLower(c.Log.Level), "debug", "info", "warn", "error")
	if c.Log.Format != "" {
		v.oneOf("log.format", c.Log.Format, "auto", "text", "json")
	}
	return v.problems
}

func (c *Config) validateSources(v *validator) {
	if len(c.Sources) == 0 {
		v.addf("sources", "at least one source is required")
		return
	}
	first := map[string]int{} // name → index of its first use
	for i, s := range c.Sources {
		key := func(k string) string { return fmt.Sprintf("sources[%d].%s", i, k) }
		if strings.TrimSpace(s.Name) == "" {
			v.addf(key("name"), "required")
		} else if j, dup := first[s.Name]; dup {
			v.addf(key("name"), "%q is already the name of sources[%d]", s.Name, j)
		} else {
			first[s.Name] = i
		}
		switch s.Type {
		case "feed":
			switch {
			case s.URL != "" && s.Path != "":
				v.addf(key("url"), "a feed takes url or path, not both")
			case s.URL == "" && s.Path == "":
				v.addf(key("url"), "a feed needs url (or path for a local file)")
			case s.URL != "":
				v.httpURL(key("url"), s.URL)
			}
		case "markdown":
			if s.Path == "" {
				v.addf(key("path"), "required for type markdown (a directory of .md files)")
			}
		case "page":
			switch {
			case s.URL != "" && s.Path != "":
				v.addf(key("url"), "a page takes url or path, not both")
			case s.URL == "" && s.Path == "":
				v.addf(key("url"), "required for type page (or path for a saved HTML file)")
			case s.URL != "":
				v.httpURL(key("url"), s.URL)
			}
			if s.Selectors.Item == "" {
				v.addf(key("selectors.item"), "required for type page (the CSS selector of one article)")
			}
		case "":
			v.addf(key("type"), "required (feed, markdown or page)")
		default:
			v.addf(key("type"), "%q is not one of feed, markdown, page", s.Type)
		}
		if s.Timeout <= 0 {
			v.addf(key("timeout"), "must be positive, got %s", s.Timeout)
		}
		validateSourceRules(v, key, s)
		for j, t := range s.Topics {
			tk := fmt.Sprintf("sources[%d].topics[%d]", i, j)
			switch {
			case strings.TrimSpace(t) == "":
				v.addf(tk, "empty topic")
			case strings.ContainsAny(t, ",;"):
				v.addf(tk, "%q: a topic cannot contain ',' or ';'", t)
			case strings.IndexFunc(t, unicode.IsControl) >= 0:
				v.addf(tk, "%q: a topic cannot contain control characters", t)
			}
		}
	}
}

// Topic is one topic readers can choose.
type Topic struct {
	Key   string // as stored with subscribers: trimmed, lower case
	Label string // as first written in the file
}

// Topics returns the topics of all sources, each once, in the order they
// first appear.
func (c Config) Topics() []Topic {
	var out []Topic
	seen := map[string]bool{}
	for _, s := range c.Sources {
		for _, t := range s.Topics {
			label := strings.TrimSpace(t)
			key := strings.ToLower(label)
			if key == "" || seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, Topic{Key: key, Label: label})
		}
	}
	return out
}

// languageTag is the shape of a BCP 47 tag: a language and subtags.
var languageTag = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)

// ParseSchedule parses schedule in newsletter.timezone (UTC when that zone
// is not valid; Validate reports it).
func (c *Config) ParseSchedule() (*schedule.Schedule, error) {
	return schedule.Parse(c.Schedule, c.Location())
}

// Frequency is how often schedule fires, which sets the form of issue ids
// (schedule.IssueID); Daily when the schedule does not parse (Validate
// reports it).
func (c *Config) Frequency() schedule.Frequency {
	s, err := c.ParseSchedule()
	if err != nil {
		return schedule.Daily
	}
	return s.Frequency()
}

// checkListen accepts "host:port" and ":port"; port 0 picks a free port.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q is not a number between 0 and 65535", port)
	}
	return nil
}

// validHeaderName reports whether s is an HTTP header field name (RFC 9110
// token).
func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

// Location returns the time zone of newsletter.timezone; after a successful
// Validate it never fails (a bad zone falls back to UTC).
func (c Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.Newsletter.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Redacted returns a copy fit for logs and "config show": smtp.password and
// secret are replaced with "***" when set.
func (c Config) Redacted() Config {
	if c.SMTP.Password != "" {
		c.SMTP.Password = "***"
	}
	if c.Secret != "" {
		c.Secret = "***"
	}
	c.Sources = append([]Source(nil), c.Sources...)
	c.Bounces.redact()
	return c
}

// SlogLevel returns the slog level of log.level ("info" when it is not valid).
func (l Log) SlogLevel() slog.Level {
	switch strings.ToLower(l.Level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
