package render_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/digest/digest/internal/render"
)

func TestSubjectCutsTheLeadTitle(t *testing.T) {
	long := strings.Repeat("Council weighs the harbour budget again ", 22) // ~880 characters
	tests := []struct {
		name, title, want string
	}{
		{"short title whole", "Library stays open until ten", "The Example Weekly #7: Library stays open until ten and 2 more"},
		{"80 characters whole", strings.Repeat("abcd ", 14) + "abcdefghij", "The Example Weekly #7: " + strings.Repeat("abcd ", 14) + "abcdefghij and 2 more"},
		{"long title cut at a word", long, "The Example Weekly #7: " +
			"Council weighs the harbour budget again Council weighs the harbour budget again… and 2 more"},
		{"no spaces: cut at a character", strings.Repeat("議会", 60), "The Example Weekly #7: " + strings.Repeat("議会", 40) + "… and 2 more"},
	}
	r, err := render.New("", newsletter())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := fixture()
			iss.Sections[0].Articles[0].Title = tt.title
			out, err := r.Render(iss, "")
			if err != nil {
				t.Fatal(err)
			}
			if out.Subject != tt.want {
				t.Errorf("subject\n got %q\nwant %q", out.Subject, tt.want)
			}
			if n := utf8.RuneCountInString(out.Subject); n > 120 {
				t.Errorf("subject is %d characters", n)
			}
		})
	}
}

// The text part ends with exactly one newline, whatever the template ends
// with: the archived digest.txt is a proper text file.
func TestTextPartEndsWithOneNewline(t *testing.T) {
	for name, tmpl := range map[string]string{
		"default":         "",
		"no newline":      "{{.Newsletter.Name}} {{.Issue.ID}}",
		"many newlines":   "{{.Newsletter.Name}}\n\n\n\n",
		"ends in a slot":  "Unsubscribe: {{.URLs.Unsubscribe}}",
		"trailing spaces": "{{.Newsletter.Name}}\n  \t\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if tmpl != "" {
				if err := os.WriteFile(filepath.Join(dir, render.TextFile), []byte(tmpl), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r, err := render.New(dir, newsletter())
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.Render(fixture(), "")
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []render.Personal{reader, {Email: "your address", UnsubscribeURL: "https://news.example.org/unsubscribe"}} {
				text := out.Text(p)
				if !strings.HasSuffix(text, "\n") || strings.HasSuffix(text, "\n\n") || strings.HasSuffix(strings.TrimSuffix(text, "\n"), " ") {
					t.Errorf("text part ends %q", text[max(0, len(text)-20):])
				}
			}
		})
	}
}
