package mail

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/render"
)

var testNow = time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)

func testRendered() *render.Rendered {
	html := `<html><body><p>Hello ` + render.TokenName + `,</p>` +
		`<p>` + strings.Repeat("A long line of teaser text with ümlauts. ", 60) + `</p>` +
		`<a href="` + render.TokenUnsubscribeURL + `">Unsubscribe</a> (` + render.TokenEmail + `)</body></html>`
	text := "Hello " + render.TokenName + ",\n\nNews.\n\nUnsubscribe: " + render.TokenUnsubscribeURL + "\n"
	return render.NewRendered("Weekly digest — 4 May 2026", html, text)
}

func testComposer(t *testing.T, mod func(*Options)) *Composer {
	t.Helper()
	o := Options{
		ListName: "The Weekly Digest",
		From:     "Digest Team <news@example.org>",
		ReplyTo:  "editor@example.org",
		BaseURL:  "https://digest.example.org/",
		Secret:   []byte("0123456789abcdef0123456789abcdef"),
		Now:      func() time.Time { return testNow },
	}
	if mod != nil {
		mod(&o)
	}
	c, err := NewComposer(o)
	if err != nil {
		t.Fatalf("NewComposer: %v", err)
	}
	return c
}

// parsed is a message as a receiver sees it.
type parsed struct {
	raw    []byte
	header netmail.Header
	parts  []part
}

type part struct {
	contentType string
	body        string
}

func parseMessage(t *testing.T, raw []byte) parsed {
	t.Helper()
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 {
			t.Errorf("line %d is %d octets long (max 998)", i+1, len(line))
		}
	}
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, raw)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("content-type %q: %v", m.Header.Get("Content-Type"), err)
	}
	if mt != "multipart/alternative" {
		t.Fatalf("content-type = %q, want multipart/alternative", mt)
	}
	p := parsed{raw: raw, header: m.Header}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		pt, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		var body io.Reader = pt // multipart decodes quoted-printable itself
		if strings.EqualFold(pt.Header.Get("Content-Transfer-Encoding"), "base64") {
			t.Fatalf("unexpected base64 part")
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		ct, _, _ := mime.ParseMediaType(pt.Header.Get("Content-Type"))
		p.parts = append(p.parts, part{contentType: ct, body: string(b)})
	}
	return p
}

func compose(t *testing.T, c *Composer, rc ledger.Recipient) parsed {
	t.Helper()
	p, err := c.Prepare(testRendered())
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	m, err := p.Build(nil, rc)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return parseMessage(t, m.Data)
}

func TestCompose(t *testing.T) {
	c := testComposer(t, nil)
	dec := new(mime.WordDecoder)
	tests := []struct {
		name     string
		rc       ledger.Recipient
		wantName string
	}{
		{"ascii", ledger.Recipient{IssueID: "2026-05-04", SubscriberID: 7, Email: "ann@example.com", Name: "Ann Smith"}, "Ann Smith"},
		{"utf8 name", ledger.Recipient{IssueID: "2026-05-04", SubscriberID: 8, Email: "jo@example.com", Name: "Jöhn Dœ 山田"}, "Jöhn Dœ 山田"},
		{"quotes", ledger.Recipient{IssueID: "2026-05-04", SubscriberID: 9, Email: "q@example.com", Name: `Jane "JJ" Doe, Jr.`}, `Jane "JJ" Doe, Jr.`},
		{"crlf injection", ledger.Recipient{IssueID: "2026-05-04", SubscriberID: 10, Email: "x@example.com", Name: "Eve\r\nBcc: victim@example.com"}, "Eve Bcc: victim@example.com"},
		{"no name", ledger.Recipient{IssueID: "2026-05-04", SubscriberID: 11, Email: "n@example.com"}, ""},
		{"odd issue id", ledger.Recipient{IssueID: "2026/05 ..ü", SubscriberID: 12, Email: "o@example.com"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compose(t, c, tt.rc)
			h := p.header
			to, err := h.AddressList("To")
			if err != nil || len(to) != 1 {
				t.Fatalf("To %q: %v", h.Get("To"), err)
			}
			if to[0].Address != tt.rc.Email || to[0].Name != tt.wantName {
				t.Errorf("To = %q <%s>, want %q <%s>", to[0].Name, to[0].Address, tt.wantName, tt.rc.Email)
			}
			if _, ok := h["Bcc"]; ok {
				t.Errorf("a Bcc header was injected")
			}
			from, err := h.AddressList("From")
			if err != nil || from[0].Address != "news@example.org" || from[0].Name != "Digest Team" {
				t.Errorf("From = %q (%v)", h.Get("From"), err)
			}
			if got := h.Get("Reply-To"); !strings.Contains(got, "editor@example.org") {
				t.Errorf("Reply-To = %q", got)
			}
			subj, err := dec.DecodeHeader(h.Get("Subject"))
			if err != nil || subj != "Weekly digest — 4 May 2026" {
				t.Errorf("Subject = %q (%v)", subj, err)
			}
			if d, err := h.Date(); err != nil || !d.Equal(testNow) {
				t.Errorf("Date = %q (%v)", h.Get("Date"), err)
			}
			wantID := "<" + c.MessageID(tt.rc.IssueID, tt.rc.SubscriberID) + ">"
			if got := h.Get("Message-ID"); got != wantID {
				t.Errorf("Message-ID = %q, want %q", got, wantID)
			}
			if !regexp.MustCompile(`^<[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*@example\.org>$`).MatchString(wantID) {
				t.Errorf("Message-ID %q is not a valid ASCII dot-atom id", wantID)
			}
			unsub := c.UnsubscribeURL(tt.rc)
			if got := h.Get("List-Unsubscribe"); got != "<"+unsub+">" {
				t.Errorf("List-Unsubscribe = %q, want <%s>", got, unsub)
			}
			if !strings.HasPrefix(unsub, "https://digest.example.org/u/") {
				t.Errorf("unsubscribe URL %q", unsub)
			}
			if got := h.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
				t.Errorf("List-Unsubscribe-Post = %q", got)
			}
			if got := h.Get("List-Id"); got != `"The Weekly Digest" <the-weekly-digest.example.org>` {
				t.Errorf("List-Id = %q", got)
			}
			for k, v := range map[string]string{"Precedence": "bulk", "Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All", "Mime-Version": "1.0"} {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if len(p.parts) != 2 || p.parts[0].contentType != "text/plain" || p.parts[1].contentType != "text/html" {
				t.Fatalf("parts = %+v, want text/plain then text/html", p.parts)
			}
			text, html := p.parts[0].body, p.parts[1].body
			if !strings.Contains(text, "Unsubscribe: "+unsub) {
				t.Errorf("text part lacks the unsubscribe URL:\n%s", text)
			}
			if !strings.Contains(html, `href="`+unsub+`"`) {
				t.Errorf("html part lacks the unsubscribe link")
			}
			if !strings.Contains(text, "Hello "+tt.wantName+",") {
				t.Errorf("text part not personalized: %q", text[:40])
			}
			if !strings.Contains(html, "("+tt.rc.Email+")") || !strings.Contains(html, "ümlauts") {
				t.Errorf("html part not personalized or mangled")
			}
			if strings.Contains(text+html, "__DIGEST_") {
				t.Errorf("a slot token survived")
			}
		})
	}
}

func TestMessageIDStable(t *testing.T) {
	c := testComposer(t, nil)
	a := c.MessageID("2026-05-04", 1)
	if a != c.MessageID("2026-05-04", 1) {
		t.Errorf("Message-ID not stable")
	}
	seen := map[string]bool{a: true}
	for _, id := range []string{c.MessageID("2026-05-04", 2), c.MessageID("2026-05-11", 1), c.MessageID("2026/05/04", 1), c.MessageID("2026-05-04-", 1)} {
		if seen[id] {
			t.Errorf("Message-ID %q repeats", id)
		}
		seen[id] = true
	}
}

func TestListID(t *testing.T) {
	tests := []struct{ name, want string }{
		{"Weekly", `"Weekly" <weekly.example.org>`},
		{"", `<digest.example.org>`},
		{`A "quoted" \ name`, `"A \"quoted\" \\ name" <a-quoted-name.example.org>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := listID(tt.name, "example.org"); got != tt.want {
				t.Errorf("listID(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
	t.Run("utf8 long", func(t *testing.T) {
		name := "Le journal hebdomadaire de l'été — édition spéciale des nouvelles du monde"
		got := listID(name, "example.org")
		for _, line := range strings.Split(got, "\r\n") {
			if len(line) > 78 {
				t.Errorf("line too long (%d): %q", len(line), line)
			}
		}
		raw := "List-Id: " + got + "\r\n\r\n"
		m, err := netmail.ReadMessage(strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		v := m.Header.Get("List-Id")
		phrase, label, _ := strings.Cut(v, " <le-journal")
		dec, err := new(mime.WordDecoder).DecodeHeader(phrase)
		if err != nil || dec != name || !strings.HasPrefix(label, "-hebdomadaire") {
			t.Errorf("List-Id %q decodes to %q (%v)", v, dec, err)
		}
	})
}

func TestComposeTest(t *testing.T) {
	c := testComposer(t, nil)
	p, err := c.Prepare(testRendered())
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.BuildTest(nil, "Tess <tess@example.net>")
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Build(nil, ledger.Recipient{IssueID: "2026-05-04", Email: "tess@example.net", Test: true})
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := parseMessage(t, a.Data), parseMessage(t, b.Data)
	if pa.header.Get("Message-ID") == pb.header.Get("Message-ID") {
		t.Errorf("test copies share Message-ID %s", pa.header.Get("Message-ID"))
	}
	for _, p := range []parsed{pa, pb} {
		if subj, _ := new(mime.WordDecoder).DecodeHeader(p.header.Get("Subject")); !strings.HasPrefix(subj, "[TEST] Weekly digest") {
			t.Errorf("Subject = %q", subj)
		}
		if !regexp.MustCompile(`^<test\.[a-z0-9]+\.[0-9a-f]{16}@example\.org>$`).MatchString(p.header.Get("Message-ID")) {
			t.Errorf("Message-ID = %q", p.header.Get("Message-ID"))
		}
	}
	if _, err := p.BuildTest(nil, "not an address"); !errors.Is(err, ErrBadAddress) {
		t.Errorf("bad address: err = %v, want ErrBadAddress", err)
	}
}

func TestComposeBadAddress(t *testing.T) {
	c := testComposer(t, nil)
	p, err := c.Prepare(testRendered())
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Build(nil, ledger.Recipient{IssueID: "x", SubscriberID: 3, Email: "nope"})
	if !errors.Is(err, ErrBadAddress) || !strings.Contains(err.Error(), "subscriber 3") {
		t.Errorf("err = %v", err)
	}
}

type countHandler struct{ warns *atomic.Int32 }

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.warns.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

func TestHTTPBaseURLWarnsOnce(t *testing.T) {
	for _, tt := range []struct {
		base  string
		warns int32
	}{
		// Loopback is local use: a test, a mail catcher. No warning.
		{"http://127.0.0.1:8080", 0}, {"http://127.1.2.3", 0}, {"http://[::1]:8080", 0},
		{"http://localhost:8080", 0}, {"http://LocalHost.", 0}, {"http://digest.localhost", 0},
		{"https://x.example", 0}, {"https://127.0.0.1:8443", 0},
		// Anywhere else, readers' one-click unsubscribe needs https.
		{"http://news.example.org", 1}, {"http://203.0.113.7:8080", 1}, {"http://[2001:db8::1]", 1},
		{"http://localhost.example.org", 1}, {"http://10.0.0.2", 1},
	} {
		t.Run(tt.base, func(t *testing.T) {
			var n atomic.Int32
			c := testComposer(t, func(o *Options) { o.BaseURL = tt.base; o.Logger = slog.New(countHandler{&n}) })
			for i := range 3 {
				p := compose(t, c, ledger.Recipient{IssueID: "i", SubscriberID: int64(i), Email: "a@example.com"})
				if got := p.header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
					t.Errorf("List-Unsubscribe-Post = %q", got)
				}
				if !strings.HasPrefix(p.header.Get("List-Unsubscribe"), "<"+tt.base+"/u/") {
					t.Errorf("List-Unsubscribe = %q", p.header.Get("List-Unsubscribe"))
				}
			}
			if n.Load() != tt.warns {
				t.Errorf("%d warnings, want %d", n.Load(), tt.warns)
			}
		})
	}
}

func TestNewComposerErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"empty from", func(o *Options) { o.From = "" }, "from address is empty"},
		{"bad from", func(o *Options) { o.From = "Digest <nope" }, `from address "Digest <nope"`},
		{"bad reply-to", func(o *Options) { o.ReplyTo = "@@" }, "reply-to"},
		{"no secret", func(o *Options) { o.Secret = nil }, "secret is empty"},
		{"relative base", func(o *Options) { o.BaseURL = "/x" }, "base_url"},
		{"ftp base", func(o *Options) { o.BaseURL = "ftp://x.example" }, "base_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{From: "a@example.org", BaseURL: "https://x.example", Secret: []byte("s")}
			tt.mod(&o)
			_, err := NewComposer(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	t.Run("idn domain", func(t *testing.T) {
		c := testComposer(t, func(o *Options) { o.From = "news@bücher.example" })
		if id := c.MessageID("i", 1); !strings.HasSuffix(id, "@xn--bcher-kva.example") {
			t.Errorf("Message-ID %q: domain not punycode", id)
		}
	})
}

// benchIssue is a composer and a ~36 KB issue for the benchmarks.
func benchIssue(b *testing.B) (*Composer, *render.Rendered) {
	b.Helper()
	c, err := NewComposer(Options{ListName: "Bench", From: "news@example.org", BaseURL: "https://x.example", Secret: []byte("s")})
	if err != nil {
		b.Fatal(err)
	}
	html := strings.Repeat(`<p style="margin:0 0 12px">A teaser paragraph with a <a href="https://example.com/a/long/path?x=1">link</a>.</p>`, 240) +
		`<a href="` + render.TokenUnsubscribeURL + `">Unsubscribe</a>`
	return c, render.NewRendered("Bench issue", html, strings.Repeat("A teaser line of plain text.\n", 200)+render.TokenUnsubscribeURL)
}
