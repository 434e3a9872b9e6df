package subscriber

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"
)

// Row is one subscriber read from a CSV file.
type Row struct {
	Line  int // physical line in the file, 1-based; the header is line 1
	Email string
	Name  string // empty: keep the stored name
	// Topics from the topics column; nil (no column, or an empty cell)
	// keeps the stored topics.
	Topics []string
	// Status from the status column (active, unsubscribed or bounced);
	// empty means active. It applies to addresses new to the store only,
	// so that a list moved from another store keeps its unsubscribes, and
	// an old list never re-activates or unsubscribes anyone.
	Status string
	// Created from the created column; zero means now. Like Status, it
	// applies to new addresses only.
	Created time.Time
}

// LineError is a problem with one line of a CSV file.
type LineError struct {
	Line int
	Err  error
}

// Error reports the line first, so that a caller adding the file name gets
// "subscribers.csv: line 3: …".
func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns the underlying error.
func (e *LineError) Unwrap() error { return e.Err }

// DuplicateError is the problem of a row whose address (compared
// case-insensitively) an earlier row already has; the earlier row is kept.
type DuplicateError struct {
	Email string
	First int // the line of the row that is kept
}

func (e *DuplicateError) Error() string { return fmt.Sprintf("duplicate of line %d", e.First) }

// CSV is a subscriber list read into memory with its header checked. Rows
// then parses it row by row, so that a list of a million readers is never
// held as a million values.
type CSV struct {
	data       []byte
	lineStarts []int // byte offset where each physical line starts; index 0 is line 1
	comma      rune
	rules      Rules

	header     []string
	headerLine int // last physical line of the header
	col        columns
}

// columns are the indexes of the known columns, -1 when absent.
type columns struct{ email, name, topics, status, created int }

// Columns are the header names ReadCSV understands; others are ignored.
var Columns = []string{"email", "name", "status", "topics", "created", "updated"}

// ReadCSV reads a subscriber list and checks its header, which must have an
// "email" column and may have "name", "topics" (separated by ';'),
// "status" and "created" (RFC 3339) columns, in any case and order; other
// columns (such as "updated", which `subscribers export` writes) are
// ignored. A UTF-8 byte order mark is skipped, and the delimiter is ';' (or
// a tab) when the header line has no comma but has one. Addresses are
// checked with rules.
//
// The error is about the file as a whole: unreadable, empty, or a header
// without an email column. Problems with single rows come from Rows.
func ReadCSV(r io.Reader, rules Rules) (*CSV, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read csv: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("the file is empty: want a header line such as email,name")
	}
	c := &CSV{data: data, comma: detectComma(data), rules: rules}
	c.lineStarts = append(c.lineStarts, 0)
	for i, b := range data {
		if b == '\n' && i+1 < len(data) {
			c.lineStarts = append(c.lineStarts, i+1)
		}
	}
	if err := c.readHeader(); err != nil {
		return nil, err
	}
	return c, nil
}

// detectComma picks the delimiter from the first line.
func detectComma(data []byte) rune {
	first, _, _ := bytes.Cut(data, []byte("\n"))
	switch {
	case bytes.ContainsRune(first, ','):
		return ','
	case bytes.ContainsRune(first, ';'):
		return ';'
	case bytes.ContainsRune(first, '\t'):
		return '\t'
	}
	return ','
}

// reader returns a csv.Reader that starts at physical line (1-based).
func (c *CSV) reader(line int) *csv.Reader {
	cr := csv.NewReader(bytes.NewReader(c.data[c.lineStarts[line-1]:]))
	cr.Comma = c.comma
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	return cr
}

func (c *CSV) readHeader() error {
	cr := c.reader(1)
	rec, err := cr.Read()
	var pe *csv.ParseError
	switch {
	case errors.As(err, &pe):
		return &LineError{Line: pe.StartLine, Err: fmt.Errorf("header: %w", pe.Err)}
	case errors.Is(err, io.EOF):
		return errors.New("no header line with an email column")
	case err != nil:
		return fmt.Errorf("read csv: %w", err)
	}
	c.col = columns{-1, -1, -1, -1, -1}
	names := make([]string, len(rec))
	for i, f := range rec {
		names[i] = strings.ToLower(strings.TrimSpace(f))
		for _, k := range []struct {
			name string
			idx  *int
		}{{"email", &c.col.email}, {"name", &c.col.name}, {"topics", &c.col.topics},
			{"status", &c.col.status}, {"created", &c.col.created}} {
			if names[i] == k.name && *k.idx < 0 {
				*k.idx = i
			}
		}
	}
	if c.col.email < 0 {
		return &LineError{Line: 1, Err: fmt.Errorf("header has no email column (columns: %s)", strings.Join(names, ", "))}
	}
	c.header = names
	// A header cell may span lines (quoted newline): rows start after it.
	c.headerLine = 1
	if off := cr.InputOffset(); off > 0 {
		c.headerLine = bytes.Count(c.data[:off-1], []byte("\n")) + 1
	}
	return nil
}

// Rows returns the good rows in file order. A malformed row (bad address or
// topic, wrong number of fields, broken quoting) or a repeated address is
// skipped and reported to problem as a [*LineError] (a repeat wraps a
// [*DuplicateError]: the first row with an address is kept). problem may
// be nil.
func (c *CSV) Rows(problem func(error)) iter.Seq[Row] {
	if problem == nil {
		problem = func(error) {}
	}
	return func(yield func(Row) bool) {
		seen := map[string]int32{} // EmailKey → line of its first row
		// encoding/csv cannot always resynchronise after a quoting error
		// (an unterminated quote swallows the rest of the file), so after
		// any parse error a fresh reader starts on the next physical line.
		base := c.headerLine // physical lines before the current reader's start
		if base >= len(c.lineStarts) {
			return
		}
		cr := c.reader(base + 1)
		for {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				return
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line := base + pe.StartLine
				problem(&LineError{Line: line, Err: pe.Err})
				if line >= len(c.lineStarts) {
					return
				}
				base = line
				cr = c.reader(line + 1)
				continue
			}
			if err != nil {
				problem(&LineError{Line: base + 1, Err: err})
				return
			}
			recLine, _ := cr.FieldPos(0)
			line := base + recLine
			row, err := c.row(line, rec)
			if err == nil {
				key := EmailKey(row.Email)
				if first, dup := seen[key]; dup {
					err = &DuplicateError{Email: row.Email, First: int(first)}
				} else {
					seen[key] = int32(line)
				}
			}
			if err != nil {
				problem(&LineError{Line: line, Err: err})
				continue
			}
			if !yield(row) {
				return
			}
		}
	}
}

// ReadAll returns every good row and every problem: for small lists and
// tests.
func (c *CSV) ReadAll() (rows []Row, problems []error) {
	for r := range c.Rows(func(err error) { problems = append(problems, err) }) {
		rows = append(rows, r)
	}
	return rows, problems
}

func (c *CSV) row(line int, rec []string) (Row, error) {
	// Fewer fields than the header is a row whose trailing columns are
	// empty ("ada@example.org" under "email,name"); more is a value with an
	// unquoted comma, which would shift every column after it.
	if len(rec) > len(c.header) {
		return Row{}, fmt.Errorf("has %d fields, header has %d (quote values that contain the delimiter)", len(rec), len(c.header))
	}
	field := func(i int) string {
		if i < 0 || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	if c.col.email >= len(rec) || field(c.col.email) == "" {
		return Row{}, errors.New("no address in the email column")
	}
	email, boxName, err := c.rules.ParseMailbox(rec[c.col.email])
	if err != nil {
		return Row{}, err
	}
	row := Row{Line: line, Email: email, Name: CleanName(field(c.col.name))}
	if row.Name == "" {
		row.Name = CleanName(boxName)
	}
	if t := field(c.col.topics); t != "" {
		if row.Topics, err = SplitTopics(t); err != nil {
			return Row{}, err
		}
	}
	switch st := strings.ToLower(field(c.col.status)); st {
	case "", StatusActive, StatusUnsubscribed, StatusBounced:
		row.Status = st
	case StatusPending:
		return Row{}, errors.New("a sign-up that was never confirmed (status pending): not imported; the reader can sign up again")
	default:
		return Row{}, fmt.Errorf("status %q is not one of active, unsubscribed, bounced", field(c.col.status))
	}
	if s := field(c.col.created); s != "" {
		if row.Created, err = time.Parse(time.RFC3339, s); err != nil {
			return Row{}, fmt.Errorf("created %q is not an RFC 3339 time such as 2026-11-30T08:00:00Z", s)
		}
	}
	return row, nil
}
