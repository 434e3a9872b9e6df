package article

import "testing"

// Removed markup leaves no stray space: none doubled, none before the
// punctuation that ends a word. Titles (Clean), teasers (HTMLTeaser, after
// the sanitizer) and plain text (PlainText) all go through collapse.
func TestNoStraySpacesWhereMarkupWasRemoved(t *testing.T) {
	s := NewSanitizer()
	tests := []struct{ name, in, want string }{
		{"script between words", "Council to agree <script>alert(1)</script> budget", "Council to agree budget"},
		{"image before the full stop", "The budget <img src=\"https://example.org/x.png\">.", "The budget."},
		{"image and a space before the full stop", "The budget <img src=\"x.png\"> .", "The budget."},
		{"removed span before a comma", "Hello <span></span>, world <b> </b>!", "Hello, world!"},
		{"several marks", "Really <i></i> ?! Yes <br> .", "Really?! Yes."},
		{"closing bracket", "(see <a href=\"x\">this</a> )", "(see this)"},
		{"space kept before a word", "Microsoft .NET and a :smile:", "Microsoft .NET and a :smile:"},
		{"decimal kept", "costs .5 percent", "costs .5 percent"},
		{"ellipsis", "and then <em>…</em> . more", "and then …. more"},
		{"double spaces", "two  spaces\u00a0\u00a0here", "two spaces here"},
		{"invisible between", "word \u200b. next", "word. next"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Clean(tt.in); got != tt.want {
				t.Errorf("Clean(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := PlainText(s.HTML(tt.in)); got != tt.want {
				t.Errorf("PlainText(sanitized %q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := HTMLTeaser(s.HTML(tt.in), 280); got != tt.want {
				t.Errorf("HTMLTeaser(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := Teaser(tt.want+" "+tt.want, 280); got != tt.want+" "+tt.want {
				t.Errorf("Teaser changes clean text: %q", got)
			}
		})
	}
}
