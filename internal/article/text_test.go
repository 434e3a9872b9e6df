package article

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestTeaser(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"short text is kept whole", "Short text.", 50, "Short text."},
		{"exactly max is kept whole", "abcde fghij", 11, "abcde fghij"},
		{"one over max is cut", "abcde fghijk", 11, "abcde…"},
		{"cut at word boundary", "The quick brown fox jumps over the lazy dog", 18, "The quick brown…"},
		{"cut falls right before a space", "The quick brown fox", 15, "The quick brown…"},
		{"trailing comma trimmed", "One, two, three, four", 10, "One, two…"},
		{"trailing period trimmed", "First sentence. Second sentence here", 17, "First sentence…"},
		{"dash trimmed", "alpha — beta gamma", 9, "alpha…"},
		{"long word cut at rune", "Supercalifragilisticexpialidocious", 10, "Supercalif…"},
		{"word boundary too early: cut at rune", "a bcdefghijklmnopqrstuvwxyz", 10, "a bcdefghi…"},
		{"CJK without spaces", "日本語のテキストです。スペースのない文章", 8, "日本語のテキスト…"},
		{"CJK punctuation trimmed", "日本語です。次の文章", 6, "日本語です…"},
		{"whitespace collapsed", "  lots   of\n\tspace  ", 50, "lots of space"},
		{"invalid UTF-8 dropped", "ab\xffcd", 10, "abcd"},
		{"combining mark kept with base", "cafe\u0301 au lait", 5, "cafe\u0301…"},
		{"zero max", "anything", 0, ""},
		{"empty", "", 10, ""},
		{"only punctuation", "!!!!!!!!", 3, "!!!…"},
		{"source's own cut tidied", "meet with officials as part of a...", 280, "meet with officials as part of a…"},
		{"source's own cut, then ours", "meet with officials as part of a...", 12, "meet with…"},
		{"3,000-character description", strings.Repeat("Word after word in a long description. ", 77), 280,
			strings.Repeat("Word after word in a long description. ", 7) + "Word…"},
		{"news teaser", "Russian Federation President Vladimir Putin is scheduled to visit North Korea and meet with North Korean Supreme Leader Kim Jung Un and other party officials as part of a trip", 170,
			"Russian Federation President Vladimir Putin is scheduled to visit North Korea and meet with North Korean Supreme Leader Kim Jung Un and other party officials as part of a…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Teaser(tt.in, tt.max)
			if got != tt.want {
				t.Errorf("Teaser(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
			if n := utf8.RuneCountInString(got); tt.max > 0 && n > tt.max+1 {
				t.Errorf("len = %d runes, over max+1 = %d", n, tt.max+1)
			}
		})
	}
}

func FuzzTeaser(f *testing.F) {
	for _, s := range []string{"", "hello world", "日本語のテキストです。", "a\u0301\u0301\u0301 b", "\xff\xfe x y", "👩‍👩‍👧 family emoji 🇫🇷", "   ,,, ..."} {
		f.Add(s, 5)
	}
	f.Fuzz(func(t *testing.T, in string, max int) {
		max %= 500
		out := Teaser(in, max)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8: %q", out)
		}
		norm := collapse(in)
		n, nIn := utf8.RuneCountInString(out), utf8.RuneCountInString(norm)
		if max <= 0 {
			if out != "" {
				t.Fatalf("max %d: got %q, want empty", max, out)
			}
			return
		}
		if n > max+1 {
			t.Fatalf("Teaser(%q, %d) = %q: %d runes > max+1", in, max, out, n)
		}
		if n > nIn+1 {
			t.Fatalf("Teaser(%q, %d) = %q: %d runes > input %d + 1", in, max, out, n, nIn)
		}
		tidy := TidyEllipsis(norm)
		if utf8.RuneCountInString(tidy) <= max && out != tidy {
			t.Fatalf("Teaser(%q, %d) = %q: text that fits must be kept whole (%q)", in, max, out, tidy)
		}
		norm = tidy
		if utf8.RuneCountInString(tidy) > max {
			kept, ok := strings.CutSuffix(out, "…")
			if !ok || !strings.HasPrefix(norm, kept) {
				t.Fatalf("Teaser(%q, %d) = %q: want a prefix of the input plus …", in, max, out)
			}
		}
	})
}

func TestPlainText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"tags stripped", "<p>Hello <b>world</b></p>", "Hello world"},
		{"entities decoded", "Fish &amp; chips &lt;3 &eacute;t&eacute; &#8212; &nbsp;ok", "Fish & chips <3 été — ok"},
		{"blocks separate words", "<p>one</p><p>two</p><ul><li>three</li><li>four</li></ul>line<br>break", "one two three four line break"},
		{"inline joins", "Cap<i>ital</i>ised", "Capitalised"},
		{"script and style dropped", "a<script>var x = '<p>hi</p>';</script>b<style>p{}</style>c", "a b c"},
		{"whitespace collapsed", "  a \n\n\t b  ", "a b"},
		{"control chars removed", "a\x00b\x07c\u200bd\u00ade", "abcde"},
		{"invalid UTF-8 removed", "ok\xc3\x28 fine", "ok( fine"},
		{"plain text passes", "no markup at all", "no markup at all"},
		{"unclosed tag", "text <b>bold", "text bold"},
		{"comment dropped", "a<!-- hidden -->b", "ab"},
		{"lone less-than", "x < y and y > z", "x < y and y > z"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PlainText(tt.in); got != tt.want {
				t.Errorf("PlainText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Scaling <em>SQLite</em> writes", "Scaling SQLite writes"},
		{"AT&amp;T &amp; friends", "AT&T & friends"},
		{"  Title\nwith newline ", "Title with newline"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Clean(tt.in); got != tt.want {
				t.Errorf("Clean(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSanitizer(t *testing.T) {
	s := NewSanitizer()
	tests := []struct {
		name        string
		in          string
		mustHave    []string
		mustNotHave []string
	}{
		{"script removed", `<p>hi</p><script>alert(1)</script>`, []string{"<p>hi</p>"}, []string{"script", "alert"}},
		{"onerror removed", `<img src="https://x.org/a.png" onerror="alert(1)">`, []string{`src="https://x.org/a.png"`}, []string{"onerror", "alert"}},
		{"javascript URL removed", `<a href="javascript:alert(1)">x</a>`, []string{"x"}, []string{"javascript"}},
		{"javascript URL obfuscated", `<a href="jav&#x09;ascript:alert(1)">x</a>`, nil, []string{"javascript", "alert"}},
		{"links get nofollow noopener", `<a href="https://example.com/">x</a>`, []string{`nofollow`, `noopener`, `href="https://example.com/"`}, nil},
		{"iframe, style, form removed", `<iframe src="https://evil"></iframe><style>body{}</style><form action="/x"><input name="a"></form>ok`, []string{"ok"}, []string{"iframe", "style", "form", "input"}},
		{"style attribute removed", `<p style="position:fixed">x</p>`, []string{"<p>x</p>"}, []string{"style"}},
		{"formatting kept", `<p><b>b</b> <em>e</em> <code>c</code></p>`, []string{"<b>b</b>", "<em>e</em>", "<code>c</code>"}, nil},
		{"invalid UTF-8 removed", "a\xffb", []string{"ab"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.HTML(tt.in)
			for _, w := range tt.mustHave {
				if !strings.Contains(got, w) {
					t.Errorf("HTML(%q) = %q, missing %q", tt.in, got, w)
				}
			}
			for _, w := range tt.mustNotHave {
				if strings.Contains(strings.ToLower(got), w) {
					t.Errorf("HTML(%q) = %q, contains %q", tt.in, got, w)
				}
			}
		})
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{
		`<script>alert(1)</script>`, `<scr<script>ipt>alert(1)</script>`, `<img src=x onerror=alert(1)>`,
		`<a href="javascript:alert(1)">x</a>`, "<p>\xff\xfe</p>", `<svg><script>x</script></svg>`,
		`<<script>script>`, `<noscript><p title="</noscript><script>x</script>">`,
	} {
		f.Add(s)
	}
	f.Add("fish &amp; chips &nGt; &lt;script&gt; \x00 caf\xc3\xa9")
	s := NewSanitizer()
	f.Fuzz(func(t *testing.T, in string) {
		out := s.HTML(in)
		if !utf8.ValidString(out) {
			t.Fatalf("HTML(%q) = %q: invalid UTF-8", in, out)
		}
		if strings.Contains(strings.ToLower(out), "<script") {
			t.Fatalf("HTML(%q) = %q: contains <script", in, out)
		}
		if !strings.Contains(in, "<") {
			// The shortcut for text without markup must agree with the policy.
			if want := s.policy.Sanitize(strings.ToValidUTF8(in, "")); out != want {
				t.Fatalf("HTML(%q) = %q, policy gives %q", in, out, want)
			}
		}
		// The sanitizer step of a teaser: never longer than its input,
		// never invalid UTF-8.
		p := PlainText(out)
		if !utf8.ValidString(p) {
			t.Fatalf("PlainText(%q) = %q: invalid UTF-8", out, p)
		}
		if n, nIn := utf8.RuneCountInString(p), utf8.RuneCountInString(in); n > nIn {
			t.Fatalf("PlainText(HTML(%q)) = %q: %d runes, longer than the input's %d", in, p, n, nIn)
		}
	})
}

func FuzzTeaserPipeline(f *testing.F) {
	for _, s := range []string{
		`<p>Following a <b>unanimous</b> vote&hellip; by the Council</p>`, `as part of a...`,
		`<script>alert(1)</script>text [&hellip;]`, "日本語の<i>テキスト</i>です。", "\xff<p>\x00</p>",
	} {
		f.Add(s, 20)
	}
	f.Add(strings.Repeat("<p>Word after word, in a <b>long</b> description.</p> ", 60), 280)
	f.Add(strings.Repeat("abc <i>de</i>f, ", 40)+strings.Repeat(".", 300), 100)
	s := NewSanitizer()
	f.Fuzz(func(t *testing.T, in string, max int) {
		max %= 1000
		clean := s.HTML(in)
		out := Teaser(PlainText(clean), max)
		if fast := HTMLTeaser(clean, max); fast != out {
			t.Fatalf("HTMLTeaser(%q, %d) = %q, but Teaser(PlainText) = %q", clean, max, fast, out)
		}
		if fast := HTMLTeaser(in, max); fast != Teaser(PlainText(in), max) {
			t.Fatalf("HTMLTeaser(%q, %d) = %q, but Teaser(PlainText) = %q", in, max, fast, Teaser(PlainText(in), max))
		}
		if !utf8.ValidString(out) {
			t.Fatalf("teaser of %q = %q: invalid UTF-8", in, out)
		}
		n := utf8.RuneCountInString(out)
		if nIn := utf8.RuneCountInString(in); n > nIn+1 {
			t.Fatalf("teaser of %q = %q: %d runes, longer than the input's %d + the ellipsis", in, out, n, nIn)
		}
		if max > 0 && n > max+1 {
			t.Fatalf("teaser of %q = %q: %d runes, over max %d + the ellipsis", in, out, n, max)
		}
		if strings.ContainsAny(out, "<>") && strings.Contains(strings.ToLower(out), "<script") {
			t.Fatalf("teaser of %q = %q: holds a script tag", in, out)
		}
	})
}

func TestHTMLTeaser(t *testing.T) {
	long := strings.Repeat("<p>Word after word, in a <b>long</b> description.</p>\n", 100)
	tests := []struct {
		name string
		in   string
		max  int
	}{
		{"long html", long, 280},
		{"long html, short teaser", long, 10},
		{"dots after the need", strings.Repeat("abc def ", 50) + strings.Repeat(",", 400) + "...", 398},
		{"source cut near the need", strings.Repeat("word ", 60) + "end...", 302},
		{"plain", "no markup at all", 5},
		{"zero", long, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := ""
			if tt.max > 0 {
				want = Teaser(PlainText(tt.in), tt.max)
			}
			if got := HTMLTeaser(tt.in, tt.max); got != want {
				t.Errorf("HTMLTeaser = %q, want %q", got, want)
			}
		})
	}
}

func BenchmarkHTMLTeaser(b *testing.B) {
	in := strings.Repeat(`<p>Following a unanimous vote by the <b>United Nations</b> Security Council, June 30 will be the final day.</p>`, 20)
	b.Run("Teaser(PlainText)", func(b *testing.B) {
		for b.Loop() {
			_ = Teaser(PlainText(in), 280)
		}
	})
	b.Run("HTMLTeaser", func(b *testing.B) {
		for b.Loop() {
			_ = HTMLTeaser(in, 280)
		}
	})
}

func TestTidyEllipsis(t *testing.T) {
	tests := []struct{ in, want string }{
		{"as part of a...", "as part of a…"},
		{"travel advisory against...", "travel advisory against…"},
		{"WordPress excerpt [&hellip;]", "WordPress excerpt [&hellip;]"}, // entities are decoded before
		{"WordPress excerpt […]", "WordPress excerpt…"},
		{"WordPress excerpt [...]", "WordPress excerpt…"},
		{"trailing comma, ...", "trailing comma…"},
		{"spaced …", "spaced…"},
		{"Complete sentence.", "Complete sentence."},
		{"...", "..."},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := TidyEllipsis(tt.in); got != tt.want {
				t.Errorf("TidyEllipsis(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestFirstImage(t *testing.T) {
	tests := []struct{ in, want string }{
		{`<p>x</p><img alt="a" src=" /a.png "><img src="/b.png">`, "/a.png"},
		{`<img src="">`, ""},
		{`no markup`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := FirstImage(tt.in); got != tt.want {
				t.Errorf("FirstImage(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSanitizerConcurrent(t *testing.T) {
	s := NewSanitizer()
	done := make(chan string)
	for range 8 {
		go func() { done <- s.HTML(`<p onclick="x()">hi <a href="https://e.org/">e</a></p>`) }()
	}
	first := <-done
	for range 7 {
		if got := <-done; got != first {
			t.Errorf("concurrent results differ: %q vs %q", got, first)
		}
	}
}

func BenchmarkTeaserPipeline(b *testing.B) {
	s := NewSanitizer()
	in := strings.Repeat(`<p>Following a unanimous vote by the <b>United Nations</b> Security Council, June 30 will be the final day.</p>`, 20)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		_ = Teaser(PlainText(s.HTML(in)), 280)
	}
}

// refCollapse is the plain definition of collapse, for the fuzz test.
func refCollapse(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == utf8.RuneError:
			continue
		case unicode.IsSpace(r):
			space = true
			continue
		case unicode.IsControl(r), r == '\u00AD', r == '\u200B', r == '\uFEFF':
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	// Then drop each space before closing punctuation that ends a word:
	// at the end, or before a space or more closing punctuation.
	rs := []rune(b.String())
	var out strings.Builder
	for i, r := range rs {
		if r == ' ' && i+1 < len(rs) && strings.ContainsRune(".,;:!?)]}", rs[i+1]) &&
			(i+2 == len(rs) || rs[i+2] == ' ' || strings.ContainsRune(".,;:!?)]}", rs[i+2])) {
			continue
		}
		out.WriteRune(r)
	}
	return out.String()
}

func FuzzCollapse(f *testing.F) {
	for _, s := range []string{"", "a b", " a  b ", "a\u00a0 b", "a \u200bb", "a\x00 \x7fb", "\xff a \xc3", "x \u2028 y",
		"budget .", "a . . b", "a ,\u200b b", "use .NET", "a :x", "a (b ) c", "a \t!\x00", "x \xff?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := collapse(s), refCollapse(s); got != want {
			t.Fatalf("collapse(%q) = %q, want %q", s, got, want)
		}
	})
}
