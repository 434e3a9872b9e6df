package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportReportsDuplicatesAndAddressErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0, "")
	csv := filepath.Join(w.dir, "import.csv")
	write(t, csv, "email,name,topics\n"+
		"alice@op.example,Alice,World\n"+
		"ALICE@op.example,Alice Again,\n"+
		"frank@,Frank,\n"+
		"kim@op..example,Kim,\n"+
		"@op.example,Nobody,\n"+
		"Carol <carol@op.example>,,\n"+
		"ivan@localhost,Ivan,\n"+
		"judy@op.example,Judy,sport\n")
	code, out, errOut := w.run("subscribers", "import", csv)
	if code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"import.csv: line 3: duplicate of line 2 (row skipped)",
		`line 4: email address "frank@": nothing after the @`,
		`line 5: email address "kim@op..example": the domain "op..example" has two dots in a row`,
		`line 6: email address "@op.example": nothing before the @`,
		`line 8: email address "ivan@localhost": the domain "localhost" has no dot`,
		`line 9: unknown topic "sport" (topics: world, nature, town)`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(out, "2 added, 0 updated, 0 unchanged, 1 duplicate, 5 skipped") {
		t.Errorf("summary:\n%s", out)
	}
	_, list, _ := w.run("subscribers", "list")
	for _, want := range []string{"alice@op.example,Alice,active,world,", "carol@op.example,Carol,active,,"} {
		if !strings.Contains(list, want) {
			t.Errorf("list lacks %q:\n%s", want, list)
		}
	}

	// A dotless domain is taken when the config allows it.
	data, _ := os.ReadFile(w.config)
	write(t, w.config, strings.Replace(string(data), "  base_url:", "  allow_dotless_domains: true\n  base_url:", 1))
	code, out, errOut = w.run("subscribers", "import", csv)
	if code != 0 || !strings.Contains(out, "1 added") || strings.Contains(errOut, "localhost") {
		t.Errorf("with allow_dotless_domains: exit %d\n%s\n%s", code, out, errOut)
	}

	// An empty file is an error about the file, not a skipped row.
	empty := filepath.Join(w.dir, "empty.csv")
	write(t, empty, "")
	code, out, errOut = w.run("subscribers", "import", empty)
	if code != 1 || !strings.Contains(errOut, "empty.csv: the file is empty") || strings.Contains(errOut, "row skipped") {
		t.Errorf("empty file: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestAddAndRemoveSayWhatHappened(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0, "")
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"add", "QUINN@example.org", "--name", "Quinn"}, 0, "Added QUINN@example.org (active)"},
		{[]string{"add", "quinn@example.org"}, 0, "Updated quinn@example.org: address now spelled quinn@example.org (was QUINN@example.org)"},
		{[]string{"add", "quinn@example.org"}, 0, "quinn@example.org is already subscribed (active); nothing changed"},
		{[]string{"add", "quinn@example.org", "--topics", "World,town"}, 0, "topics now town, world (were all)"},
		{[]string{"add", "quinn@example.org", "--topics", "sport"}, 2, `unknown topic "sport"`},
		{[]string{"add", "Rita <rita@example.org>"}, 0, "Added rita@example.org"},
		{[]string{"add", "ivan@localhost"}, 2, "has no dot"},
		{[]string{"remove", "QUINN@example.org"}, 0, "Unsubscribed quinn@example.org"},
		{[]string{"remove", "quinn@example.org"}, 0, "quinn@example.org was already unsubscribed; nothing changed"},
		{[]string{"add", "quinn@example.org"}, 0, "re-activated (was unsubscribed)"},
		{[]string{"remove", "nobody@example.org"}, 1, "nobody@example.org is not a subscriber"},
		{[]string{"list", "--status", "gone"}, 2, "want one of active, pending, unsubscribed, bounced"},
	}
	for _, s := range steps {
		code, out, errOut := w.run(append([]string{"subscribers"}, s.args...)...)
		if code != s.code || !strings.Contains(out+errOut, s.want) {
			t.Errorf("subscribers %s: exit %d, want %d with %q\n%s%s", strings.Join(s.args, " "), code, s.code, s.want, out, errOut)
		}
	}
	_, list, _ := w.run("subscribers", "list")
	if !strings.Contains(list, "rita@example.org,Rita,active,,") || !strings.Contains(list, "quinn@example.org,Quinn,active,town;world,") {
		t.Errorf("list:\n%s", list)
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0, "")
	for _, args := range [][]string{
		{"add", "ann@example.org", "--name", "Ann, Jr.", "--topics", "world,nature"},
		{"add", "bob@example.org"},
		{"remove", "bob@example.org"},
	} {
		if code, out, errOut := w.run(append([]string{"subscribers"}, args...)...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	code, export, _ := w.run("subscribers", "export")
	if code != 0 || !strings.HasPrefix(export, "email,name,status,topics,created,updated\n") {
		t.Fatalf("export: exit %d\n%s", code, export)
	}
	_, active, _ := w.run("subscribers", "list", "--status", "active")
	if strings.Contains(active, "bob@") || !strings.Contains(active, "ann@") {
		t.Errorf("list --status active:\n%s", active)
	}

	// Into a new store: the same readers, statuses and topics.
	file := filepath.Join(w.dir, "export.csv")
	write(t, file, export)
	data, _ := os.ReadFile(w.config)
	write(t, w.config, string(data)+"database: other.db\n")
	code, out, errOut := w.run("subscribers", "import", file)
	if code != 0 || !strings.Contains(out, "2 added") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	_, again, _ := w.run("subscribers", "export")
	// All but the updated column, which is the import's time.
	cut := func(s string) string {
		var out []string
		for _, line := range strings.Split(s, "\n") {
			if i := strings.LastIndexByte(line, ','); i >= 0 {
				line = line[:i]
			}
			out = append(out, line)
		}
		return strings.Join(out, "\n")
	}
	if cut(again) != cut(export) {
		t.Errorf("the export of the new store differs:\n%s\nwant\n%s", again, export)
	}
}
