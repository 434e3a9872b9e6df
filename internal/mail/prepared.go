package mail

import (
	"bytes"
	"fmt"
	"html"
	netmail "net/mail"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/render"
	"github.com/digest/digest/internal/subscriber"
)

// maxLine is the longest line RFC 5322 allows, CRLF excluded.
const maxLine = 998

// Message is one recipient's message as it goes over the wire.
type Message struct {
	From string // envelope sender (MAIL FROM)
	To   string // envelope recipient (RCPT TO)
	// Data is the whole RFC 5322 message: 7-bit, CRLF line ends, no line
	// longer than 998 octets, not dot-stuffed.
	Data []byte
	// Issue is the id of the issue the message is a copy of, for
	// transports that file messages (the file transport); empty for a
	// message outside any issue, such as a notice.
	Issue string
	// Test marks a test copy (BuildTest), which such transports keep apart
	// from delivered messages.
	Test bool
}

// Prepared is an issue encoded once for many recipients: the headers that
// are the same for everyone, the multipart/alternative body (text first,
// HTML last) quoted-printable encoded, and the positions of the personal
// values. Building one recipient's message writes four headers, copies the
// shared bytes and encodes a few short values (plus a DKIM signature when
// configured). It is safe for concurrent use.
type Prepared struct {
	c        *Composer
	head     []byte // shared headers, the blank line included
	testHead []byte // the same with the "[TEST] " subject
	segs     [][]byte
	slots    []slot // slots[i] follows segs[i]
	size     int    // bytes of head and segs
}

type slot struct {
	which render.Slot
	html  bool // HTML-escape the value
}

// Prepare encodes issue r once; Build then makes each recipient's message.
func (c *Composer) Prepare(r *render.Rendered) (*Prepared, error) {
	boundary := "=_digest_" + randomHex() + randomHex()
	p := &Prepared{c: c}
	p.head = c.sharedHead(r.Subject, boundary)
	p.testHead = c.sharedHead("[TEST] "+r.Subject, boundary)
	for _, h := range [][]byte{p.head, p.testHead} {
		if err := checkLines(h); err != nil {
			return nil, fmt.Errorf("mail: headers of issue %q: %w", r.Subject, err)
		}
	}

	// The parts as render split them at their personal slots.
	var cur []byte
	cur = append(cur, "--"+boundary+"\r\nContent-Type: text/plain; charset=UTF-8\r\n"+
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"...)
	parts, slots := r.TextSegments()
	cur = p.addPart(cur, parts, slots, false)
	cur = append(cur, "\r\n--"+boundary+"\r\nContent-Type: text/html; charset=UTF-8\r\n"+
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"...)
	parts, slots = r.HTMLSegments()
	cur = p.addPart(cur, parts, slots, true)
	cur = append(cur, "\r\n--"+boundary+"--\r\n"...)
	p.segs = append(p.segs, cur)
	p.size = len(p.head)
	for _, s := range p.segs {
		p.size += len(s)
	}
	return p, nil
}

// addPart encodes one part's segments onto cur, cutting a new segment at
// each slot (slots[i] follows parts[i]).
func (p *Prepared) addPart(cur []byte, parts []string, slots []render.Slot, isHTML bool) []byte {
	var e qpEncoder
	for i, part := range parts {
		if i == len(slots) {
			return e.append(cur, part)
		}
		cur = e.end(e.append(cur, part))
		p.segs = append(p.segs, cur)
		p.slots = append(p.slots, slot{which: slots[i], html: isHTML})
		cur = nil
	}
	return cur
}

// sharedHead writes the headers every recipient gets.
func (c *Composer) sharedHead(subject, boundary string) []byte {
	return c.listHead(nil, subject, boundary, true)
}

// listHead appends the headers that are the same for every recipient of a
// message from the list, issue or notice: From, Reply-To, Subject, List-Id,
// the auto-reply suppressors and the multipart Content-Type, then the blank
// line. An issue (bulk) also gets List-Unsubscribe-Post and Precedence:
// bulk; a notice, which the reader asked for, does not.
func (c *Composer) listHead(b []byte, subject, boundary string, bulk bool) []byte {
	b = appendHeader(b, "From", formatAddress(c.from.Name, c.from.Address))
	if c.replyTo != nil {
		b = appendHeader(b, "Reply-To", formatAddress(subscriber.CleanName(c.replyTo.Name), c.replyTo.Address))
	}
	b = appendHeader(b, "Subject", encodeText(subject))
	b = appendHeader(b, "MIME-Version", "1.0")
	b = append(b, "List-Id: "+c.listID+"\r\n"...) // already folded
	if bulk {
		b = appendHeader(b, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
		b = appendHeader(b, "Precedence", "bulk")
	}
	b = appendHeader(b, "Auto-Submitted", "auto-generated")
	b = appendHeader(b, "X-Auto-Response-Suppress", "All")
	b = append(b, "Content-Type: multipart/alternative;\r\n boundary=\""+boundary+"\"\r\n\r\n"...)
	return b
}

// personalHead appends the headers of one recipient's copy: Date,
// Message-ID (msgID, without brackets) and To.
func (c *Composer) personalHead(b []byte, msgID string, to *netmail.Address) []byte {
	b = append(b, "Date: "...)
	b = c.now().AppendFormat(b, "Mon, 02 Jan 2006 15:04:05 -0700")
	b = append(b, "\r\nMessage-ID: <"...)
	b = append(b, msgID...)
	b = append(b, ">\r\n"...)
	return appendHeader(b, "To", formatAddress(to.Name, to.Address))
}

// Size is the approximate size of one message in bytes.
func (p *Prepared) Size() int { return p.size + 512 }

// Build appends rc's message to dst[:0] (pass a buffer to reuse between
// messages, or nil) and returns it. A recipient marked Test gets a test copy
// (see BuildTest), addressed to rc.Email with rc.Name. The message carries
// rc.IssueID as its Issue. An unparsable address gives an error wrapping
// ErrBadAddress.
func (p *Prepared) Build(dst []byte, rc ledger.Recipient) (Message, error) {
	if rc.Test {
		to := rc.Email
		if rc.Name != "" {
			to = (&netmail.Address{Name: subscriber.CleanName(rc.Name), Address: rc.Email}).String()
		}
		m, err := p.BuildTest(dst, to)
		if err != nil {
			return Message{}, err
		}
		m.Issue = rc.IssueID
		return m, nil
	}
	to, err := recipientAddress(rc.Email, rc.Name)
	if err != nil {
		return Message{}, fmt.Errorf("subscriber %d: %w", rc.SubscriberID, err)
	}
	rc.Email = to.Address
	m, err := p.build(dst, to, rc.IssueID, rc.SubscriberID, p.c.MessageID(rc.IssueID, rc.SubscriberID), p.c.UnsubscribeURL(rc), p.c.PreferencesURL(rc), p.head)
	if err != nil {
		return Message{}, err
	}
	m.Issue = rc.IssueID
	return m, nil
}

// BuildTest makes a test copy (`send --to ADDR`, the preview's test send):
// the very message a reader gets, but the subject is prefixed with
// "[TEST] ", the Message-ID is fresh on every call so that test copies never
// look like repeats, and the unsubscribe link belongs to no subscriber. The
// message is marked Test; its Issue is left empty (Build sets it).
func (p *Prepared) BuildTest(dst []byte, to string) (Message, error) {
	addr, err := netmail.ParseAddress(to)
	if err != nil {
		return Message{}, fmt.Errorf("test recipient %q: %w: %v", to, ErrBadAddress, err)
	}
	addr.Name = subscriber.CleanName(addr.Name)
	test := ledger.Recipient{IssueID: "test", SubscriberID: 0, Email: addr.Address}
	unsub, prefs := p.c.UnsubscribeURL(test), p.c.PreferencesURL(test)
	msgID := "test." + strconv.FormatInt(p.c.now().Unix(), 36) + "." + randomHex() + "@" + p.c.domain
	m, err := p.build(dst, addr, test.IssueID, 0, msgID, unsub, prefs, p.testHead)
	if err != nil {
		return Message{}, err
	}
	m.Test = true
	return m, nil
}

func (p *Prepared) build(dst []byte, to *netmail.Address, issueID string, subscriberID int64, msgID, unsub, prefs string, head []byte) (Message, error) {
	if cap(dst) < p.size+1024 {
		dst = make([]byte, 0, p.size+1024)
	}
	b := p.c.personalHead(dst[:0], msgID, to)
	b = append(b, "List-Unsubscribe: <"...)
	b = append(b, unsub...)
	b = append(b, ">\r\n"...)
	b = appendHeader(b, "Feedback-ID", p.c.FeedbackID(issueID))
	b = append(b, head...)
	for i, seg := range p.segs {
		b = append(b, seg...)
		if i < len(p.slots) {
			s := p.slots[i]
			v := render.Personal{Name: to.Name, Email: to.Address, UnsubscribeURL: unsub, PreferencesURL: prefs}.Value(s.which)
			if s.html {
				v = html.EscapeString(v)
			}
			b = qpValue(b, v)
		}
	}
	m := Message{From: p.c.envelopeFrom, To: to.Address, Data: b}
	if p.c.verp && subscriberID != 0 {
		m.From = VERPAddress(p.c.envelopeFrom, VERPToken(p.c.secret, subscriberID, issueID, to.Address))
	}
	if p.c.dkim != nil {
		signed, err := p.c.dkim.sign(b)
		if err != nil {
			return Message{}, fmt.Errorf("dkim sign message to %s: %w", to.Address, err)
		}
		m.Data = signed
	}
	return m, nil
}

// appendHeader writes "Key: value\r\n", folding value at spaces so that lines
// stay under 78 characters where the words allow.
func appendHeader(b []byte, key, value string) []byte {
	b = append(b, key...)
	b = append(b, ": "...)
	if len(key)+2+len(value) <= 78 {
		b = append(b, value...)
	} else {
		b = append(b, fold(key, value)...)
	}
	return append(b, '\r', '\n')
}

// formatAddress renders a mailbox: a printable ASCII name as a quoted
// string, any other name RFC 2047 encoded, always in words short enough to
// fold.
func formatAddress(name, addr string) string {
	if name == "" {
		return "<" + addr + ">"
	}
	if isPrintableASCII(name) && !hasLongWord(name) {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `" <` + addr + ">"
	}
	return encodeWords(name) + " <" + addr + ">"
}

// encodeText renders an unstructured header value (Subject).
func encodeText(s string) string {
	s = strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)), " ")
	if isPrintableASCII(s) && !hasLongWord(s) && !strings.Contains(s, "=?") {
		return s
	}
	return encodeWords(s)
}

func hasLongWord(s string) bool {
	for _, w := range strings.Fields(s) {
		if len(w) > 60 {
			return true
		}
	}
	return false
}

// encodeWords encodes s as RFC 2047 Q encoded-words of at most 75
// characters each, separated by spaces (so the header can fold between
// them), never splitting a UTF-8 sequence.
func encodeWords(s string) string {
	const prefix, suffix = "=?UTF-8?q?", "?="
	var out, word strings.Builder
	flush := func() {
		if word.Len() == 0 {
			return
		}
		if out.Len() > 0 {
			out.WriteByte(' ')
		}
		out.WriteString(prefix + word.String() + suffix)
		word.Reset()
	}
	var buf [utf8.UTFMax * 3]byte
	for _, r := range s {
		enc := buf[:0]
		switch {
		case r == ' ':
			enc = append(enc, '_')
		case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("!*+-/", r)):
			enc = append(enc, byte(r))
		default:
			var u [utf8.UTFMax]byte
			n := utf8.EncodeRune(u[:], r)
			for _, c := range u[:n] {
				enc = append(enc, '=', hexDigits[c>>4], hexDigits[c&0x0f])
			}
		}
		if len(prefix)+word.Len()+len(enc)+len(suffix) > 75 {
			flush()
		}
		word.Write(enc)
	}
	flush()
	return out.String()
}

// checkLines reports a line longer than RFC 5322 allows.
func checkLines(b []byte) error {
	for n := 1; len(b) > 0; n++ {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			i = len(b)
		}
		if i > maxLine {
			return fmt.Errorf("line %d is %d octets long, more than %d", n, i, maxLine)
		}
		b = b[min(i+2, len(b)):]
	}
	return nil
}

// dkimSigner signs built messages.
type dkimSigner struct {
	opts dkim.SignOptions
}

// DKIMSignedHeaders are the header fields a DKIM signature covers: those RFC
// 8058 and the large receivers ask for, and the ones that shape the body.
var DKIMSignedHeaders = []string{"From", "To", "Subject", "Date", "Message-ID",
	"List-Unsubscribe", "List-Unsubscribe-Post", "List-Id", "Reply-To", "MIME-Version", "Content-Type",
	"Feedback-ID"}

func (d *dkimSigner) sign(msg []byte) ([]byte, error) {
	s, err := dkim.NewSigner(&d.opts)
	if err != nil {
		return nil, err
	}
	if _, err := s.Write(msg); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	sig := s.Signature()
	out := make([]byte, 0, len(sig)+len(msg))
	out = append(out, sig...)
	return append(out, msg...), nil
}
