package subscriber

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
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
		rows, problems := ReadCSV(bytes.NewReader(data))
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
		if rows == nil {
			return
		}
		for _, p := range problems {
			var le *LineError
			if !errors.As(p, &le) || le.Line < 1 || le.Line > lines {
				t.Fatalf("problem %v is not tied to a line of the file", p)
			}
		}
	})
}
