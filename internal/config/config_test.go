package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testdataDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadFull(t *testing.T) {
	td := testdataDir(t)
	got, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Config{
		Newsletter: Newsletter{
			Name:                "Weekly Digest",
			From:                "Weekly Digest <news@example.org>",
			ReplyTo:             "editor@example.org",
			BaseURL:             "https://news.example.org",
			Timezone:            "Europe/Paris",
			Footer:              "Example Org, 1 Main St",
			ArchiveURL:          "https://news.example.org/archive/",
			DoubleOptIn:         false,
			AllowDotlessDomains: true,
		},
		Digest: Digest{Window: 7 * 24 * time.Hour, MaxArticles: 12, TeaserLength: 140},
		Sources: []Source{
			{Name: "World", Type: "feed", URL: "https://example.org/rss.xml", Section: "News", Timeout: 5 * time.Second,
				Topics: []string{"News", "Politics"}},
			{Name: "Notes", Type: "markdown", Path: filepath.Join(td, "content/notes"), Section: "Notes", Timeout: 20 * time.Second,
				Topics: []string{"Notes"}},
			{Name: "About", Type: "page", URL: "http://example.org/about", Section: "About", Timeout: 20 * time.Second,
				Selectors: Selectors{Item: ".related article", Teaser: "p"}, FetchTeasers: true, Topics: []string{"About"}},
		},
		Templates:      "/srv/digest/templates",
		Archive:        "/srv/digest/archive",
		Database:       "postgres://digest@db.example.org/digest?sslmode=require",
		SubscribersCSV: filepath.Join(td, "subscribers.csv"),
		SMTP: SMTP{
			Host: "smtp.example.org", Port: 2525, Username: "mailer", Password: "from-file",
			TLS: "tls", Connections: 8, Rate: 12.5, Timeout: time.Minute, InsecureSkipVerify: true, DataTimeout: 10 * time.Minute, Auth: "auto",
			HELO: "mx.example.org",
		},
		Delivery: Delivery{Transport: "file", Outbox: "/srv/digest/outbox", MaxAttempts: 3, Lease: 30 * time.Second,
			RetryFor: 48 * time.Hour, OutageWait: 10 * time.Minute, PauseOnBounceRate: 0.1},
		Schedule:        "@weekly",
		ScheduleGrace:   2 * time.Hour,
		ShutdownTimeout: 30 * time.Second,
		Server:          Server{Listen: ":9090", ClientIPHeader: "X-Forwarded-For"},
		Secret:          "file-secret",
		Log:             Log{Level: "debug", Format: "json"},
		Path:            "testdata/full.yaml",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", diff)
	}
	if !got.DatabaseIsPostgres() {
		t.Error("DatabaseIsPostgres() = false for a postgres:// URL")
	}
	if loc := got.Location(); loc.String() != "Europe/Paris" {
		t.Errorf("Location() = %v, want Europe/Paris", loc)
	}
}

func TestLoadDefaults(t *testing.T) {
	td := testdataDir(t)
	got, err := Load("testdata/minimal.yaml", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"newsletter.timezone", got.Newsletter.Timezone, "UTC"},
		{"digest.window", got.Digest.Window, 168 * time.Hour},
		{"digest.max_articles", got.Digest.MaxArticles, 30},
		{"digest.teaser_length", got.Digest.TeaserLength, 280},
		{"templates", got.Templates, filepath.Join(td, "templates")},
		{"archive", got.Archive, filepath.Join(td, "digests")},
		{"database", got.Database, filepath.Join(td, "digests/digest.db")},
		{"subscribers_csv", got.SubscribersCSV, ""},
		{"smtp.tls", got.SMTP.TLS, "starttls"},
		{"smtp.port", got.SMTP.Port, 587},
		{"smtp.connections", got.SMTP.Connections, 4},
		{"smtp.timeout", got.SMTP.Timeout, 30 * time.Second},
		{"smtp.rate", got.SMTP.Rate, 0.0},
		{"delivery.transport", got.Delivery.Transport, "smtp"},
		{"delivery.outbox", got.Delivery.Outbox, filepath.Join(td, "digests/outbox")},
		{"delivery.max_attempts", got.Delivery.MaxAttempts, 5},
		{"schedule", got.Schedule, "0 8 * * MON"},
		{"server.listen", got.Server.Listen, "127.0.0.1:8080"},
		{"log.level", got.Log.Level, "info"},
		{"log.format", got.Log.Format, "auto"},
		{"schedule_grace", got.ScheduleGrace, 12 * time.Hour},
		{"shutdown_timeout", got.ShutdownTimeout, 10 * time.Second},
		{"sources[0].section", got.Sources[0].Section, "World"},
		{"sources[0].timeout", got.Sources[0].Timeout, 20 * time.Second},
		{"secret", got.Secret, ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#v, want %#v", c.key, c.got, c.want)
		}
	}
	if got.DatabaseIsPostgres() {
		t.Error("DatabaseIsPostgres() = true for a SQLite file")
	}
	if got.Location() != time.UTC {
		t.Errorf("Location() = %v, want UTC", got.Location())
	}
}

func TestSMTPPortDefaultFollowsTLS(t *testing.T) {
	for tls, want := range map[string]int{"starttls": 587, "tls": 465, "none": 25} {
		t.Run(tls, func(t *testing.T) {
			c := Default()
			c.SMTP.TLS = tls
			c.applyDefaults()
			if c.SMTP.Port != want {
				t.Errorf("port = %d, want %d", c.SMTP.Port, want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		file string
		want []string // substrings, each expected in the message
		n    int      // expected number of problems (lines), 0 = don't check
	}{
		{
			file: "unknown_keys.yaml",
			want: []string{
				`testdata/unknown_keys.yaml:7: smtp.prot: unknown key (did you mean "port"?)`,
				`testdata/unknown_keys.yaml:8: smtp.nmae: unknown key (known keys: host, port,`,
				`testdata/unknown_keys.yaml:12: sources[0].urll: unknown key (did you mean "url"?)`,
				`testdata/unknown_keys.yaml:14: sever: unknown key (did you mean "server"?)`,
				`testdata/unknown_keys.yaml:16: frobnicate: unknown key (known keys: newsletter, digest,`,
				`testdata/unknown_keys.yaml:18: digest.max-articles: unknown key (did you mean "max_articles"?)`,
			},
			n: 6,
		},
		{
			file: "type_errors.yaml",
			want: []string{
				`testdata/type_errors.yaml:6: digest.window: "soon" is not a duration`,
				`testdata/type_errors.yaml:7: digest.max_articles: expected an integer, got "many"`,
				`testdata/type_errors.yaml:12: sources[0].timeout: expected a duration such as "168h", got a list`,
				`testdata/type_errors.yaml:15: smtp.port: expected an integer, got "abc"`,
				`testdata/type_errors.yaml:16: smtp.rate: expected a number, got "fast"`,
				`testdata/type_errors.yaml:17: smtp.insecure_skip_verify: expected true or false, got "maybe"`,
				`testdata/type_errors.yaml:18: server: expected a mapping, got "127.0.0.1:8080"`,
			},
			n: 7,
		},
		{
			file: "duplicate.yaml",
			want: []string{`testdata/duplicate.yaml:5: newsletter.name: duplicate key (first at line 2)`},
			n:    1,
		},
		{
			file: "syntax.yaml",
			want: []string{`testdata/syntax.yaml:3: mapping values are not allowed`},
			n:    1,
		},
		{
			file: "empty.yaml",
			want: []string{
				"testdata/empty.yaml: newsletter.name: required",
				"testdata/empty.yaml: newsletter.from: required",
				"testdata/empty.yaml: newsletter.base_url: required",
				"testdata/empty.yaml: sources: at least one",
				"testdata/empty.yaml: smtp.host: required when delivery.transport is smtp",
			},
			n: 5,
		},
		{
			file: "invalid_all.yaml",
			want: []string{
				"testdata/invalid_all.yaml:1: newsletter.name: required",
				`testdata/invalid_all.yaml:2: newsletter.from: "not an address" is not an email address`,
				`testdata/invalid_all.yaml:3: newsletter.base_url: "/relative" is not an absolute http or https URL`,
				`testdata/invalid_all.yaml:4: newsletter.timezone: "Mars/Olympus" is not a known IANA time zone`,
				"testdata/invalid_all.yaml:6: digest.window: must be positive",
				"testdata/invalid_all.yaml:7: digest.max_articles: must be at least 1",
				"testdata/invalid_all.yaml:8: digest.teaser_length: must be at least 20",
				"testdata/invalid_all.yaml:10: sources[0].url: a feed needs url",
				`testdata/invalid_all.yaml:12: sources[1].name: "A" is already the name of sources[0]`,
				"testdata/invalid_all.yaml:12: sources[1].path: required for type markdown",
				"testdata/invalid_all.yaml:14: sources[2].name: required",
				`testdata/invalid_all.yaml:15: sources[2].url: "ftp://example.org/x" is not an absolute http or https URL`,
				"testdata/invalid_all.yaml:14: sources[2].selectors.item: required for type page",
				`testdata/invalid_all.yaml:17: sources[3].type: "video" is not one of feed, markdown, page`,
				`testdata/invalid_all.yaml:19: smtp.tls: "ssl" is not one of none, starttls, tls`,
				"testdata/invalid_all.yaml:20: smtp.port: must be between 1 and 65535, got 70000",
				"testdata/invalid_all.yaml:21: smtp.connections: must be between 1 and 100, got 0",
				"testdata/invalid_all.yaml:22: smtp.rate: must be 0 (unlimited)",
				`testdata/invalid_all.yaml:24: delivery.transport: "carrier-pigeon" is not one of smtp, file`,
				"testdata/invalid_all.yaml:25: delivery.max_attempts: must be at least 1",
				`testdata/invalid_all.yaml:26: schedule: "TZ=UTC" is not a cron schedule`,
				`testdata/invalid_all.yaml:28: server.listen: "localhost" is not host:port`,
				`testdata/invalid_all.yaml:30: log.level: "loud" is not one of debug, info, warn, error`,
				`testdata/invalid_all.yaml:31: log.format: "xml" is not one of auto, text, json`,
				"testdata/invalid_all.yaml:32: schedule_grace: must be at least 1m",
				"testdata/invalid_all.yaml:33: shutdown_timeout: must be positive",
			},
			n: 26,
		},
		{
			file: "missing.yaml",
			want: []string{"testdata/missing.yaml: cannot read: no such file"},
			n:    1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := Load("testdata/"+tt.file, nil)
			if err == nil {
				t.Fatalf("Load succeeded, want an error; got %+v", cfg)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "testdata/"+tt.file) {
				t.Errorf("message does not start with the file name:\n%s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q; got:\n%s", w, msg)
				}
			}
			lines := strings.Split(msg, "\n")
			if tt.n > 0 && len(lines) != tt.n {
				t.Errorf("got %d problems, want %d:\n%s", len(lines), tt.n, msg)
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, "testdata/"+tt.file+":") {
					t.Errorf("problem line does not start with the file name: %q", l)
				}
			}
		})
	}
}

func TestLoadMissingFileIsNotExist(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v; want both fs.ErrNotExist and ErrInvalid", err)
	}
}

func TestLoadEnv(t *testing.T) {
	tests := []struct {
		name         string
		file         string
		env          map[string]string
		pass, secret string
	}{
		{"file values kept without env", "full.yaml", nil, "from-file", "file-secret"},
		{"env wins over file", "full.yaml",
			map[string]string{"DIGEST_SMTP_PASSWORD": "env-pass", "DIGEST_SECRET": "env-secret"}, "env-pass", "env-secret"},
		{"empty env does not clear", "full.yaml",
			map[string]string{"DIGEST_SMTP_PASSWORD": "", "DIGEST_SECRET": ""}, "from-file", "file-secret"},
		{"env fills unset", "minimal.yaml",
			map[string]string{"DIGEST_SMTP_PASSWORD": "p", "DIGEST_SECRET": "s"}, "p", "s"},
		{"other names ignored", "minimal.yaml",
			map[string]string{"SMTP_PASSWORD": "p", "SECRET": "s"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load("testdata/"+tt.file, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.SMTP.Password != tt.pass || cfg.Secret != tt.secret {
				t.Errorf("password, secret = %q, %q; want %q, %q", cfg.SMTP.Password, cfg.Secret, tt.pass, tt.secret)
			}
		})
	}
}

func TestLoadResolvesPaths(t *testing.T) {
	dir := filepath.Join(testdataDir(t), "nested")
	cfg, err := Load("testdata/nested/paths.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ key, got, want string }{
		{"templates", cfg.Templates, filepath.Join(dir, "tpl")},
		{"archive", cfg.Archive, filepath.Join(dir, "out")},
		{"database", cfg.Database, filepath.Join(dir, "digests/digest.db")},
		{"subscribers_csv", cfg.SubscribersCSV, filepath.Join(dir, "people.csv")},
		{"delivery.outbox", cfg.Delivery.Outbox, filepath.Join(dir, "out/outbox")},
		{"sources[0].path", cfg.Sources[0].Path, filepath.Join(dir, "content/notes")},
		{"sources[1].path", cfg.Sources[1].Path, "/abs/notes"},
		{"sources[2].path", cfg.Sources[2].Path, filepath.Join(testdataDir(t), "feeds/local.xml")},
		{"path", cfg.Path, "testdata/nested/paths.yaml"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.key, c.got, c.want)
		}
	}
	if cfg.SMTP.Port != 25 {
		t.Errorf("smtp.port = %d, want 25 for tls: none", cfg.SMTP.Port)
	}
}

func TestLoadMergeAndExtensionKeys(t *testing.T) {
	cfg, err := Load("testdata/merge.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Sources[0]
	if s.Type != "feed" || s.Timeout != 26*time.Hour || s.Name != "World" {
		t.Errorf("merged source = %+v", s)
	}
}

func TestParseHostileAliases(t *testing.T) {
	laughs, err := os.ReadFile("testdata/laughs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, yaml, want string }{
		{"merge of itself", "newsletter: &a\n  <<: *a\n", "h.yaml:2: newsletter: alias *a refers to a node that contains it"},
		{"list of itself", "sources: &a\n  - *a\n", "sources[0]: expected a mapping, got a list"},
		{"billion laughs", string(laughs), "too many nodes once aliases are expanded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, _, problems, _ := parse("h.yaml", []byte(tt.yaml))
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("parse took %v", d)
			}
			if msg := fmt.Sprint(problems); !strings.Contains(msg, tt.want) {
				t.Errorf("problems = %s; want %q", msg, tt.want)
			}
		})
	}
}

// valid returns a configuration that passes Validate.
func valid() Config {
	c := Default()
	c.Newsletter.Name = "Digest"
	c.Newsletter.From = "Digest <news@example.org>"
	c.Newsletter.BaseURL = "https://news.example.org"
	c.Sources = []Source{{Name: "World", Type: "feed", URL: "https://example.org/rss.xml"}}
	c.SMTP.Host = "smtp.example.org"
	c.applyDefaults()
	return c
}

func TestValidateRules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		key    string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"bare from", func(c *Config) { c.Newsletter.From = "news@example.org" }, ""},
		{"no secret is fine", func(c *Config) { c.Secret = "" }, ""},
		{"file transport needs no smtp host", func(c *Config) { c.SMTP.Host = ""; c.Delivery.Transport = "file" }, ""},
		{"feed from path", func(c *Config) { c.Sources[0].URL = ""; c.Sources[0].Path = "/f.xml" }, ""},
		{"schedule descriptor", func(c *Config) { c.Schedule = "@every 1h" }, ""},
		{"schedule CRON_TZ", func(c *Config) { c.Schedule = "CRON_TZ=Europe/Paris 0 8 * * MON" }, ""},
		{"listen any port", func(c *Config) { c.Server.Listen = ":0" }, ""},
		{"log level upper case", func(c *Config) { c.Log.Level = "WARN" }, ""},
		{"log format empty is auto", func(c *Config) { c.Log.Format = "" }, ""},
		{"log format text", func(c *Config) { c.Log.Format = "text" }, ""},
		{"schedule every", func(c *Config) { c.Schedule = "@every 2s" }, ""},
		{"rate positive", func(c *Config) { c.SMTP.Rate = 2.5 }, ""},

		{"name required", func(c *Config) { c.Newsletter.Name = " " }, "newsletter.name"},
		{"from required", func(c *Config) { c.Newsletter.From = "" }, "newsletter.from"},
		{"from unparseable", func(c *Config) { c.Newsletter.From = "Digest <news>" }, "newsletter.from"},
		{"reply_to unparseable", func(c *Config) { c.Newsletter.ReplyTo = "nobody" }, "newsletter.reply_to"},
		{"base_url required", func(c *Config) { c.Newsletter.BaseURL = "" }, "newsletter.base_url"},
		{"base_url relative", func(c *Config) { c.Newsletter.BaseURL = "news.example.org" }, "newsletter.base_url"},
		{"base_url scheme", func(c *Config) { c.Newsletter.BaseURL = "ftp://news.example.org" }, "newsletter.base_url"},
		{"base_url broken", func(c *Config) { c.Newsletter.BaseURL = "http://[::1" }, "newsletter.base_url"},
		{"archive_url", func(c *Config) { c.Newsletter.ArchiveURL = "/archive" }, "newsletter.archive_url"},
		{"timezone", func(c *Config) { c.Newsletter.Timezone = "Europe/Nowhere" }, "newsletter.timezone"},
		{"language", func(c *Config) { c.Newsletter.Language = "fr_FR" }, "newsletter.language"},
		{"window zero", func(c *Config) { c.Digest.Window = 0 }, "digest.window"},
		{"window negative", func(c *Config) { c.Digest.Window = -time.Hour }, "digest.window"},
		{"max_articles", func(c *Config) { c.Digest.MaxArticles = 0 }, "digest.max_articles"},
		{"teaser_length", func(c *Config) { c.Digest.TeaserLength = 19 }, "digest.teaser_length"},
		{"no sources", func(c *Config) { c.Sources = nil }, "sources"},
		{"source name", func(c *Config) { c.Sources[0].Name = "" }, "sources[0].name"},
		{"source name unique", func(c *Config) {
			c.Sources = append(c.Sources, Source{Name: "World", Type: "markdown", Path: "n", Timeout: time.Second})
		}, "sources[1].name"},
		{"source type missing", func(c *Config) { c.Sources[0].Type = "" }, "sources[0].type"},
		{"source type unknown", func(c *Config) { c.Sources[0].Type = "rss" }, "sources[0].type"},
		{"feed url and path", func(c *Config) { c.Sources[0].Path = "f.xml" }, "sources[0].url"},
		{"feed neither", func(c *Config) { c.Sources[0].URL = "" }, "sources[0].url"},
		{"feed url scheme", func(c *Config) { c.Sources[0].URL = "file:///etc/passwd" }, "sources[0].url"},
		{"markdown path", func(c *Config) { c.Sources[0].Type = "markdown"; c.Sources[0].URL = "" }, "sources[0].path"},
		{"page url", func(c *Config) { c.Sources[0].Type = "page"; c.Sources[0].URL = ""; c.Sources[0].Selectors.Item = "li" }, "sources[0].url"},
		{"page url relative", func(c *Config) {
			c.Sources[0].Type = "page"
			c.Sources[0].URL = "/about"
			c.Sources[0].Selectors.Item = "li"
		}, "sources[0].url"},
		{"smtp data_timeout", func(c *Config) { c.SMTP.DataTimeout = -time.Second }, "smtp.data_timeout"},
		{"smtp auth", func(c *Config) { c.SMTP.Auth = "kerberos" }, "smtp.auth"},
		{"smtp envelope_from", func(c *Config) { c.SMTP.EnvelopeFrom = "bounces at example" }, "smtp.envelope_from"},
		{"smtp helo", func(c *Config) { c.SMTP.HELO = "mx example" }, "smtp.helo"},
		{"smtp per_hour", func(c *Config) { c.SMTP.PerHour = -1 }, "smtp.per_hour"},
		{"smtp per_day", func(c *Config) { c.SMTP.PerDay = -5 }, "smtp.per_day"},
		{"dkim without key", func(c *Config) { c.DKIM = DKIM{Domain: "example.org", Selector: "s1"} }, "dkim.private_key_file"},
		{"dkim without selector", func(c *Config) { c.DKIM = DKIM{Domain: "example.org", PrivateKeyFile: "/k.pem"} }, "dkim.selector"},
		{"page item selector", func(c *Config) { c.Sources[0].Type = "page"; c.Sources[0].URL = "https://example.org/" }, "sources[0].selectors.item"},
		{"source timeout", func(c *Config) { c.Sources[0].Timeout = -time.Second }, "sources[0].timeout"},
		{"archive empty", func(c *Config) { c.Archive = "" }, "archive"},
		{"database empty", func(c *Config) { c.Database = "" }, "database"},
		{"smtp tls", func(c *Config) { c.SMTP.TLS = "STARTTLS" }, "smtp.tls"},
		{"smtp port low", func(c *Config) { c.SMTP.Port = 0 }, "smtp.port"},
		{"smtp port high", func(c *Config) { c.SMTP.Port = 65536 }, "smtp.port"},
		{"smtp connections low", func(c *Config) { c.SMTP.Connections = 0 }, "smtp.connections"},
		{"smtp connections high", func(c *Config) { c.SMTP.Connections = 101 }, "smtp.connections"},
		{"smtp rate", func(c *Config) { c.SMTP.Rate = -0.5 }, "smtp.rate"},
		{"smtp timeout", func(c *Config) { c.SMTP.Timeout = 0 }, "smtp.timeout"},
		{"smtp host", func(c *Config) { c.SMTP.Host = "" }, "smtp.host"},
		{"transport", func(c *Config) { c.Delivery.Transport = "sendmail" }, "delivery.transport"},
		{"outbox for file", func(c *Config) { c.Delivery.Transport = "file"; c.Delivery.Outbox = "" }, "delivery.outbox"},
		{"max_attempts", func(c *Config) { c.Delivery.MaxAttempts = 0 }, "delivery.max_attempts"},
		{"schedule empty", func(c *Config) { c.Schedule = "" }, "schedule"},
		{"schedule fields", func(c *Config) { c.Schedule = "0 8 * *" }, "schedule"},
		{"schedule seconds", func(c *Config) { c.Schedule = "0 0 8 * * MON" }, "schedule"},
		{"schedule TZ panic", func(c *Config) { c.Schedule = "TZ=UTC" }, "schedule"},
		{"schedule TZ tab", func(c *Config) { c.Schedule = "TZ=UTC\t0 8 * * MON" }, "schedule"},
		{"schedule bad zone", func(c *Config) { c.Schedule = "CRON_TZ=Mars/Base 0 8 * * MON" }, "schedule"},
		{"schedule never", func(c *Config) { c.Schedule = "0 8 30 2 *" }, "schedule"},
		{"schedule every too short", func(c *Config) { c.Schedule = "@every 100ms" }, "schedule"},
		{"schedule_grace", func(c *Config) { c.ScheduleGrace = 0 }, "schedule_grace"},
		{"shutdown_timeout", func(c *Config) { c.ShutdownTimeout = -time.Second }, "shutdown_timeout"},
		{"listen no port", func(c *Config) { c.Server.Listen = "127.0.0.1" }, "server.listen"},
		{"listen bad port", func(c *Config) { c.Server.Listen = "127.0.0.1:http" }, "server.listen"},
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, "log.level"},
		{"log format", func(c *Config) { c.Log.Format = "logfmt" }, "log.format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			c.Path = "my.yaml"
			tt.mutate(&c)
			err := c.Validate()
			if tt.key == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate passed, want a problem at %s", tt.key)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false")
			}
			msg := err.Error()
			if strings.Count(msg, "\n") != 0 {
				t.Errorf("want exactly one problem, got:\n%s", msg)
			}
			if prefix := "my.yaml: " + tt.key + ": "; !strings.HasPrefix(msg, prefix) {
				t.Errorf("message = %q, want prefix %q", msg, prefix)
			}
		})
	}
}

func TestValidateWithoutPath(t *testing.T) {
	c := valid()
	c.Newsletter.Name = ""
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "config: newsletter.name: ") {
		t.Errorf("Validate() = %v", err)
	}
}

func TestRedacted(t *testing.T) {
	c := valid()
	c.SMTP.Password = "hunter2"
	c.Secret = "s3cret"
	r := c.Redacted()
	if r.SMTP.Password != "***" || r.Secret != "***" {
		t.Errorf("Redacted password, secret = %q, %q", r.SMTP.Password, r.Secret)
	}
	if c.SMTP.Password != "hunter2" || c.Secret != "s3cret" {
		t.Error("Redacted changed the original")
	}
	r.Sources[0].Name = "changed"
	if c.Sources[0].Name != "World" {
		t.Error("Redacted shares Sources with the original")
	}
	empty := valid().Redacted()
	if empty.SMTP.Password != "" || empty.Secret != "" {
		t.Errorf("Redacted of unset secrets = %q, %q; want empty", empty.SMTP.Password, empty.Secret)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"168h", 168 * time.Hour, true},
		{"20s", 20 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"0", 0, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"0.5d", 12 * time.Hour, true},
		{"-1d2h", -26 * time.Hour, true},
		{"d", 0, false},
		{"7", 0, false},
		{"soon", 0, false},
		{"1d-2h", 0, false},
		{"1e3d", 0, false},
		{"NaNd", 0, false},
		{"1000000d", 0, false},
		{"7days", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in)
			if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
				t.Errorf("parseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"name", "name", 0},
		{"nmae", "name", 1},
		{"prot", "port", 1},
		{"sever", "server", 1},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestDatabaseIsPostgres(t *testing.T) {
	for db, want := range map[string]bool{
		"postgres://u@h/db":   true,
		"postgresql://u@h/db": true,
		"POSTGRES://u@h/db":   true,
		"digests/digest.db":   false,
		"/var/lib/postgres":   false,
		"file:x.db?mode=ro":   false,
	} {
		if got := (Config{Database: db}).DatabaseIsPostgres(); got != want {
			t.Errorf("DatabaseIsPostgres(%q) = %v, want %v", db, got, want)
		}
	}
}

func TestLogSlogLevel(t *testing.T) {
	for lvl, want := range map[string]string{"debug": "DEBUG", "info": "INFO", "WARN": "WARN", "error": "ERROR", "": "INFO"} {
		if got := (Log{Level: lvl}).SlogLevel().String(); got != want {
			t.Errorf("SlogLevel(%q) = %s, want %s", lvl, got, want)
		}
	}
}

// FuzzParse checks that no input makes the decoder or Validate panic, and
// that every problem names the file.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"full.yaml", "minimal.yaml", "unknown_keys.yaml", "type_errors.yaml", "invalid_all.yaml", "merge.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, lines, problems, ok := parse("f.yaml", data)
		if ok {
			cfg.applyDefaults()
			cfg.Path = "f.yaml"
			problems = append(problems, cfg.validate(lines)...)
		}
		for _, p := range problems {
			if !strings.HasPrefix(p.Error(), "f.yaml") {
				t.Errorf("problem without file name: %q", p)
			}
		}
	})
}

func TestWebKeys(t *testing.T) {
	_, err := Load("testdata/invalid_web.yaml", nil)
	if err == nil {
		t.Fatal("Load succeeded")
	}
	for _, want := range []string{
		`testdata/invalid_web.yaml:5: newsletter.double_opt_in: expected true or false, got "maybe"`,
		`testdata/invalid_web.yaml:10: sources[0].topics[1]: empty topic`,
		`testdata/invalid_web.yaml:10: sources[0].topics[2]: "a,b": a topic cannot contain ',' or ';'`,
		`testdata/invalid_web.yaml:12: server.client_ip_header: "X Forwarded" is not a header name`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	cfg, err := Load("testdata/minimal.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Newsletter.DoubleOptIn || cfg.Newsletter.AllowDotlessDomains || cfg.Server.ClientIPHeader != "" {
		t.Errorf("defaults: double_opt_in %v, allow_dotless_domains %v, client_ip_header %q",
			cfg.Newsletter.DoubleOptIn, cfg.Newsletter.AllowDotlessDomains, cfg.Server.ClientIPHeader)
	}
	full, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Topic{{"news", "News"}, {"politics", "Politics"}, {"notes", "Notes"}, {"about", "About"}}
	if diff := cmp.Diff(want, full.Topics()); diff != "" {
		t.Errorf("Topics (-want +got):\n%s", diff)
	}
}
