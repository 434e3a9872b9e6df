package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every error that Load and Validate return, so that
// the caller can tell a configuration error (exit code 2) from a failed run:
// errors.Is(err, config.ErrInvalid).
var ErrInvalid = errors.New("invalid configuration")

// invalidError marks err as a configuration error without changing its
// message, which starts with the file name.
type invalidError struct{ err error }

func (e invalidError) Error() string        { return e.err.Error() }
func (e invalidError) Unwrap() error        { return e.err }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

// problem is one thing wrong with the configuration, at a dotted key and,
// when known, a line of the file.
type problem struct {
	file string
	line int    // 0 when unknown
	key  string // dotted, "sources[2].url"; may be empty
	msg  string
	err  error // optional cause, wrapped
}

func (p problem) Error() string {
	var b strings.Builder
	b.WriteString(p.file)
	if p.line > 0 {
		fmt.Fprintf(&b, ":%d", p.line)
	}
	b.WriteString(": ")
	if p.key != "" {
		b.WriteString(p.key)
		b.WriteString(": ")
	}
	b.WriteString(p.msg)
	if p.err != nil {
		b.WriteString(": ")
		b.WriteString(p.err.Error())
	}
	return b.String()
}

func (p problem) Unwrap() error { return p.err }

// joinProblems returns nil for no problems, else one error wrapping
// ErrInvalid whose message has one problem per line.
func joinProblems(ps []error) error {
	if len(ps) == 0 {
		return nil
	}
	return invalidError{errors.Join(ps...)}
}
