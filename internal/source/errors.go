package source

import (
	"errors"
	"strings"
)

// Error is what a source's Fetch returns when something went wrong. It
// names the source once; each of its Problems names the file, line or URL
// at fault but not the source, so that a report can print the source's
// name and then one problem per line. Error() keeps the one-line-per-problem
// form "markdown Notes: notes/a.md: line 3: …" for logs.
//
// errors.Is and errors.As see through it to each problem (ErrStale,
// fs.ErrNotExist, *fetch.Error …).
type Error struct {
	// Kind is the source's type: feed, markdown or page.
	Kind string
	// Source is the source's configured name.
	Source string
	// Problems holds at least one reason.
	Problems []error
	// Partial is true when the source worked and only some of its items or
	// files were bad (and skipped): a warning, not a failure. Its articles
	// are complete but for those.
	Partial bool
}

func newError(kind, name string, problems ...error) *Error {
	return &Error{Kind: kind, Source: name, Problems: problems}
}

func (e *Error) Error() string {
	head := e.Kind + " " + e.Source + ": "
	if len(e.Problems) == 0 {
		return head + "failed"
	}
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(head)
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap returns the problems.
func (e *Error) Unwrap() []error { return e.Problems }

// Warning reports whether the error only warns (the source worked, some
// items were skipped). The store's failure streak tests for this method.
func (e *Error) Warning() bool { return e.Partial }

// Failed reports whether err, as returned by a source's Fetch, means that
// the source failed; false for nil and for the warning of a source that
// skipped some bad items or files (an *Error with Partial set).
func Failed(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	return !errors.As(err, &e) || !e.Partial
}

// Reasons returns what went wrong, one line per problem, without the
// source's name (the caller prints it once). An error that is not an
// *Error is one reason, as it is.
func Reasons(err error) []string {
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) == 0 {
		return []string{oneLine(err.Error())}
	}
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = oneLine(p.Error())
	}
	return out
}

// oneLine joins a multi-line message (a YAML parser's, say) into one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
