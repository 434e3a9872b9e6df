// Package mail builds the MIME message of one issue for each recipient:
// addresses, a Message-ID derived from (issue, subscriber), the list headers
// bulk senders need (List-Id, RFC 8058 one-click List-Unsubscribe), and a
// multipart/alternative body, text first and HTML last. The issue is encoded
// once (Prepared) and each message, test copies included, is spliced from
// it: there is one message builder. It also signs and checks the
// unsubscribe tokens used in those URLs.
//
// It only builds messages; package deliver sends them (through go-mail's
// connection, TLS and AUTH).
package mail

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/subscriber"
	"github.com/digest/digest/internal/token"
)

// ErrBadAddress is wrapped by Prepared.Build, Prepared.BuildTest and
// Composer.Notice when a recipient address cannot be parsed: no attempt to
// send it can succeed.
var ErrBadAddress = errors.New("invalid recipient address")

// Options configures a Composer. From, BaseURL and Secret are required.
type Options struct {
	ListName string // newsletter name: List-Id phrase and label
	From     string // "Name <addr>" or a bare address
	ReplyTo  string // optional, same forms as From
	BaseURL  string // where the web endpoints live; unsubscribe is BaseURL/u/TOKEN
	Secret   []byte // signs unsubscribe tokens and salts Message-IDs
	// Now stamps the Date header; nil means time.Now. Injected so that
	// tests (and --now) are reproducible.
	Now func() time.Time
	// Logger receives the one warning about an http BaseURL off loopback; nil
	// discards it.
	Logger *slog.Logger
	// EnvelopeFrom is the SMTP envelope sender (MAIL FROM), where bounces
	// go; empty means the From address.
	EnvelopeFrom string
	// DKIM, when set, signs every message built by Prepared.
	DKIM *DKIMOptions
	// BounceAddress, when set, replaces EnvelopeFrom: each reader's
	// message goes out from its VERP form bounces+TOKEN@domain, the token
	// naming (issue, subscriber) under Secret (see VERPToken).
	BounceAddress string
}

// Composer builds the messages of any issue. It is safe for concurrent use:
// after NewComposer it is read-only.
type Composer struct {
	from    *netmail.Address
	replyTo *netmail.Address
	domain  string // ASCII (punycode) domain of From
	baseURL string // without trailing slash
	secret  []byte
	listID  string // preformatted List-Id value
	now     func() time.Time

	envelopeFrom string
	verp         bool // envelopeFrom is the bounce address: add each reader's token
	listName     string
	dkim         *dkimSigner // nil: no signing
}

// Loopback reports whether host names this machine's loopback interface:
// an address in 127.0.0.0/8 or ::1, localhost, or a name under .localhost
// (RFC 6761). It is the one rule of "local use": http links are fine there,
// and the preview needs no token.
func Loopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewComposer validates opts and returns a Composer. It logs one warning when
// BaseURL is http on a host other than this machine's loopback (127.0.0.0/8,
// ::1, localhost): receivers only honour one-click unsubscribe over https.
// A loopback URL is local use (a test, a mail catcher), where http is fine.
func NewComposer(opts Options) (*Composer, error) {
	from, domain, err := parseFrom(opts.From)
	if err != nil {
		return nil, err
	}
	c := &Composer{from: from, domain: domain, secret: opts.Secret, now: opts.Now}
	if c.now == nil {
		c.now = time.Now
	}
	if strings.TrimSpace(opts.ReplyTo) != "" {
		if c.replyTo, err = netmail.ParseAddress(opts.ReplyTo); err != nil {
			return nil, fmt.Errorf("mail: reply-to address %q: %w", opts.ReplyTo, err)
		}
	}
	if len(opts.Secret) == 0 {
		return nil, errors.New("mail: secret is empty: unsubscribe links cannot be signed (set secret or DIGEST_SECRET)")
	}
	if c.baseURL, err = baseURL(opts.BaseURL, opts.Logger); err != nil {
		return nil, err
	}
	c.listID = listID(opts.ListName, domain)
	c.envelopeFrom = from.Address
	if e := strings.TrimSpace(opts.EnvelopeFrom); e != "" {
		a, err := netmail.ParseAddress(e)
		if err != nil {
			return nil, fmt.Errorf("mail: envelope sender %q: %w", opts.EnvelopeFrom, err)
		}
		c.envelopeFrom = a.Address
	}
	if err := c.setBounceAddress(opts.BounceAddress); err != nil {
		return nil, err
	}
	c.listName = opts.ListName
	if opts.DKIM != nil {
		if c.dkim, err = warmDKIM(opts.DKIM, domain); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// setBounceAddress makes b (when set) the VERP base of the envelope
// sender.
func (c *Composer) setBounceAddress(b string) error {
	if strings.TrimSpace(b) == "" {
		return nil
	}
	a, err := netmail.ParseAddress(strings.TrimSpace(b))
	if err != nil || a.Name != "" || !strings.Contains(a.Address, "@") {
		return fmt.Errorf("mail: bounce address %q must be a bare address such as bounces@example.org", b)
	}
	c.envelopeFrom, c.verp = a.Address, true
	return nil
}

// parseFrom reads the From address and its domain in ASCII (IDNA), which
// Message-IDs and the List-Id use.
func parseFrom(raw string) (*netmail.Address, string, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, "", errors.New("mail: from address is empty")
	}
	from, err := netmail.ParseAddress(raw)
	if err != nil {
		return nil, "", fmt.Errorf("mail: from address %q: %w", raw, err)
	}
	at := strings.LastIndexByte(from.Address, '@')
	if at < 0 || at == len(from.Address)-1 {
		return nil, "", fmt.Errorf("mail: from address %q has no domain", raw)
	}
	domain, err := idna.Lookup.ToASCII(strings.ToLower(from.Address[at+1:]))
	if err != nil || domain == "" {
		return nil, "", fmt.Errorf("mail: from address %q: domain is not a valid host name: %v", raw, err)
	}
	return from, domain, nil
}

// baseURL checks the web endpoints' URL and returns it without a trailing
// slash, warning (once, on logger) when it is http off loopback.
func baseURL(raw string, logger *slog.Logger) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("mail: base_url %q must be an absolute http(s) URL without query", raw)
	}
	base := strings.TrimRight(u.String(), "/")
	if u.Scheme != "https" && !Loopback(u.Hostname()) {
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		logger.Warn("base_url is not https: one-click unsubscribe needs https in production", "base_url", base)
	}
	return base, nil
}

// warmDKIM makes the signer and signs once before any concurrent use: a
// fresh signer races on its first use from several goroutines.
func warmDKIM(o *DKIMOptions, domain string) (*dkimSigner, error) {
	d, err := newDKIMSigner(o)
	if err != nil {
		return nil, err
	}
	if _, err := d.sign([]byte("From: <x@" + domain + ">\r\n\r\n")); err != nil {
		return nil, fmt.Errorf("mail: dkim: %w", err)
	}
	return d, nil
}

// UnsubscribeURL is the one-click unsubscribe URL of a recipient, the same in
// the List-Unsubscribe header and in the body.
func (c *Composer) UnsubscribeURL(rc ledger.Recipient) string {
	return c.baseURL + "/u/" + token.Unsubscribe(c.secret, rc.SubscriberID, rc.IssueID, rc.Email)
}

// PreferencesURL is the link to a recipient's preferences page (name,
// topics, unsubscribe from everything), in every message's footer.
func (c *Composer) PreferencesURL(rc ledger.Recipient) string {
	return c.baseURL + "/p/" + token.Preferences(c.secret, rc.SubscriberID, rc.Email)
}

// MessageID returns the Message-ID (without angle brackets) of an issue sent
// to a subscriber. It depends only on them (and the secret), so a rare repeat
// after a crash carries the same id and receivers can recognise it.
func (c *Composer) MessageID(issueID string, subscriberID int64) string {
	return atomText(issueID) + "." + strconv.FormatInt(subscriberID, 10) + "." +
		hex.EncodeToString(messageIDMAC(c.secret, issueID, subscriberID)) + "@" + c.domain
}

// recipientAddress parses a subscriber's address and attaches the cleaned
// display name (go-mail encodes it per RFC 2047 when needed).
func recipientAddress(email, name string) (*netmail.Address, error) {
	a, err := netmail.ParseAddress(strings.TrimSpace(email))
	if err != nil {
		return nil, fmt.Errorf("address %q: %w: %v", email, ErrBadAddress, err)
	}
	if a.Name != "" && name == "" {
		name = a.Name
	}
	return &netmail.Address{Name: subscriber.CleanName(name), Address: a.Address}, nil
}

// atomText keeps the characters of s that are safe in a Message-ID's left
// part ([A-Za-z0-9_-]), replacing others with '-', so that the id stays ASCII
// and never has an empty, leading, trailing or doubled dot.
func atomText(s string) string {
	const maxLen = 40
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxLen {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "issue"
	}
	return b.String()
}

// listID returns the List-Id value (RFC 2919): a phrase naming the list and
// <slug.domain>. An ASCII name is a quoted string; any other is RFC 2047
// encoded (encoded-words are not allowed inside quotes). Long values are
// folded.
func listID(name, domain string) string {
	name = subscriber.CleanName(name)
	slug := slugify(name)
	label := "<" + slug + "." + domain + ">"
	if name == "" {
		return label
	}
	var phrase string
	if isPrintableASCII(name) {
		phrase = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
	} else {
		phrase = mime.QEncoding.Encode("UTF-8", name)
	}
	return fold("List-Id", phrase+" "+label)
}

func slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		return "digest"
	}
	return out
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// fold breaks a preformatted header value at spaces so that lines stay under
// 78 characters where the words allow it.
func fold(key, value string) string {
	const width = 78
	var b strings.Builder
	line := len(key) + 2
	for i, w := range strings.Split(value, " ") {
		if i > 0 {
			if line+1+len(w) > width {
				b.WriteString("\r\n ")
				line = 1
			} else {
				b.WriteByte(' ')
				line++
			}
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.String()
}

func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
