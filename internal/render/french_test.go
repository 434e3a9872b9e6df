package render

import (
	"strings"
	"testing"
)

func TestFrenchSpacing(t *testing.T) {
	const n = "\u202F"
	for in, want := range map[string]string{
		"Enfin!":                  "Enfin" + n + "!",
		"Enfin !":                 "Enfin" + n + "!",
		"Pourquoi? Parce que.":    "Pourquoi" + n + "? Parce que.",
		"Note: le budget; voté.":  "Note" + n + ": le budget" + n + "; voté.",
		"Vraiment?!":              "Vraiment" + n + "?!",
		"À 12:30, https://x.fr/a": "À 12:30, https://x.fr/a",
		"déjà\u00A0!":             "déjà\u00A0!",
		"déjà" + n + "?":          "déjà" + n + "?",
		"« Oui »!":                "« Oui »" + n + "!",
		"! seul":                  "! seul",
		"sans ponctuation":        "sans ponctuation",
	} {
		if got := frenchSpacing(in); got != want {
			t.Errorf("frenchSpacing(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		`<p>Bienvenue<em>!</em> Tom &amp; Jerry: <a href="https://x.fr/?a=1;b=2">lien</a>!</p>`: `<p>Bienvenue<em>` + n + `!</em> Tom &amp; Jerry` + n + `: <a href="https://x.fr/?a=1;b=2">lien</a>` + n + `!</p>`,
		`<p><strong>Enfin</strong> !</p>`: `<p><strong>Enfin</strong>` + n + `!</p>`,
	} {
		if got := frenchHTML(in); got != want {
			t.Errorf("frenchHTML(%q)\n = %q\nwant %q", in, got, want)
		}
	}
}

// TestFrenchIssue: with newsletter.language fr the rendered parts keep a
// narrow no-break space before ! ? ; : in titles, teasers and the intro;
// in English they do not change.
func TestFrenchIssue(t *testing.T) {
	iss := sample()
	iss.Sections[0].Articles[0].Title = "Le col rouvre enfin!"
	for _, tt := range []struct {
		lang string
		want string
	}{{"fr", "enfin\u202F!"}, {"fr-CA", "enfin\u202F!"}, {"en", "enfin!"}} {
		r, err := New("", Newsletter{Name: "Hebdo", Language: tt.lang})
		if err != nil {
			t.Fatal(err)
		}
		out, err := r.Render(iss, "<p>Bonjour: voici le numéro!</p>")
		if err != nil {
			t.Fatal(err)
		}
		for part, body := range map[string]string{"html": out.HTML(Personal{}), "text": out.Text(Personal{}), "subject": out.Subject} {
			if !strings.Contains(body, tt.want) {
				t.Errorf("%s %s lacks %q", tt.lang, part, tt.want)
			}
		}
		if french := strings.Contains(out.HTML(Personal{}), "Bonjour\u202F:"); french != (tt.lang != "en") {
			t.Errorf("%s: French intro spacing %v", tt.lang, french)
		}
		if !strings.Contains(out.HTML(Personal{}), `lang="`+tt.lang+`"`) {
			t.Errorf("%s: no lang attribute", tt.lang)
		}
	}
}
