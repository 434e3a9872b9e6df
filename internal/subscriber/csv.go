package subscriber

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Row is one subscriber read from a CSV file.
type Row struct {
	Line  int // physical line in the file, 1-based; the header is line 1
	Email string
	Name  string
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

// ReadCSV reads a subscriber list. The first record is a header that must
// have an "email" column and may have a "name" column (any case, any order;
// other columns are ignored). A UTF-8 byte order mark is skipped, and the
// delimiter is ';' (or a tab) when the header line has no comma but has one.
//
// A malformed row (bad address, wrong number of fields, broken quoting) is
// skipped and reported as a [*LineError] in problems; the other rows are
// still returned. Addresses that repeat (case-insensitively) are merged into
// the first row with that address, taking the last non-empty name. When the
// header itself is unusable, rows is nil and problems says why.
func ReadCSV(r io.Reader) (rows []Row, problems []error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, []error{fmt.Errorf("read csv: %w", err)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, []error{errors.New("empty file: want a header line with an email column")}
	}

	p := &csvParser{data: data, comma: detectComma(data), seen: map[string]int{}}
	p.lineStarts = append(p.lineStarts, 0)
	for i, b := range data {
		if b == '\n' && i+1 < len(data) {
			p.lineStarts = append(p.lineStarts, i+1)
		}
	}
	if err := p.run(); err != nil {
		return nil, append(p.problems, err)
	}
	return p.rows, p.problems
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

type csvParser struct {
	data       []byte
	lineStarts []int // byte offset where each physical line starts; index 0 is line 1
	comma      rune

	header   []string
	emailCol int
	nameCol  int

	rows     []Row
	seen     map[string]int // EmailKey → index in rows
	problems []error
}

// reader returns a csv.Reader that starts at physical line (1-based).
func (p *csvParser) reader(line int) *csv.Reader {
	cr := csv.NewReader(bytes.NewReader(p.data[p.lineStarts[line-1]:]))
	cr.Comma = p.comma
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	return cr
}

// run reads every record. encoding/csv cannot always resynchronise after a
// quoting error (an unterminated quote swallows the rest of the file), so
// after any parse error it starts a fresh reader on the next physical line.
// It returns an error only when the header is unusable.
func (p *csvParser) run() error {
	base := 0 // physical lines before the current reader's start
	cr := p.reader(1)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			if p.header == nil {
				return errors.New("no header line with an email column")
			}
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			line := base + pe.StartLine
			if p.header == nil {
				return &LineError{Line: line, Err: fmt.Errorf("header: %w", pe.Err)}
			}
			p.problems = append(p.problems, &LineError{Line: line, Err: pe.Err})
			if line >= len(p.lineStarts) {
				return nil
			}
			base = line
			cr = p.reader(line + 1)
			continue
		}
		if err != nil {
			return fmt.Errorf("read csv: %w", err)
		}
		recLine, _ := cr.FieldPos(0)
		line := base + recLine
		if p.header == nil {
			if err := p.setHeader(rec); err != nil {
				return &LineError{Line: line, Err: err}
			}
			continue
		}
		if err := p.add(line, rec); err != nil {
			p.problems = append(p.problems, &LineError{Line: line, Err: err})
		}
	}
}

func (p *csvParser) setHeader(rec []string) error {
	p.emailCol, p.nameCol = -1, -1
	names := make([]string, len(rec))
	for i, f := range rec {
		names[i] = strings.ToLower(strings.TrimSpace(f))
		switch {
		case names[i] == "email" && p.emailCol < 0:
			p.emailCol = i
		case names[i] == "name" && p.nameCol < 0:
			p.nameCol = i
		}
	}
	if p.emailCol < 0 {
		return fmt.Errorf("header has no email column (columns: %s)", strings.Join(names, ", "))
	}
	p.header = names
	return nil
}

func (p *csvParser) add(line int, rec []string) error {
	// Fewer fields than the header is a row whose trailing columns are
	// empty ("ada@example.org" under "email,name"); more is a value with an
	// unquoted comma, which would shift every column after it.
	if len(rec) > len(p.header) {
		return fmt.Errorf("has %d fields, header has %d (quote values that contain the delimiter)", len(rec), len(p.header))
	}
	field := func(i int) string {
		if i < 0 || i >= len(rec) {
			return ""
		}
		return rec[i]
	}
	if p.emailCol >= len(rec) {
		return fmt.Errorf("has %d fields and no value in the email column", len(rec))
	}
	email, err := NormalizeEmail(rec[p.emailCol])
	if err != nil {
		return err
	}
	name := strings.TrimSpace(field(p.nameCol))
	key := EmailKey(email)
	if i, ok := p.seen[key]; ok {
		if name != "" {
			p.rows[i].Name = name
		}
		return nil
	}
	p.seen[key] = len(p.rows)
	p.rows = append(p.rows, Row{Line: line, Email: email, Name: name})
	return nil
}
