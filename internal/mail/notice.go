package mail

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// Notice builds n as one message with the header writer of an issue's
// messages (personalHead, listHead): Date, a fresh Message-ID in the From
// domain, To, From, Reply-To, an RFC 2047 subject, List-Id, and a
// multipart/alternative body (text first, HTML last, quoted-printable);
// signed with DKIM when configured. It has no
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
	msgID := atomText(n.Kind) + "." + strconv.FormatInt(c.now().Unix(), 36) + "." + randomHex() + "@" + c.domain
	b := c.listHead(c.personalHead(nil, msgID, to), n.Subject, boundary, false)
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
