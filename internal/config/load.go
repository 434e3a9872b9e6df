package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Names of the environment variables that override secrets from the file.
const (
	EnvSMTPPassword = "DIGEST_SMTP_PASSWORD"
	EnvSecret       = "DIGEST_SECRET"
)

// Load reads the YAML file at path and returns the validated configuration.
//
// Keys are decoded strictly: every unknown key, mistyped value and duplicate
// key is reported with its line, together with everything Validate finds.
// Keys starting with "x-" are ignored, so they can hold YAML anchors that
// other keys merge ("<<: *common"). Durations take Go syntax ("168h",
// "20s") or a day count ("7d", "1d12h").
// Defaults fill the keys left out; the non-empty values of
// DIGEST_SMTP_PASSWORD and DIGEST_SECRET (looked up with getenv; nil means
// no environment) replace smtp.password and secret; relative paths are
// resolved against the directory of path.
//
// Every error wraps ErrInvalid and its message starts with path
// ("config.yaml:7: newsletter.nmae: unknown key (did you mean "name"?)");
// a file that cannot be read also wraps the cause (e.g. fs.ErrNotExist).
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, invalidError{problem{file: path, msg: "cannot read", err: err}}
	}
	cfg, lines, problems, ok := parse(path, data)
	if !ok {
		return nil, joinProblems(problems)
	}

	if getenv != nil {
		if v := getenv(EnvSMTPPassword); v != "" {
			cfg.SMTP.Password = v
		}
		if v := getenv(EnvSecret); v != "" {
			cfg.Secret = v
		}
		cfg.Bounces.fromEnv(getenv)
	}
	cfg.applyDefaults()

	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, invalidError{problem{file: path, msg: "cannot resolve directory", err: err}}
	}
	cfg.resolvePaths(dir)
	cfg.Path = path

	problems = append(problems, cfg.validate(lines)...)
	if err := joinProblems(problems); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// yamlLineErr matches the "yaml: line N: msg" errors of yaml.v3.
var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse decodes data over Default(). It returns the configuration, the line
// of every dotted key that appears in the file, and the problems found;
// ok is false when the file is not YAML at all.
func parse(file string, data []byte) (cfg Config, lines map[string]int, problems []error, ok bool) {
	cfg = Default()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		p := problem{file: file, msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil {
			fmt.Sscan(m[1], &p.line)
			p.msg = m[2]
		}
		return cfg, nil, []error{p}, false
	}
	d := &decoder{file: file, lines: map[string]int{}}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return cfg, d.lines, nil, true
		}
		root = root.Content[0]
	}
	if root.Kind == 0 {
		return cfg, d.lines, nil, true // empty file: everything from defaults
	}
	d.decode(root, addressable(&cfg), "")
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.addf(extra.Line, "", "only one YAML document is allowed")
	}
	return cfg, d.lines, d.problems, true
}

// resolvePaths makes the relative paths of the file relative to dir.
func (c *Config) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.Templates)
	abs(&c.Archive)
	if !c.DatabaseIsPostgres() && !isSQLiteURI(c.Database) {
		abs(&c.Database)
	}
	abs(&c.SubscribersCSV)
	abs(&c.Digest.Intro)
	abs(&c.DKIM.PrivateKeyFile)
	abs(&c.MetricsFile)
	abs(&c.Delivery.Outbox)
	for i := range c.Sources {
		abs(&c.Sources[i].Path)
	}
}

// isSQLiteURI reports database values that name no plain file: SQLite URIs
// ("file:…") and the in-memory database; they are left as written.
func isSQLiteURI(db string) bool {
	return strings.HasPrefix(db, "file:") || db == ":memory:"
}

// DatabaseIsPostgres reports whether database is a Postgres URL
// (postgres:// or postgresql://) rather than a SQLite file.
func (c Config) DatabaseIsPostgres() bool {
	db := strings.ToLower(c.Database)
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}
