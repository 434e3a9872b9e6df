package subscriber

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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

// LogText is err's message with no part of any address in it, for logs
// (which never carry a subscriber's address): a problem with the address
// itself is named only as such, with its line.
func LogText(err error) string {
	var ae *AddressError
	if !errors.As(err, &ae) {
		return err.Error()
	}
	var le *LineError
	if errors.As(err, &le) {
		return fmt.Sprintf("line %d: the email address is not valid (fix it in the file; it is not logged)", le.Line)
	}
	return "an email address is not valid (it is not logged)"
}

// DuplicateError is the problem of a row whose address (compared
// case-insensitively) an earlier row already has; the earlier row is kept.
type DuplicateError struct {
	Email string
	First int // the line of the row that is kept
}

func (e *DuplicateError) Error() string { return fmt.Sprintf("duplicate of line %d", e.First) }

// CSV is a subscriber list with its header read and checked. Rows then
// reads it row by row, so that a list of a million readers is never in
// memory: only the longest record is, and a hash of each address (about
// 17 bytes per reader) to find repeats.
type CSV struct {
	br    *bufio.Reader
	comma rune
	rules Rules

	pending []physLine // lines read but not yet consumed
	next    int        // number of the next physical line to read
	readErr error      // what ended the input, when not io.EOF
	used    bool

	header []string
	col    columns
	fields []string // reused by each record
}

type physLine struct {
	n    int
	text string // with its line end, if any
}

// columns are the indexes of the known columns, -1 when absent.
type columns struct{ email, name, topics, status, created int }

// Columns is the header of a subscriber list as `subscribers list` and
// `export` write it; ReadCSV reads every one back but updated (other
// names are ignored).
var Columns = []string{"email", "name", "status", "topics", "created", "updated"}

// maxRecordLines bounds the physical lines one record may span (a quoted
// value with line breaks): past it, an unclosed quote is an error of its
// first line, not a reason to read the rest of the file as one value.
const maxRecordLines = 1000

// ReadCSV reads the header of a subscriber list, which must have an
// "email" column and may have "name", "topics" (separated by ';'),
// "status" and "created" (RFC 3339) columns, in any case and order; other
// columns (such as "updated", which `subscribers export` writes) are
// ignored. A UTF-8 byte order mark is skipped, and the delimiter is ';' (or
// a tab) when the first line has no comma but has one. Addresses are
// checked with rules.
//
// The error is about the file as a whole: unreadable, empty, or a header
// without an email column. Problems with single rows come from Rows.
func ReadCSV(r io.Reader, rules Rules) (*CSV, error) {
	c := &CSV{br: bufio.NewReaderSize(r, 64<<10), rules: rules, next: 1}
	if bom, err := c.br.Peek(3); err == nil && string(bom) == "\xef\xbb\xbf" {
		c.br.Discard(3)
	}
	if !c.readLine() {
		return nil, c.fatal(errors.New("the file is empty: want a header line such as email,name"))
	}
	c.comma = detectComma(c.pending[0].text)
	for {
		// The header is the first line that is not blank.
		for len(c.pending) > 0 && strings.TrimSpace(c.pending[0].text) == "" {
			c.pending = c.pending[1:]
		}
		if len(c.pending) > 0 || !c.readLine() {
			break
		}
	}
	if len(c.pending) == 0 {
		return nil, c.fatal(errors.New("the file is empty: want a header line such as email,name"))
	}
	line, rec, err, _ := c.record()
	if err != nil {
		return nil, &LineError{Line: line, Err: fmt.Errorf("header: %w", err)}
	}
	if err := c.setHeader(rec); err != nil {
		return nil, &LineError{Line: line, Err: err}
	}
	return c, nil
}

// fatal prefers a read error to what its absence looked like.
func (c *CSV) fatal(err error) error {
	if c.readErr != nil && !errors.Is(c.readErr, io.EOF) {
		return fmt.Errorf("read csv: %w", c.readErr)
	}
	return err
}

// detectComma picks the delimiter from the first line.
func detectComma(first string) rune {
	switch {
	case strings.ContainsRune(first, ','):
		return ','
	case strings.ContainsRune(first, ';'):
		return ';'
	case strings.ContainsRune(first, '\t'):
		return '\t'
	}
	return ','
}

// readLine appends the next physical line to pending; false at the end.
func (c *CSV) readLine() bool {
	if c.readErr != nil {
		return false
	}
	s, err := c.br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		c.readErr = err
	} else if err != nil {
		c.readErr = io.EOF
	}
	if s == "" {
		return false
	}
	c.pending = append(c.pending, physLine{n: c.next, text: s})
	c.next++
	return true
}

// record returns the next record and the line it starts on, skipping
// empty lines; ok is false at the end of the input. A record continues on
// the next line while it has an open quote. A malformed record is
// reported as err, and only its first line is consumed: reading resumes on
// the next physical line, so one broken quote does not swallow the rest of
// the file.
func (c *CSV) record() (line int, fields []string, err error, ok bool) {
	for {
		if len(c.pending) == 0 && !c.readLine() {
			return 0, nil, nil, false
		}
		if t := c.pending[0].text; t == "\n" || t == "\r\n" {
			c.pending = c.pending[1:]
			continue
		}
		break
	}
	first := c.pending[0]
	k, quotes := 1, strings.Count(first.text, `"`)
	for quotes%2 == 1 && k < maxRecordLines {
		if k == len(c.pending) && !c.readLine() {
			break
		}
		quotes += strings.Count(c.pending[k].text, `"`)
		k++
	}
	text := first.text
	if k > 1 {
		var b strings.Builder
		for _, l := range c.pending[:k] {
			b.WriteString(l.text)
		}
		text = b.String()
	}
	c.fields, err = parseRecord(text, c.comma, c.fields[:0])
	if err != nil {
		c.pending = c.pending[1:]
		return first.n, nil, err, true
	}
	c.pending = c.pending[k:]
	return first.n, c.fields, nil, true
}

// parseRecord splits one CSV record (RFC 4180: quoted fields may hold the
// delimiter, quotes doubled and line breaks) into fields, ignoring leading
// spaces in a field, and reports encoding/csv's errors for a broken quote.
func parseRecord(rec string, comma rune, dst []string) ([]string, error) {
	rec = strings.TrimSuffix(strings.TrimSuffix(rec, "\n"), "\r")
	clen := utf8.RuneLen(comma)
	pos := 0
	for {
		for pos < len(rec) {
			r, size := utf8.DecodeRuneInString(rec[pos:])
			if r == comma || !unicode.IsSpace(r) {
				break
			}
			pos += size
		}
		if pos < len(rec) && rec[pos] == '"' {
			var b strings.Builder
			pos++
			for {
				i := strings.IndexByte(rec[pos:], '"')
				if i < 0 {
					return nil, csv.ErrQuote
				}
				b.WriteString(rec[pos : pos+i])
				pos += i + 1
				if pos < len(rec) && rec[pos] == '"' {
					b.WriteByte('"')
					pos++
					continue
				}
				break
			}
			dst = append(dst, strings.ReplaceAll(b.String(), "\r\n", "\n"))
			if pos == len(rec) {
				return dst, nil
			}
			if r, _ := utf8.DecodeRuneInString(rec[pos:]); r != comma {
				return nil, csv.ErrQuote
			}
			pos += clen
			continue
		}
		i := strings.IndexRune(rec[pos:], comma)
		field := rec[pos:]
		if i >= 0 {
			field = rec[pos : pos+i]
		}
		if strings.IndexByte(field, '"') >= 0 {
			return nil, csv.ErrBareQuote
		}
		dst = append(dst, field)
		if i < 0 {
			return dst, nil
		}
		pos += i + clen
	}
}

func (c *CSV) setHeader(rec []string) error {
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
		return fmt.Errorf("header has no email column (columns: %s)", strings.Join(names, ", "))
	}
	c.header = names
	return nil
}

// Rows returns the good rows in file order; it reads the input, so it can
// be ranged over once. A malformed row (bad address or topic, wrong number
// of fields, broken quoting) or a repeated address is skipped and reported
// to problem as a [*LineError] (a repeat wraps a [*DuplicateError]: the
// first row with an address is kept), and so is a read error, which ends
// the rows. problem may be nil.
func (c *CSV) Rows(problem func(error)) iter.Seq[Row] {
	if problem == nil {
		problem = func(error) {}
	}
	return func(yield func(Row) bool) {
		if c.used {
			problem(errors.New("the rows of a CSV file can be read once"))
			return
		}
		c.used = true
		seen := newSeenSet() // address → line of its first row
		for {
			line, rec, err, ok := c.record()
			if !ok {
				if c.readErr != nil && !errors.Is(c.readErr, io.EOF) {
					problem(&LineError{Line: c.next, Err: fmt.Errorf("read csv: %w", c.readErr)})
				}
				return
			}
			var row Row
			if err == nil {
				row, err = c.row(line, rec)
			}
			if err == nil {
				if first, dup := seen.firstLine(EmailKey(row.Email), line); dup {
					err = &DuplicateError{Email: row.Email, First: first}
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
	case "", StatusActive, StatusUnsubscribed, StatusBounced, StatusComplained:
		row.Status = st
	case StatusPending:
		return Row{}, errors.New("a sign-up that was never confirmed (status pending): not imported; the reader can sign up again")
	default:
		return Row{}, fmt.Errorf("status %q is not one of active, unsubscribed, bounced, complained", field(c.col.status))
	}
	if s := field(c.col.created); s != "" {
		if row.Created, err = time.Parse(time.RFC3339, s); err != nil {
			return Row{}, fmt.Errorf("created %q is not an RFC 3339 time such as 2026-11-30T08:00:00Z", s)
		}
	}
	return row, nil
}
