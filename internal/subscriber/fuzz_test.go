package subscriber

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzReadCSV checks that any input is either rejected as a whole or yields
// valid, unique addresses in line order, with every problem tied to a line.
func FuzzReadCSV(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.csv"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ReadCSV(bytes.NewReader(data), Rules{})
		if err != nil {
			return
		}
		rows, problems := c.ReadAll()
		lines := bytes.Count(data, []byte("\n")) + 1
		seen := map[string]bool{}
		last := 1
		for _, r := range rows {
			if _, err := NormalizeEmail(r.Email); err != nil {
				t.Fatalf("row %+v has an invalid address: %v", r, err)
			}
			if seen[EmailKey(r.Email)] {
				t.Fatalf("address %s returned twice", r.Email)
			}
			seen[EmailKey(r.Email)] = true
			if r.Line <= last || r.Line > lines {
				t.Fatalf("row line %d after %d (file has %d lines)", r.Line, last, lines)
			}
			last = r.Line
		}
		for _, p := range problems {
			var le *LineError
			if !errors.As(p, &le) || le.Line < 1 || le.Line > lines {
				t.Fatalf("problem %v is not tied to a line of the file", p)
			}
		}
	})
}

// FuzzNormalizeEmail checks that an accepted address is trimmed, parses
// back to itself, and is accepted again.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"ann@example.org", "frank@", "kim@op..example", "Carol <carol@op.example>", "jürgen@bücher.example", `"a"@b.c`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, err := NormalizeEmail(s)
		if err != nil {
			return
		}
		again, err := NormalizeEmail(addr)
		if err != nil || again != addr {
			t.Fatalf("NormalizeEmail(%q) = %q, but then %q, %v", s, addr, again, err)
		}
	})
}

// FuzzParseRecord checks the record parser against encoding/csv on
// single-line records that encoding/csv reads without error.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{`a,b,c`, `"a,b",c`, ` "x""y" , z`, `a,,`, `"a"b`, `a"b`, `Ann,"Carol, Jr."`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, "\r\n") || !utf8.ValidString(s) || s == "" {
			return
		}
		cr := csv.NewReader(strings.NewReader(s))
		cr.FieldsPerRecord = -1
		cr.TrimLeadingSpace = true
		want, werr := cr.Read()
		got, gerr := parseRecord(s, ',', nil)
		if werr != nil {
			if gerr == nil && !errors.Is(werr, io.EOF) {
				var pe *csv.ParseError
				if errors.As(werr, &pe) && (errors.Is(pe.Err, csv.ErrQuote) || errors.Is(pe.Err, csv.ErrBareQuote)) {
					t.Fatalf("%q: encoding/csv: %v; parseRecord accepted %q", s, werr, got)
				}
			}
			return
		}
		if gerr != nil {
			t.Fatalf("%q: parseRecord: %v; encoding/csv read %q", s, gerr, want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: parseRecord %q, encoding/csv %q", s, got, want)
		}
	})
}
