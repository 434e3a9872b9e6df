package mail

import (
	"errors"
	"mime"
	"strings"
	"testing"
)

func TestNotice(t *testing.T) {
	c := testComposer(t, nil)
	long := strings.Repeat("Confirm your address for the weekly digest — ümlauts too. ", 30)
	m, err := c.Notice(Notice{
		To: "Zoë@example.net", Name: "Zoë \r\nBcc: evil@example.org", Kind: "confirm",
		Subject: "Confirm your subscription to The Weekly Digest",
		Text:    "Hello,\n" + long + "\nhttps://digest.example.org/confirm/abc\n",
		HTML:    "<!doctype html><p>" + long + `<a href="https://digest.example.org/confirm/abc">Confirm</a></p>`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.To != "Zoë@example.net" || m.From != "news@example.org" {
		t.Errorf("envelope %q → %q", m.From, m.To)
	}
	p := parseMessage(t, m.Data)
	h := p.header
	dec := new(mime.WordDecoder)
	if subj, _ := dec.DecodeHeader(h.Get("Subject")); subj != "Confirm your subscription to The Weekly Digest" {
		t.Errorf("Subject %q", subj)
	}
	if to, _ := dec.DecodeHeader(h.Get("To")); !strings.Contains(to, "Zoë Bcc: evil@example.org") || h.Get("Bcc") != "" {
		t.Errorf("To %q: a CR/LF in the name must not make a header", to)
	}
	if id := h.Get("Message-Id"); !strings.HasPrefix(id, "<confirm.") || !strings.HasSuffix(id, "@example.org>") {
		t.Errorf("Message-ID %q", id)
	}
	for k, want := range map[string]string{
		"List-Id": `"The Weekly Digest" <the-weekly-digest.example.org>`, "Auto-Submitted": "auto-generated",
		"Reply-To": "<editor@example.org>", "List-Unsubscribe": "", "Precedence": "",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if len(p.parts) != 2 || p.parts[0].contentType != "text/plain" || p.parts[1].contentType != "text/html" {
		t.Fatalf("parts %+v", p.parts)
	}
	if !strings.Contains(p.parts[0].body, long) || !strings.Contains(p.parts[1].body, `href="https://digest.example.org/confirm/abc"`) {
		t.Errorf("bodies do not decode to what was given:\n%s", m.Data)
	}

	if _, err := c.Notice(Notice{To: "not an address", Subject: "s", Text: "t", HTML: "h"}); !errors.Is(err, ErrBadAddress) {
		t.Errorf("bad address: %v", err)
	}
	if _, err := c.Notice(Notice{To: "a@example.org"}); err == nil {
		t.Error("an empty notice was built")
	}
}
