package subscriber

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReadCSV(t *testing.T) {
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		file     string
		rules    Rules
		rows     []Row
		problems []int    // lines of the expected *LineError problems, in order
		contains []string // substrings expected in the problems, in order
		fatal    string   // when set: ReadCSV fails with this
	}{
		{
			file: "good.csv",
			rows: []Row{
				{Line: 2, Email: "ann@example.org", Name: "Ann"},
				{Line: 3, Email: "Bob@Example.COM", Name: "Bob"},
				{Line: 5, Email: "carol@example.net", Name: "Carol, Jr."},
			},
			problems: []int{6, 7},
			contains: []string{"line 6: duplicate of line 3", "line 7: duplicate of line 2"},
		},
		{
			file: "bad_email.csv",
			rows: []Row{
				{Line: 2, Email: "ann@example.org", Name: "Ann"},
				{Line: 4, Email: "bob@example.com", Name: "Bob"},
			},
			problems: []int{3},
			contains: []string{`"not-an-address": has no @`},
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
				{Line: 7, Email: "eve@example.org", Name: "Eve"},
				{Line: 8, Email: "frank@example.org", Name: "Frank"},
			},
			problems: []int{6},
			contains: []string{"has 5 fields, header has 4"},
		},
		{
			file: "addresses.csv",
			rows: []Row{
				{Line: 5, Email: "carol@op.example", Name: "Carol"},
				{Line: 6, Email: "dan@op.example", Name: "Daniel"},
				{Line: 8, Email: "judy@op.example", Name: "Judy"},
			},
			problems: []int{2, 3, 4, 7},
			contains: []string{
				`"frank@": nothing after the @`,
				`"kim@op..example": the domain "op..example" has two dots in a row`,
				`"@op.example": nothing before the @`,
				`"ivan@localhost": the domain "localhost" has no dot`,
			},
		},
		{
			file:  "addresses.csv",
			rules: Rules{AllowDotlessDomain: true},
			rows: []Row{
				{Line: 5, Email: "carol@op.example", Name: "Carol"},
				{Line: 6, Email: "dan@op.example", Name: "Daniel"},
				{Line: 7, Email: "ivan@localhost", Name: "Ivan"},
				{Line: 8, Email: "judy@op.example", Name: "Judy"},
			},
			problems: []int{2, 3, 4},
		},
		{
			file: "export.csv",
			rows: []Row{
				{Line: 2, Email: "ann@example.org", Name: "Ann", Status: "active", Topics: []string{"science", "world"}, Created: ts("2026-01-02T03:04:05Z")},
				{Line: 3, Email: "bob@example.org", Name: "Bob", Status: "unsubscribed", Created: ts("2026-01-03T00:00:00Z")},
				{Line: 7, Email: "fay@example.org", Name: "Fay", Topics: []string{"town"}},
			},
			problems: []int{4, 5, 6},
			contains: []string{"status pending", `status "gone" is not one of`, `created "yesterday"`},
		},
		{
			file: "email_only.csv",
			rows: []Row{{Line: 2, Email: "ann@example.org"}},
		},
		{file: "no_email_column.csv", fatal: "line 1: header has no email column (columns: name, address)"},
		{file: "empty.csv", fatal: "the file is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			c, err := ReadCSV(f, tt.rules)
			if tt.fatal != "" {
				if c != nil || err == nil || !strings.Contains(err.Error(), tt.fatal) {
					t.Fatalf("got %v, %v; want an error with %q", c, err, tt.fatal)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rows, problems := c.ReadAll()
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

func TestRowsStopEarly(t *testing.T) {
	c, err := ReadCSV(strings.NewReader("email\na@example.org\nb@example.org\nc@example.org\n"), Rules{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range c.Rows(nil) {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Fatalf("read %d rows", n)
	}
	var again []error
	for range c.Rows(func(err error) { again = append(again, err) }) {
		t.Error("a second pass yields rows")
	}
	if len(again) != 1 {
		t.Errorf("a second pass reports %v, want one problem", again)
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in, want string
		rules    Rules
		err      string
	}{
		{in: "ann@example.org", want: "ann@example.org"},
		{in: "  Ann.B@Example.ORG\t", want: "Ann.B@Example.ORG"},
		{in: "o'neil+news@xn--bcher-kva.example", want: "o'neil+news@xn--bcher-kva.example"},
		{in: "jürgen@bücher.example", want: "jürgen@bücher.example"},
		{in: "root@localhost", err: `the domain "localhost" has no dot`},
		{in: "root@localhost", rules: Rules{AllowDotlessDomain: true}, want: "root@localhost"},
		{in: "", err: "empty"},
		{in: "ann example.org", err: `"ann example.org": contains a space`},
		{in: "ann@exa mple.org", err: "contains a space"},
		{in: "annexample.org", err: `"annexample.org": has no @`},
		{in: "Ann <ann@example.org>", err: "without a name or angle brackets; a name goes in the name column"},
		{in: "<ann@example.org>", err: "without angle brackets"},
		{in: "ann@example.org(x)", err: `the domain "example.org(x)" contains '('`},
		{in: `"ann"@example.org`, err: "without quotes"},
		{in: "frank@", err: `"frank@": nothing after the @`},
		{in: "@op.example", err: `"@op.example": nothing before the @`},
		{in: "@", err: "nothing before or after the @"},
		{in: "a@b.c,d@e.f", err: `give one address per row`},
		{in: "a@b@c.example", err: `more than one @`},
		{in: "kim@op..example", err: `"kim@op..example": the domain "op..example" has two dots in a row`},
		{in: "kim@.op.example", err: `starts or ends with a dot`},
		{in: "kim..lee@op.example", err: `the part before the @ has two dots in a row`},
		{in: ".kim@op.example", err: `the part before the @ starts or ends with a dot`},
		{in: "kim@-op.example", err: `hyphen`},
		{in: "kim@[192.0.2.1]", err: `is an IP address`},
		{in: "kim@192.0.2.1", err: `looks like an IP address`},
		{in: "kim@op_x.example", err: `contains '_'`},
		{in: strings.Repeat("k", 65) + "@op.example", err: `more than 64`},
		{in: "k@" + strings.Repeat("a", 64) + ".example", err: `longer than 63`},
		{in: "k\x00@op.example", err: "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := tt.rules.NormalizeEmail(tt.in)
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

func TestParseMailbox(t *testing.T) {
	tests := []struct{ in, addr, name, err string }{
		{in: "carol@op.example", addr: "carol@op.example"},
		{in: "Carol <carol@op.example>", addr: "carol@op.example", name: "Carol"},
		{in: `"Carol, Jr." <carol@op.example>`, addr: "carol@op.example", name: "Carol, Jr."},
		{in: "=?UTF-8?q?Zo=C3=AB?= <zoe@op.example>", addr: "zoe@op.example", name: "Zoë"},
		{in: "<carol@op.example>", addr: "carol@op.example"},
		{in: "Carol <carol@>", err: "nothing after the @"},
	}
	for _, tt := range tests {
		addr, name, err := Rules{}.ParseMailbox(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseMailbox(%q) = %q, %q, %v; want error with %q", tt.in, addr, name, err, tt.err)
			}
			continue
		}
		if err != nil || addr != tt.addr || name != tt.name {
			t.Errorf("ParseMailbox(%q) = %q, %q, %v; want %q, %q", tt.in, addr, name, err, tt.addr, tt.name)
		}
	}
}

func TestTopics(t *testing.T) {
	got, err := SplitTopics(" World; science,,world ;Town ")
	if err != nil || !reflect.DeepEqual(got, []string{"science", "town", "world"}) {
		t.Fatalf("SplitTopics = %q, %v", got, err)
	}
	if JoinTopics(got) != "science,town,world" || !reflect.DeepEqual(ParseStoredTopics("science,town,world"), got) {
		t.Error("stored form does not round-trip")
	}
	if ParseStoredTopics("") != nil {
		t.Error("empty stored topics are not nil")
	}
	if _, err := NormalizeTopics([]string{"a,b"}); err == nil {
		t.Error("a topic with a comma is accepted")
	}
	if err := CheckTopics([]string{"world", "sport"}, []string{"science", "world"}); !errors.Is(err, ErrUnknownTopic) ||
		!strings.Contains(err.Error(), `"sport" (topics: science, world)`) {
		t.Errorf("CheckTopics = %v", err)
	}
}

func TestCleanName(t *testing.T) {
	if got := CleanName("  Ann\r\nBcc: x@y\t B. "); got != "Ann Bcc: x@y B." {
		t.Errorf("CleanName = %q", got)
	}
	if got := CleanName(strings.Repeat("é", 300)); len([]rune(got)) != MaxNameRunes {
		t.Errorf("CleanName kept %d runes", len([]rune(got)))
	}
}

func TestEmailKey(t *testing.T) {
	if EmailKey(" Ann@Example.ORG ") != EmailKey("ann@example.org") {
		t.Fatal("EmailKey is not case-insensitive")
	}
}
