// Package cli implements the digest command line: it parses flags, reads the
// configuration and wires the packages together. It is the only package that
// knows the configuration file.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/digest/digest/internal/config"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailed  = 1 // the run failed, or recipients are still pending
	ExitUsage   = 2 // usage or configuration error
	usageHeader = `digest: a newsletter digest generator and mailer

Usage:
  digest build [--now T]                          gather and render the issue; send nothing
  digest send [--now T] [--dry-run] [--to ADDR] [--issue ID] [--worker]
                                                  build if needed, then deliver to every active subscriber;
                                                  while another process delivers it says who and exits 1,
                                                  unless --worker (then it helps, under the same leases)
  digest status [ISSUE]                           delivery counts, failed recipients, who is delivering
  digest archive                                  write the archive folder again from the store
  digest daemon                                   run the schedule (one active per database) and serve HTTP
  digest sources check [--now T]                  fetch every source and report what it yields
  digest preview [--addr A] [--now T] [--token T] the editors' live preview of the next issue in a browser
                                                  (default 127.0.0.1:8080; off loopback it needs --token)
  digest serve                                    serve the readers' pages (unsubscribe, sign-up,
                                                  preferences) on server.listen
  digest subscribers import FILE.csv              add or update subscribers from CSV (header email, and
                                                  optionally name, topics, status, created)
  digest subscribers add EMAIL [--name N] [--topics a,b]
                                                  add (or re-activate) one subscriber
  digest subscribers remove EMAIL [--purge]       unsubscribe one (--purge deletes the record)
  digest subscribers list [--status S]            print subscribers as CSV (S: active, pending,
                                                  unsubscribed, bounced, complained)
  digest subscribers export                       print every subscriber as CSV, for backups and moves
  digest bounces receive [--to RCPT] [FILE]       record one returned message or complaint (stdin: an MTA's
                                                  pipe); exit 75 when the store is unavailable
  digest bounces list [--limit N]                 the latest bounce and complaint events with their reasons

Every command takes --config FILE (default config.yaml), and --help for its flags
(or: digest help COMMAND).
--now T takes an RFC 3339 time and replaces the clock, so an issue is reproducible.
Exit codes: 0 done; 1 the run failed or recipients are still pending; 2 usage or config error.
build and send exit 1 only when every source failed; sources check exits 1 when any
source failed (a source that skipped some bad files is a warning, not a failure).
`
)

// lockedWriter makes one writer safe for concurrent use.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// ErrUsage marks a usage error.
var ErrUsage = errors.New("usage")

// exitError carries an exit code with an error. A nil Err with code 1 means
// the message was already printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// ExitCode maps an error returned by Run to the process exit code.
func ExitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, ErrUsage), errors.Is(err, config.ErrInvalid):
		return ExitUsage
	default:
		return ExitFailed
	}
}

// Run runs one digest command. It prints its output to stdout and its
// diagnostics to stderr, and returns an error whose ExitCode is the process
// exit code; the error has already been printed.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runWith(ctx, args, stdout, stderr, nil)
}

// runWith is Run with sleep in place of the real waits of delivery
// (backoff, polling); nil means the real ones.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, sleep func(context.Context, time.Duration) bool) error {
	// The logger and the progress printer write to stderr from different
	// goroutines: serialize them.
	stderr = &lockedWriter{w: stderr}
	err := run(ctx, args, stdout, stderr, sleep)
	if err != nil {
		var ee *exitError
		if !errors.As(err, &ee) || ee.err != nil {
			fmt.Fprintf(stderr, "digest: %v\n", err)
		}
		if errors.Is(err, ErrUsage) {
			fmt.Fprintln(stderr, helpHint(args))
		}
	}
	return err
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, sleep func(context.Context, time.Duration) bool) error {
	// A --config given before the command applies to it too.
	global := flag.NewFlagSet("digest", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	configPath := global.String("config", "config.yaml", "configuration file")
	help := global.Bool("help", false, "show usage")
	if err := global.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if *help || global.NArg() == 0 {
		if *help {
			fmt.Fprint(stdout, usageHeader)
			return nil
		}
		return usagef("no command given")
	}
	cmd, rest := global.Arg(0), global.Args()[1:]
	e := &env{stdin: os.Stdin, stdout: stdout, stderr: stderr, configPath: *configPath, sleep: sleep}
	err := e.dispatch(ctx, cmd, rest)
	e.finish(cmd, err)
	return err
}

func (e *env) dispatch(ctx context.Context, cmd string, rest []string) error {
	if (cmd == "sources" || cmd == "subscribers") && len(rest) > 0 && isHelpFlag(rest[0]) {
		fmt.Fprint(e.stdout, commandUsage(cmd))
		return errHelpShown
	}
	switch cmd {
	case "build":
		return e.build(ctx, rest)
	case "send":
		return e.send(ctx, rest)
	case "status":
		return e.status(ctx, rest)
	case "archive":
		return e.archive(ctx, rest)
	case "daemon":
		return e.daemon(ctx, rest)
	case "healthcheck": // for container health checks; not in the usage
		return e.healthcheck(ctx, rest)
	case "serve":
		return e.serve(ctx, rest)
	case "preview":
		return e.preview(ctx, rest)
	case "sources":
		if len(rest) == 0 || rest[0] != "check" {
			return usagef("sources: expected \"sources check\"")
		}
		return e.sourcesCheck(ctx, rest[1:])
	case "subscribers":
		return e.subscribers(ctx, rest)
	case "bounces":
		return e.bounces(ctx, rest)
	case "help":
		return e.help(ctx, rest)
	}
	return usagef("unknown command %q", cmd)
}

func (e *env) subscribers(ctx context.Context, rest []string) error {
	if len(rest) == 0 {
		return usagef("subscribers: expected import, add, remove, list or export")
	}
	switch rest[0] {
	case "import":
		return e.subsImport(ctx, rest[1:])
	case "add":
		return e.subsAdd(ctx, rest[1:])
	case "remove":
		return e.subsRemove(ctx, rest[1:])
	case "list":
		return e.subsList(ctx, rest[1:])
	case "export":
		return e.subsExport(ctx, rest[1:])
	}
	return usagef("subscribers: unknown command %q", rest[0])
}

// help prints the whole usage, or with a command the part about it and
// its flags (as CMD --help does).
func (e *env) help(ctx context.Context, rest []string) error {
	if len(rest) == 0 {
		fmt.Fprint(e.stdout, usageHeader)
		return nil
	}
	if commandUsage(strings.Join(rest, " ")) == "" {
		return usagef("help: unknown command %q", strings.Join(rest, " "))
	}
	return e.dispatch(ctx, rest[0], append(rest[1:], "--help"))
}

func isHelpFlag(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// errHelpShown ends a command whose --help was asked for: the usage is
// printed, and the exit status is 0.
var errHelpShown error = &exitError{code: ExitOK}

// commandUsage is the part of the usage about one command (such as "send"
// or "subscribers add"; "subscribers" gives all of its subcommands), with
// the lines that continue it; "" for an unknown command.
func commandUsage(name string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(usageHeader, "\n") {
		rest, isCmd := strings.CutPrefix(line, "  digest ")
		switch {
		case isCmd:
			in = rest == name || strings.HasPrefix(rest, name+" ")
		case !strings.HasPrefix(line, "    "):
			in = false
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// helpHint is the line after a usage error: where to read the usage of the
// command that was given (as far as it is known), or of all of them.
func helpHint(args []string) string {
	var words []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--config" || a == "-config" {
			i++ // its value
			continue
		}
		if strings.HasPrefix(a, "-") {
			continue
		}
		words = append(words, a)
		if len(words) == 2 {
			break
		}
	}
	for n := len(words); n > 0; n-- {
		name := strings.Join(words[:n], " ")
		if name != "help" && commandUsage(name) != "" {
			return `Run "digest help ` + name + `" for its usage.`
		}
	}
	return `Run "digest help" for the commands.`
}

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUsage}, args...)...)
}

// flags is one command's flag set with the flags every command has.
type flags struct {
	*flag.FlagSet
	config string
	now    string
}

func newFlags(e *env, name string, withNow bool) *flags {
	f := &flags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
	f.SetOutput(io.Discard)
	f.StringVar(&f.config, "config", e.configPath, "configuration file")
	if withNow {
		f.StringVar(&f.now, "now", "", "RFC 3339 time that replaces the clock")
	}
	return f
}

// parse parses flags and positional arguments in any order and checks the
// number of positional arguments.
func (f *flags) parse(e *env, args []string, minArgs, maxArgs int) ([]string, error) {
	var pos []string
	for {
		err := f.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, commandUsage(f.Name()))
			fmt.Fprintf(e.stdout, "\nFlags of %s:\n", f.Name())
			f.SetOutput(e.stdout)
			f.PrintDefaults()
			return nil, errHelpShown
		}
		if err != nil {
			return nil, usagef("%s: %v", f.Name(), err)
		}
		args = f.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < minArgs || len(pos) > maxArgs {
		return nil, usagef("%s: expected %s, got %q", f.Name(), argsWanted(minArgs, maxArgs), pos)
	}
	e.configPath = f.config
	if f.now != "" {
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(f.now))
		if err != nil {
			return nil, usagef("--now %q: want an RFC 3339 time such as 2026-11-30T08:00:00Z", f.now)
		}
		// Set before load, so that the store's own stamps follow it too.
		e.clock = func() time.Time { return t }
	}
	return pos, nil
}

func argsWanted(min, max int) string {
	switch {
	case min == max && min == 0:
		return "no arguments"
	case min == max:
		return fmt.Sprintf("%d argument(s)", min)
	default:
		return fmt.Sprintf("%d to %d arguments", min, max)
	}
}
