package mail

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"mime"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/render"
)

// trickyRendered has what can trip a spliced quoted-printable encoding:
// tokens at the very start and end, next to each other, after trailing
// spaces and tabs, inside long lines and lines far over 998 octets, '=' and
// '.' at line starts, CRLF and LF line ends, non-ASCII.
func trickyRendered() *render.Rendered {
	long := strings.Repeat("x", 2500)
	html := render.TokenName + `<p>Hi ` + render.TokenName + ` ` + "\t" + render.TokenEmail + render.TokenUnsubscribeURL + `</p>` + "\n" +
		".dot at start\n=equals at start \n" + strings.Repeat("é", 300) + render.TokenName + long + "\r\n" +
		`<a href="` + render.TokenUnsubscribeURL + `">x</a>   ` + "\n\n" + render.TokenUnsubscribeURL
	text := "Hello " + render.TokenName + ",   \n\t\n" + long + render.TokenEmail + " tail \r\n" +
		strings.Repeat("word ", 40) + render.TokenUnsubscribeURL + "\n"
	return render.NewRendered(strings.Repeat("Sübject ", 30)+"=?x?=", html, text)
}

func recipients() []ledger.Recipient {
	return []ledger.Recipient{
		{IssueID: "2026-05-04", SubscriberID: 1, Email: "ann@example.com", Name: "Ann"},
		{IssueID: "2026-05-04", SubscriberID: 2, Email: "bob+tag@example.com"},
		{IssueID: "2026-05-04", SubscriberID: 3, Email: "zoe@example.com", Name: `Zoë "Z" O'Brien \ Jr.`},
		{IssueID: "2026-05-04", SubscriberID: 4, Email: "long@example.com", Name: strings.Repeat("Averyveryverylongname", 20) + " " + strings.Repeat("ü", 150)},
		{IssueID: "2026-05-04", SubscriberID: 5, Email: "Caller <c@example.com>"},
		{IssueID: "2026-05-04", SubscriberID: 6, Email: "amp@example.com", Name: "A & B <co> =?utf-8?q?x?="},
		{IssueID: "2026-05-04", SubscriberID: 7, Email: "jp@example.com", Name: "日本語の名前"},
	}
}

// messageView is what a receiver makes of a message: decoded header values
// and decoded parts.
type messageView struct {
	headers map[string]string
	parts   []part
}

func view(t *testing.T, raw []byte) messageView {
	t.Helper()
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		for _, c := range line {
			if c >= 0x80 || c == '\n' || c == '\r' {
				t.Fatalf("line %d has a non-7-bit or bare line-end byte %#x", i+1, c)
			}
		}
	}
	p := parseMessage(t, raw)
	v := messageView{headers: map[string]string{}, parts: p.parts}
	dec := new(mime.WordDecoder)
	for _, k := range []string{"Subject", "Message-ID", "Date", "MIME-Version", "List-Id", "List-Unsubscribe",
		"List-Unsubscribe-Post", "Precedence", "Auto-Submitted", "X-Auto-Response-Suppress"} {
		s, err := dec.DecodeHeader(p.header.Get(k))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		v.headers[k] = s
	}
	for _, k := range []string{"From", "To", "Reply-To"} {
		if p.header.Get(k) == "" {
			continue
		}
		l, err := p.header.AddressList(k)
		if err != nil {
			t.Fatalf("%s %q: %v", k, p.header.Get(k), err)
		}
		v.headers[k] = fmt.Sprint(l)
	}
	return v
}

// TestPreparedDecodes checks what a receiver decodes of each spliced
// message against the issue rendered for that reader directly.
func TestPreparedDecodes(t *testing.T) {
	c := testComposer(t, nil)
	crlf := strings.NewReplacer("\r\n", "\n")
	for _, tr := range []struct {
		name string
		r    *render.Rendered
	}{{"plain", testRendered()}, {"tricky", trickyRendered()}} {
		p, err := c.Prepare(tr.r)
		if err != nil {
			t.Fatal(err)
		}
		var buf []byte
		for _, rc := range recipients() {
			t.Run(fmt.Sprintf("%s/%d", tr.name, rc.SubscriberID), func(t *testing.T) {
				m, err := p.Build(buf, rc)
				if err != nil {
					t.Fatal(err)
				}
				buf = m.Data
				to, err := recipientAddress(rc.Email, rc.Name)
				if err != nil {
					t.Fatal(err)
				}
				rc.Email = to.Address // links are bound to the address as parsed
				unsub := c.UnsubscribeURL(rc)
				personal := render.Personal{Name: to.Name, Email: to.Address, UnsubscribeURL: unsub, PreferencesURL: c.PreferencesURL(rc)}
				got := view(t, m.Data)
				want := map[string]string{
					"Subject":               strings.Join(strings.Fields(tr.r.Subject), " "),
					"Message-ID":            "<" + c.MessageID(rc.IssueID, rc.SubscriberID) + ">",
					"MIME-Version":          "1.0",
					"List-Unsubscribe":      "<" + unsub + ">",
					"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
					"Precedence":            "bulk",
					"Auto-Submitted":        "auto-generated",
					"To":                    fmt.Sprint([]*netmail.Address{to}),
					"From":                  fmt.Sprint([]*netmail.Address{{Address: "news@example.org", Name: "Digest Team"}}),
				}
				for k, w := range want {
					if got.headers[k] != w {
						t.Errorf("%s:\n got %q\nwant %q", k, got.headers[k], w)
					}
				}
				if len(got.parts) != 2 || got.parts[0].contentType != "text/plain" || got.parts[1].contentType != "text/html" {
					t.Fatalf("parts %+v", got.parts)
				}
				for i, w := range []string{tr.r.Text(personal), tr.r.HTML(personal)} {
					if g := crlf.Replace(got.parts[i].body); g != crlf.Replace(w) {
						t.Errorf("part %d (%s) differs:\n got %.300q\nwant %.300q", i, got.parts[i].contentType, g, w)
					}
				}
				if m.To != mustAddr(t, rc.Email) || m.From != "news@example.org" {
					t.Errorf("envelope %q → %q", m.From, m.To)
				}
				// Header lines stay under 998 (parseMessage checks); body
				// lines are quoted-printable, at most 76.
				_, body, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
				for i, line := range bytes.Split(body, []byte("\r\n")) {
					if len(line) > 76 {
						t.Errorf("body line %d is %d long: %.80q", i+1, len(line), line)
					}
				}
			})
		}
	}
}

func mustAddr(t *testing.T, s string) string {
	a, err := netmail.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a.Address
}

func TestPreparedBadAddressAndTest(t *testing.T) {
	c := testComposer(t, func(o *Options) { o.EnvelopeFrom = "bounces+digest@example.org" })
	p, err := c.Prepare(testRendered())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Build(nil, ledger.Recipient{SubscriberID: 9, Email: "not an address"}); err == nil || !strings.Contains(err.Error(), "invalid recipient") {
		t.Errorf("bad address: %v", err)
	}
	m, err := p.BuildTest(nil, "Editor <ed@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	v := view(t, m.Data)
	if !strings.HasPrefix(v.headers["Subject"], "[TEST] ") || !strings.HasPrefix(v.headers["Message-ID"], "<test.") {
		t.Errorf("test copy headers %v", v.headers)
	}
	if m.From != "bounces+digest@example.org" || m.To != "ed@example.com" {
		t.Errorf("envelope %q → %q", m.From, m.To)
	}
}

func writeKey(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDKIM(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	tests := []struct {
		name   string
		key    any
		record string
	}{
		{"rsa", rsaKey, "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(rsaPub)},
		{"ed25519", edKey, "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edPub)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ReadDKIMKey(writeKey(t, tt.key))
			if err != nil {
				t.Fatal(err)
			}
			c := testComposer(t, func(o *Options) {
				o.DKIM = &DKIMOptions{Domain: "example.org", Selector: "sel", Key: key}
			})
			p, err := c.Prepare(trickyRendered())
			if err != nil {
				t.Fatal(err)
			}
			m, err := p.Build(nil, recipients()[2])
			if err != nil {
				t.Fatal(err)
			}
			lookup := func(domain string) ([]string, error) {
				if domain != "sel._domainkey.example.org" {
					return nil, fmt.Errorf("no record for %s", domain)
				}
				return []string{tt.record}, nil
			}
			verify := func(data []byte) error {
				vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{LookupTXT: lookup})
				if err != nil {
					return err
				}
				if len(vs) != 1 {
					return fmt.Errorf("%d signatures", len(vs))
				}
				if vs[0].Err != nil {
					return vs[0].Err
				}
				for _, h := range []string{"From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"} {
					found := false
					for _, k := range vs[0].HeaderKeys {
						found = found || strings.EqualFold(k, h)
					}
					if !found {
						return fmt.Errorf("%s not signed (h=%v)", h, vs[0].HeaderKeys)
					}
				}
				return nil
			}
			if err := verify(m.Data); err != nil {
				t.Fatalf("verify: %v", err)
			}
			view(t, m.Data) // still a valid message
			// Tampering with a signed header or the body breaks it.
			bad := bytes.Replace(m.Data, []byte("List-Unsubscribe: <https://"), []byte("List-Unsubscribe: <http://"), 1)
			if err := verify(bad); err == nil {
				t.Error("changed List-Unsubscribe still verifies")
			}
			bad = bytes.Replace(m.Data, []byte("Hello"), []byte("Hallo"), 1)
			if err := verify(bad); err == nil {
				t.Error("changed body still verifies")
			}
		})
	}
}

func TestDKIMErrors(t *testing.T) {
	if _, err := ParseDKIMKey([]byte("junk")); err == nil {
		t.Error("junk key accepted")
	}
	if _, err := ReadDKIMKey(filepath.Join(t.TempDir(), "missing.pem")); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("missing file: %v", err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	_, err := NewComposer(Options{From: "a@example.org", BaseURL: "https://x.example", Secret: []byte("s"),
		DKIM: &DKIMOptions{Domain: "example.org", Key: edKey}})
	if err == nil || !strings.Contains(err.Error(), "selector") {
		t.Errorf("no selector: %v", err)
	}
}

func BenchmarkPreparedBuild(b *testing.B) {
	c, r := benchIssue(b)
	p, err := c.Prepare(r)
	if err != nil {
		b.Fatal(err)
	}
	rc := ledger.Recipient{IssueID: "2026-05-04", SubscriberID: 1, Email: "a@example.com", Name: "Ann"}
	var buf []byte
	for b.Loop() {
		m, err := p.Build(buf, rc)
		if err != nil {
			b.Fatal(err)
		}
		buf = m.Data
	}
	b.ReportMetric(float64(len(buf)), "bytes/msg")
	_, _ = io.Discard.Write(buf)
}

func BenchmarkPreparedBuildDKIM(b *testing.B) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, k := range []struct {
		name string
		key  crypto.Signer
	}{{"rsa2048", rsaKey}, {"ed25519", edKey}} {
		b.Run(k.name, func(b *testing.B) {
			c, err := NewComposer(Options{From: "news@example.org", BaseURL: "https://x.example", Secret: []byte("s"),
				DKIM: &DKIMOptions{Domain: "example.org", Selector: "s", Key: k.key}})
			if err != nil {
				b.Fatal(err)
			}
			html := strings.Repeat(`<p style="margin:0 0 12px">A teaser paragraph with a <a href="https://example.com/a/long/path?x=1">link</a>.</p>`, 240) +
				`<a href="` + render.TokenUnsubscribeURL + `">Unsubscribe</a>`
			p, err := c.Prepare(render.NewRendered("Bench issue", html, strings.Repeat("A teaser line of plain text.\n", 200)))
			if err != nil {
				b.Fatal(err)
			}
			rc := ledger.Recipient{IssueID: "2026-05-04", SubscriberID: 1, Email: "a@example.com", Name: "Ann"}
			for b.Loop() {
				if _, err := p.Build(nil, rc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
