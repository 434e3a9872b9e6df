package render_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/digest/digest/internal/render"
)

// Arabic and Hebrew titles, teasers, section names and intros take their
// direction from their own text: every text block has dir="auto".
func TestTextBlocksTakeTheirDirectionFromTheText(t *testing.T) {
	nl := newsletter()
	nl.Name = "النشرة الأسبوعية"
	r, err := render.New("", nl)
	if err != nil {
		t.Fatal(err)
	}
	iss := fixture()
	iss.Sections[0].Name = "עולם"
	a := &iss.Sections[0].Articles[0]
	a.Title, a.Teaser = "افتتاح الممر الجبلي أمام الشحن", "أنهى المهندسون تثبيت المنحدر."
	out, err := r.Render(iss, "<p>ברוכים הבאים לגיליון.</p>")
	if err != nil {
		t.Fatal(err)
	}
	html := out.HTML(reader)
	for _, class := range []string{"brand", "intro pad", "rule", "headline", "teaser"} {
		tags := regexp.MustCompile(`<(div|td) class="`+class+`"[^>]*>`).FindAllString(html, -1)
		if len(tags) == 0 {
			t.Errorf("no %q block", class)
		}
		for _, tag := range tags {
			if !strings.Contains(tag, ` dir="auto"`) {
				t.Errorf("%s has no dir=\"auto\"", tag)
			}
		}
	}
}
