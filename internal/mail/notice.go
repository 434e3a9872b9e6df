package mail

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/digest/digest/internal/subscriber"
)

// Notice is a message to one address that is not an issue: the
// confirmation of a sign-up, or an unsubscribe link asked for on the web.
type Notice struct {
	To   string // the address
	Name string // the reader's name, if known
	// Kind names the notice in its Message-ID: letters and digits, such
	// as "confirm" or "link".
	Kind    string
	Subject string
	Text    string // the plain-text part
	HTML    string // the HTML part, a whole document
}

// Notice builds n as one message over the same header code as an issue:
// From, Reply-To, an RFC 2047 subject, Date, a fresh Message-ID in the From
// domain, List-Id, and a multipart/alternative body (text first, HTML last,
// quoted-printable); signed with DKIM when configured. It has no
// List-Unsubscribe and no Precedence: bulk, since the reader asked for it.
// An unparsable address gives an error wrapping ErrBadAddress.
func (c *Composer) Notice(n Notice) (Message, error) {
	to, err := recipientAddress(n.To, n.Name)
	if err != nil {
		return Message{}, fmt.Errorf("notice: %w", err)
	}
	if strings.TrimSpace(n.Subject) == "" || n.Text == "" || n.HTML == "" {
		return Message{}, errors.New("notice: subject, text and HTML are required")
	}
	boundary := "=_digest_" + randomHex() + randomHex()
	var b []byte
	b = append(b, "Date: "...)
	b = c.now().AppendFormat(b, "Mon, 02 Jan 2006 15:04:05 -0700")
	b = append(b, "\r\nMessage-ID: <"...)
	b = append(b, atomText(n.Kind)+"."+strconv.FormatInt(c.now().Unix(), 36)+"."+randomHex()+"@"+c.domain...)
	b = append(b, ">\r\n"...)
	b = appendHeader(b, "To", formatAddress(to.Name, to.Address))
	b = appendHeader(b, "From", formatAddress(c.from.Name, c.from.Address))
	if c.replyTo != nil {
		b = appendHeader(b, "Reply-To", formatAddress(subscriber.CleanName(c.replyTo.Name), c.replyTo.Address))
	}
	b = appendHeader(b, "Subject", encodeText(n.Subject))
	b = appendHeader(b, "MIME-Version", "1.0")
	b = append(b, "List-Id: "+c.listID+"\r\n"...) // already folded
	b = appendHeader(b, "Auto-Submitted", "auto-generated")
	b = appendHeader(b, "X-Auto-Response-Suppress", "All")
	b = append(b, "Content-Type: multipart/alternative;\r\n boundary=\""+boundary+"\"\r\n\r\n"...)
	if err := checkLines(b); err != nil {
		return Message{}, fmt.Errorf("notice to %s: headers: %w", to.Address, err)
	}
	for _, part := range []struct{ typ, body string }{{"text/plain", n.Text}, {"text/html", n.HTML}} {
		b = append(b, "--"+boundary+"\r\nContent-Type: "+part.typ+"; charset=UTF-8\r\n"+
			"Content-Transfer-Encoding: quoted-printable\r\n\r\n"...)
		var e qpEncoder
		b = e.end(e.append(b, part.body))
		b = append(b, "\r\n"...)
	}
	b = append(b, "--"+boundary+"--\r\n"...)

	m := Message{From: c.envelopeFrom, To: to.Address, Data: b}
	if c.dkim != nil {
		signed, err := c.dkim.sign(b)
		if err != nil {
			return Message{}, fmt.Errorf("dkim sign notice to %s: %w", to.Address, err)
		}
		m.Data = signed
	}
	return m, nil
}

// BaseURL is where the web endpoints live, without a trailing slash.
func (c *Composer) BaseURL() string { return c.baseURL }
