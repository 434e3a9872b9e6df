package preview

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
)

// Field is one header field of a message: its name, and its value unfolded
// and with RFC 2047 encoded-words decoded.
type Field struct {
	Name, Value string
}

// Parsed is a message taken apart the way a mail client does: the headers
// verbatim and decoded, and the decoded text and HTML parts. The preview
// shows a reader's message from these, never from the renderer's output,
// so that what an editor sees is what goes over the wire.
type Parsed struct {
	// Header is the header block exactly as sent (folded lines kept), with
	// LF line ends for display.
	Header  string
	Fields  []Field
	Subject string // decoded
	Text    string // the text/plain part, decoded
	HTML    string // the text/html part, decoded
	Size    int    // bytes of the whole message
}

// Get returns the decoded value of the first field called name, or "".
func (p Parsed) Get(name string) string {
	for _, f := range p.Fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// ParseMessage parses an RFC 5322 message with a text/plain, text/html or
// multipart body (nested multiparts included); quoted-printable and base64
// parts are decoded.
func ParseMessage(data []byte) (Parsed, error) {
	p := Parsed{Size: len(data)}
	end := bytes.Index(data, []byte("\r\n\r\n"))
	sep := 4
	if end < 0 {
		if end = bytes.Index(data, []byte("\n\n")); end < 0 {
			return p, errors.New("message: no blank line after the headers")
		}
		sep = 2
	}
	head := string(data[:end])
	p.Header = strings.ReplaceAll(head, "\r\n", "\n")
	dec := mime.WordDecoder{}
	hdr := textproto.MIMEHeader{}
	for _, line := range strings.Split(p.Header, "\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(p.Fields) > 0 {
			last := &p.Fields[len(p.Fields)-1]
			last.Value += " " + strings.TrimSpace(line)
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return p, fmt.Errorf("message: header line %q has no colon", line)
		}
		p.Fields = append(p.Fields, Field{Name: name, Value: strings.TrimSpace(value)})
	}
	for i, f := range p.Fields {
		hdr.Add(f.Name, f.Value)
		if v, err := dec.DecodeHeader(f.Value); err == nil {
			p.Fields[i].Value = v
		}
	}
	p.Subject = p.Get("Subject")
	body := data[end+sep:]
	if err := p.walk(hdr, bytes.NewReader(body)); err != nil {
		return p, err
	}
	return p, nil
}

// walk reads one entity (the message, or a part of it) with header h.
func (p *Parsed) walk(h textproto.MIMEHeader, body io.Reader) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("message: Content-Type %q: %w", ct, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		r := multipart.NewReader(body, params["boundary"])
		for {
			part, err := r.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("message: %s: %w", mt, err)
			}
			// NextPart has decoded quoted-printable and removed the header.
			if err := p.walk(part.Header, part); err != nil {
				return err
			}
		}
	}
	body, err = decode(h.Get("Content-Transfer-Encoding"), body)
	if err != nil {
		return fmt.Errorf("message: %s part: %w", mt, err)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("message: %s part: %w", mt, err)
	}
	switch {
	case mt == "text/plain" && p.Text == "":
		p.Text = strings.ReplaceAll(string(b), "\r\n", "\n")
	case mt == "text/html" && p.HTML == "":
		p.HTML = string(b)
	}
	return nil
}

// decode undoes a Content-Transfer-Encoding.
func decode(cte string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary":
		return r, nil
	case "quoted-printable":
		return quotedprintable.NewReader(r), nil
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r), nil // it skips line ends
	}
	return nil, fmt.Errorf("unknown Content-Transfer-Encoding %q", cte)
}
