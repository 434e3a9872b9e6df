package bounce

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"regexp"
	"strings"
)

// DefaultMaxSize is the largest message Parse reads when Options.MaxSize is
// zero: a bounce with the whole original attached is the size of an issue,
// far below it.
const DefaultMaxSize = 10 << 20

const (
	maxDepth = 4  // nested messages (a DSN forwarded inside a message)
	maxParts = 64 // MIME entities looked at in one message
	maxNest  = 8  // multipart levels within one message
	// copyFactor times MaxSize bounds the bytes a walk copies out of
	// parts: each level copies its part, so a deep tree of one big part
	// would otherwise cost its size at every level.
	copyFactor = 4
	maxHops    = 50 // Received headers: more is a mail loop (RFC 5321 6.3)
	maxTokens  = 8  // candidates of each sort checked against the store
)

// Options configures a Parser.
type Options struct {
	// BounceAddress is the VERP base, such as bounces@news.example.org;
	// empty: no VERP tokens are looked for.
	BounceAddress string
	// MaxSize is the largest message read, in bytes; larger ones are
	// Unmatched. Zero means DefaultMaxSize.
	MaxSize int
}

// Parser reads returned messages. It is safe for concurrent use.
type Parser struct {
	bounce  string // lower-case bounce address
	verpRe  *regexp.Regexp
	maxSize int
}

// NewParser returns a Parser.
func NewParser(o Options) *Parser {
	p := &Parser{maxSize: o.MaxSize}
	if p.maxSize <= 0 {
		p.maxSize = DefaultMaxSize
	}
	if local, domain, ok := strings.Cut(strings.ToLower(strings.TrimSpace(o.BounceAddress)), "@"); ok {
		p.bounce = local + "@" + domain
		p.verpRe = regexp.MustCompile(`(?i)` + regexp.QuoteMeta(local) + `\+([A-Za-z0-9_-]{16,100})@` + regexp.QuoteMeta(domain))
	}
	return p
}

// MaxSize is the largest message the parser reads.
func (p *Parser) MaxSize() int { return p.maxSize }

// Parse reads one message from r (at most MaxSize+1 bytes: the caller
// drains the rest if it must) delivered to envelopeTo (the SMTP RCPT TO, or
// empty when unknown), and says what it is.
func (p *Parser) Parse(r io.Reader, envelopeTo string) Verdict {
	data, err := io.ReadAll(io.LimitReader(r, int64(p.maxSize)+1))
	if err != nil {
		return Verdict{Kind: Unmatched, Reason: "reading the message: " + err.Error()}
	}
	if len(data) > p.maxSize {
		return Verdict{Kind: Unmatched, Reason: fmt.Sprintf("message larger than %d bytes", p.maxSize)}
	}
	return p.ParseBytes(data, envelopeTo)
}

// ParseBytes is Parse of a message in memory.
func (p *Parser) ParseBytes(data []byte, envelopeTo string) Verdict {
	if len(data) > p.maxSize {
		return Verdict{Kind: Unmatched, Reason: fmt.Sprintf("message larger than %d bytes", p.maxSize)}
	}
	w := &walker{p: p, seen: map[string]bool{}}
	if t := p.VERPToken(envelopeTo); t != "" {
		w.add(&w.tokens.VERP, t)
	}
	v := w.message(data, 0)
	v.Tokens = w.tokens
	return v
}

// VERPToken returns the token of a VERP form of the bounce address
// (bounces+TOKEN@domain), or "".
func (p *Parser) VERPToken(addr string) string {
	if p.verpRe == nil {
		return ""
	}
	m := p.verpRe.FindStringSubmatch(addr)
	if m == nil {
		return ""
	}
	return m[1]
}

// IsBounceAddress reports whether addr is the bounce address or one of its
// VERP forms (case-insensitively).
func (p *Parser) IsBounceAddress(addr string) bool {
	a := strings.ToLower(strings.Trim(strings.TrimSpace(addr), "<>"))
	if p.bounce == "" {
		return false
	}
	if a == p.bounce {
		return true
	}
	m := p.verpRe.FindStringIndex(a)
	return m != nil && m[0] == 0 && m[1] == len(a)
}

// walker collects what one message's MIME tree holds.
type walker struct {
	p      *Parser
	tokens Tokens
	seen   map[string]bool
	parts  int
	nest   int // multipart levels entered
	copied int // bytes of parts copied out of their parents
}

// entity is one MIME entity, its body decoded.
type entity struct {
	header textproto.MIMEHeader
	media  string
	params map[string]string
	body   []byte
}

// found is what a walk of one message's tree collects.
type found struct {
	dsn, arf   []byte   // the first message/delivery-status and feedback-report bodies
	texts      []string // text/plain leaves, in order
	embedded   [][]byte // message/rfc822 bodies
	reportType string
}

var (
	messageIDRe = regexp.MustCompile(`[A-Za-z0-9_-]{1,40}\.[0-9]{1,19}\.[0-9a-f]{16}@[A-Za-z0-9.-]{1,253}`)
	unsubRe     = regexp.MustCompile(`/u/([A-Za-z0-9_-]{20,256})`)
)

func (w *walker) add(list *[]string, t string) {
	if len(*list) >= maxTokens || w.seen[t] {
		return
	}
	w.seen[t] = true
	*list = append(*list, t)
}

// scan looks for token candidates anywhere in b: they are all signed, so
// a false candidate costs one check and names nobody.
func (w *walker) scan(b []byte) {
	s := string(b)
	if w.p.verpRe != nil {
		for _, m := range w.p.verpRe.FindAllStringSubmatch(s, maxTokens) {
			w.add(&w.tokens.VERP, m[1])
		}
	}
	for _, m := range messageIDRe.FindAllString(s, maxTokens) {
		w.add(&w.tokens.MessageIDs, m)
	}
	for _, m := range unsubRe.FindAllStringSubmatch(s, maxTokens) {
		w.add(&w.tokens.Unsubscribe, m[1])
	}
}

// message reads one RFC 5322 message and returns its verdict.
func (w *walker) message(data []byte, depth int) Verdict {
	m, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return Verdict{Kind: Unmatched, Reason: "not a mail message: " + err.Error()}
	}
	h := textproto.MIMEHeader(m.Header)
	if n := len(h.Values("Received")); n > maxHops {
		return Verdict{Kind: Unmatched, Reason: fmt.Sprintf("mail loop: %d Received headers", n)}
	}
	if depth == 0 && w.fromUs(h) {
		return Verdict{Kind: Unmatched, Reason: "mail loop: the message comes from the bounce address"}
	}
	body, _ := io.ReadAll(m.Body)
	w.scan(data)
	var f found
	w.walk(entityOf(h, body), depth, &f)
	return w.judge(h, &f, depth)
}

// fromUs reports a message sent from the bounce address itself (a test
// copy mailed to it, a forwarder looping our mail back).
func (w *walker) fromUs(h textproto.MIMEHeader) bool {
	for _, k := range []string{"From", "Sender", "Return-Path"} {
		if a, err := netmail.ParseAddress(h.Get(k)); err == nil && w.p.IsBounceAddress(a.Address) {
			return true
		}
	}
	return false
}

func entityOf(h textproto.MIMEHeader, raw []byte) entity {
	media, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		media = "text/plain"
	}
	return entity{header: h, media: strings.ToLower(media), params: params, body: decode(h.Get("Content-Transfer-Encoding"), raw)}
}

// decode undoes a content transfer encoding; a broken encoding gives what
// could be read.
func decode(cte string, raw []byte) []byte {
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(bytes.NewReader(raw))
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, newlineStripper{bytes.NewReader(raw)})
	default:
		return raw
	}
	out, _ := io.ReadAll(r)
	return out
}

// newlineStripper drops CR, LF and spaces, which the base64 decoder would
// refuse.
type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	j := 0
	for _, c := range p[:k] {
		if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
			p[j] = c
			j++
		}
	}
	return j, err
}

// walk collects the parts of e's tree that matter.
func (w *walker) walk(e entity, depth int, f *found) {
	w.parts++
	if w.parts > maxParts {
		return
	}
	switch {
	case strings.HasPrefix(e.media, "multipart/"):
		if e.media == "multipart/report" && f.reportType == "" {
			f.reportType = strings.ToLower(e.params["report-type"])
		}
		if w.nest >= maxNest {
			return
		}
		w.nest++
		defer func() { w.nest-- }()
		mr := multipart.NewReader(bytes.NewReader(e.body), e.params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if err != nil {
				return
			}
			budget := int64(copyFactor*w.p.MaxSize() - w.copied)
			if budget <= 0 {
				return
			}
			raw, _ := io.ReadAll(io.LimitReader(part, budget))
			w.copied += len(raw)
			w.walk(entityOf(part.Header, raw), depth, f)
		}
	case e.media == "message/delivery-status", e.media == "message/global-delivery-status":
		if f.dsn == nil {
			f.dsn = e.body
		}
	case e.media == "message/feedback-report":
		if f.arf == nil {
			f.arf = e.body
		}
	case e.media == "message/rfc822", e.media == "message/global":
		w.scan(e.body)
		f.embedded = append(f.embedded, e.body)
	case e.media == "text/rfc822-headers", e.media == "text/plain", e.media == "text/html":
		w.scan(e.body)
		if e.media == "text/plain" {
			f.texts = append(f.texts, string(e.body))
		}
	}
}

// judge decides what the collected parts say.
func (w *walker) judge(h textproto.MIMEHeader, f *found, depth int) Verdict {
	switch {
	case f.arf != nil || f.reportType == "feedback-report":
		return arfVerdict(f.arf)
	case f.dsn != nil:
		v := dsnVerdict(f.dsn)
		v.Format = dsnFormat(h)
		return v
	}
	bounced := looksLikeBounce(h, f.texts)
	var tv Verdict
	if bounced {
		if tv = textVerdict(h, strings.Join(f.texts, "\n")); tv.Kind != Unmatched {
			return tv
		}
	}
	// A report forwarded inside another message ("Fwd: Undelivered
	// Mail"): the inner one says what happened.
	if depth < maxDepth {
		for _, inner := range f.embedded {
			if v := w.message(inner, depth+1); v.Kind != Unmatched && v.Kind != AutoReply {
				return v
			}
		}
	}
	if bounced {
		return tv
	}
	if isAutoReply(h) {
		return Verdict{Kind: AutoReply, Format: "auto-reply", Diagnostic: oneLine(h.Get("Subject"))}
	}
	return Verdict{Kind: Unmatched, Reason: "neither a bounce, a complaint nor an auto-reply", Diagnostic: oneLine(h.Get("Subject"))}
}
