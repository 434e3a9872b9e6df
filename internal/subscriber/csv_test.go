package subscriber

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestReadCSV(t *testing.T) {
	tests := []struct {
		file     string
		rows     []Row
		problems []int    // lines of the expected *LineError problems, in order
		contains []string // substrings expected in the problems, in order
		fatal    string   // when set: rows are nil and the only problem contains this
	}{
		{
			file: "good.csv",
			rows: []Row{
				{Line: 2, Email: "ann@example.org", Name: "Ann"},
				{Line: 3, Email: "Bob@Example.COM", Name: "Bobby"},
				{Line: 5, Email: "carol@example.net", Name: "Carol, Jr."},
			},
		},
		{
			file: "bad_email.csv",
			rows: []Row{
				{Line: 2, Email: "ann@example.org", Name: "Ann"},
				{Line: 4, Email: "bob@example.com", Name: "Bob"},
			},
			problems: []int{3},
			contains: []string{`"not-an-address"`},
		},
		{
			file: "bad_quote.csv",
			rows: []Row{
				{Line: 2, Email: "ann@example.org", Name: "Ann"},
				{Line: 3, Email: "bob@example.com", Name: "Bob"},
				{Line: 4, Email: "carol@example.net", Name: "Carol"},
				{Line: 6, Email: "eve@example.org", Name: "Eve"},
				{Line: 7, Email: "frank@example.org", Name: "Frank"},
			},
			problems: []int{5},
			contains: []string{`quoted-field`},
		},
		{
			file: "bare_quote.csv",
			rows: []Row{
				{Line: 2, Email: "ann@example.org", Name: "Ann"},
				{Line: 3, Email: "bob@example.com", Name: "Bob"},
				{Line: 4, Email: "carol@example.net", Name: "Carol"},
				{Line: 6, Email: "eve@example.org", Name: "Eve"},
			},
			problems: []int{5},
			contains: []string{`bare "`},
		},
		{
			file: "bom.csv",
			rows: []Row{
				{Line: 2, Email: "ann@example.org", Name: "Ann"},
				{Line: 3, Email: "bob@example.com", Name: "Bob"},
			},
		},
		{
			file: "semicolon.csv",
			rows: []Row{
				{Line: 2, Email: "ann@example.org", Name: "Ann"},
				{Line: 3, Email: "bob@example.com", Name: "Bob Jones"},
			},
		},
		{
			file: "fields.csv",
			rows: []Row{
				{Line: 2, Email: "ann@example.org", Name: "Ann"},
				{Line: 4, Email: "bob@example.com", Name: "Bob"},
				{Line: 5, Email: "carol@example.net"}, // trailing columns left empty
				{Line: 8, Email: "frank@example.org", Name: "Frank"},
			},
			problems: []int{6, 7},
			contains: []string{"has 5 fields, header has 4", "Eve <eve@example.org>"},
		},
		{
			file: "email_only.csv",
			rows: []Row{{Line: 2, Email: "ann@example.org"}},
		},
		{file: "no_email_column.csv", fatal: "line 1: header has no email column (columns: name, address)"},
		{file: "empty.csv", fatal: "empty file"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rows, problems := ReadCSV(f)
			if tt.fatal != "" {
				if rows != nil || len(problems) != 1 || !strings.Contains(problems[0].Error(), tt.fatal) {
					t.Fatalf("got rows %v, problems %v; want no rows and one problem with %q", rows, problems, tt.fatal)
				}
				return
			}
			if !reflect.DeepEqual(rows, tt.rows) {
				t.Errorf("rows:\n got %+v\nwant %+v", rows, tt.rows)
			}
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems: got %v, want lines %v", problems, tt.problems)
			}
			for i, p := range problems {
				var le *LineError
				if !errors.As(p, &le) {
					t.Fatalf("problem %d %v is %T, want *LineError", i, p, p)
				}
				if le.Line != tt.problems[i] {
					t.Errorf("problem %d %q: line %d, want %d", i, p, le.Line, tt.problems[i])
				}
				if i < len(tt.contains) && !strings.Contains(p.Error(), tt.contains[i]) {
					t.Errorf("problem %d %q does not contain %q", i, p, tt.contains[i])
				}
				if want := "line " + strconv.Itoa(le.Line) + ": "; !strings.HasPrefix(p.Error(), want) {
					t.Errorf("problem %q does not start with %q", p, want)
				}
			}
		})
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in, want string
		err      string
	}{
		{in: "ann@example.org", want: "ann@example.org"},
		{in: "  Ann.B@Example.ORG\t", want: "Ann.B@Example.ORG"},
		{in: "root@localhost", want: "root@localhost"},
		{in: "", err: "empty"},
		{in: "ann example.org", err: `"ann example.org": contains whitespace`},
		{in: "ann@exa mple.org", err: "whitespace"},
		{in: "annexample.org", err: `"annexample.org": missing @`},
		{in: "Ann <ann@example.org>", err: "whitespace"},
		{in: "<ann@example.org>", err: "bare address"},
		{in: "ann@example.org(x)", err: "bare address"},
		{in: `"ann"@example.org`, err: "bare address"},
		{in: "ann@", err: `"ann@"`},
		{in: "@example.org", err: `"@example.org"`},
		{in: "a@b.c,d@e.f", err: `"a@b.c,d@e.f"`},
		{in: "ann@example..org", err: `"ann@example..org"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeEmail(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("NormalizeEmail(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestEmailKey(t *testing.T) {
	if EmailKey(" Ann@Example.ORG ") != EmailKey("ann@example.org") {
		t.Fatal("EmailKey is not case-insensitive")
	}
}
