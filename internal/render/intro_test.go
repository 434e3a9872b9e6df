package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIntro(t *testing.T) {
	tests := []struct {
		name, md  string
		want, not []string
	}{
		{"empty", " \n\t", nil, []string{"<"}},
		{"typographer and emphasis", `Say "hi" -- it's *new*...`,
			[]string{"<p>Say “hi” – it’s <em>new</em>…</p>"}, nil},
		{"raw HTML dropped", "Hello\n\n<script>alert(1)</script>\n\n<b onclick=x>bold</b>",
			[]string{"<p>Hello</p>"}, []string{"<script", "alert(1)", "onclick"}},
		{"javascript link emptied", "[click](javascript:alert(1))",
			[]string{"click"}, []string{"javascript:"}},
		{"GFM table and strikethrough", "| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~",
			[]string{"<table>", "<td>1</td>", "<del>old</del>"}, nil},
		{"autolinks", "See https://example.org/x and <editor@example.org>.",
			[]string{`href="https://example.org/x"`, `href="mailto:editor@example.org"`}, nil},
		{"task list loses its input", "- [x] done", []string{"done"}, []string{"<input"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Intro([]byte(tt.md))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Intro = %q, lacks %q", got, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("Intro = %q, has %q", got, n)
				}
			}
		})
	}
}

func TestIntroText(t *testing.T) {
	long := "https://example.org/" + strings.Repeat("p", 80)
	tests := []struct{ name, html, want string }{
		{"paragraphs", "<p>One\ntwo.</p>\n<p>Three.</p>", "One two.\n\nThree."},
		{"link gets its URL", `<p>See <a href="https://example.org/a?b=1&amp;c=2">this</a>.</p>`,
			"See this <https://example.org/a?b=1&c=2>."},
		{"link whose text is its URL", `<p><a href="https://example.org/">https://example.org/</a></p>`, "https://example.org/"},
		{"mailto", `<p><a href="mailto:ed@example.org">ed@example.org</a></p>`, "ed@example.org"},
		{"lists", "<ul><li>a</li><li>b<ol><li>c</li></ol></li></ul>", "- a\n- b\n  1. c"},
		{"loose list", "<ol start=\"3\"><li><p>x</p></li><li><p>y</p></li></ol>", "3. x\n4. y"},
		{"hanging indent", "<ul><li>" + strings.Repeat("word ", 20) + "</li></ul>",
			"- word word word word word word word word word word word word word word\n  word word word word word word"},
		{"quote", "<blockquote><p>Said so.</p></blockquote><p>After.</p>", "> Said so.\n\nAfter."},
		{"br", "<p>a<br>b</p>", "a\nb"},
		{"pre kept", "<pre><code>x := 1\n  y()\n</code></pre>", "    x := 1\n      y()"},
		{"table", "<table><thead><tr><th>A</th><th>B</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table>", "A | B\n1 | 2"},
		{"image alt", `<p><img src="x.png" alt="A chart"></p>`, "A chart"},
		{"long URL unbroken", `<p>Read <a href="` + long + `">it</a> now</p>`, "Read it\n<" + long + ">\nnow"},
		{"heading", "<h1>Title</h1><p>Body</p>", "Title\n\nBody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := introText(tt.html, 72); got != tt.want {
				t.Errorf("introText(%q) =\n%s\nwant\n%s", tt.html, got, tt.want)
			}
		})
	}
}

// TestIntroFile renders the sample intro and checks both forms.
func TestIntroFile(t *testing.T) {
	md, err := os.ReadFile(filepath.Join("testdata", "intro.md"))
	if err != nil {
		t.Fatal(err)
	}
	html, err := Intro(md)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "<script") || strings.Contains(html, "raw HTML is dropped") {
		t.Errorf("raw HTML survived: %s", html)
	}
	text := introText(html, 72)
	for _, want := range []string{"1. The freight schedule", "<https://example.org/ferry?day=mon&time=8>", "> “We finished"} {
		if !strings.Contains(text, want) {
			t.Errorf("intro text lacks %q:\n%s", want, text)
		}
	}
	for i, line := range strings.Split(text, "\n") {
		if len([]rune(line)) > 72 {
			t.Errorf("intro line %d is %d columns: %q", i+1, len([]rune(line)), line)
		}
	}
}
