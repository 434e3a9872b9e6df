package fetch

import (
	"bytes"
	"mime"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding/unicode"
)

// xmlDecl matches an XML declaration's encoding pseudo-attribute; group 2 is
// the label.
var xmlDecl = regexp.MustCompile(`^(\s*<\?xml[^>]*?\sencoding\s*=\s*["'])([A-Za-z0-9._:-]+)(["'])`)

// ToUTF8 returns body as UTF-8. It is used for HTTP bodies and for local
// files alike (contentType "" for a file).
//
// The rules, in order: a byte-order mark decides; a body that is already
// valid UTF-8 is left alone (servers often declare latin-1 for UTF-8 files,
// the reverse is rare); otherwise the first known label among the
// Content-Type charset, the XML declaration's encoding and an HTML <meta>
// charset is used; failing all, windows-1252 (the HTML default). Invalid
// sequences become U+FFFD. An XML declaration in the result always says
// UTF-8, so an XML parser does not decode the text a second time.
func ToUTF8(body []byte, contentType string) []byte {
	out, ok := fromBOM(body)
	if !ok {
		out = body
		if !utf8.Valid(body) {
			out = decode(body, contentType)
		}
	}
	return fixXMLDecl(out)
}

// fromBOM decodes a body that starts with a byte-order mark, without it.
func fromBOM(body []byte) ([]byte, bool) {
	switch {
	case bytes.HasPrefix(body, []byte{0xEF, 0xBB, 0xBF}):
		return bytes.ToValidUTF8(body[3:], []byte("\uFFFD")), true
	case bytes.HasPrefix(body, []byte{0xFF, 0xFE}):
		out, err := unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder().Bytes(body)
		return out, err == nil
	case bytes.HasPrefix(body, []byte{0xFE, 0xFF}):
		out, err := unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder().Bytes(body)
		return out, err == nil
	}
	return nil, false
}

// decode converts a body that is not valid UTF-8.
func decode(body []byte, contentType string) []byte {
	for _, label := range labels(body, contentType) {
		enc, name := charset.Lookup(label)
		if enc == nil || name == "utf-8" {
			continue // unknown, or a wrong claim: the body is not UTF-8
		}
		if out, err := enc.NewDecoder().Bytes(body); err == nil {
			return bytes.ToValidUTF8(out, []byte("\uFFFD"))
		}
	}
	enc, _ := charset.Lookup("windows-1252")
	if out, err := enc.NewDecoder().Bytes(body); err == nil {
		return out
	}
	return bytes.ToValidUTF8(body, []byte("\uFFFD"))
}

// labels lists the declared charsets, most authoritative first.
func labels(body []byte, contentType string) []string {
	var ls []string
	if _, params, err := mime.ParseMediaType(contentType); err == nil && params["charset"] != "" {
		ls = append(ls, params["charset"])
	}
	if m := xmlDecl.FindSubmatch(head(body)); m != nil {
		ls = append(ls, string(m[2]))
	} else if _, name, _ := charset.DetermineEncoding(head(body), "text/html"); name != "" {
		// The <meta> prescan; when there is none this is the
		// windows-1252 default, which is also our last resort.
		ls = append(ls, name)
	}
	return ls
}

func head(body []byte) []byte {
	if len(body) > 1024 {
		return body[:1024]
	}
	return body
}

// fixXMLDecl makes an XML declaration's encoding say UTF-8.
func fixXMLDecl(body []byte) []byte {
	loc := xmlDecl.FindSubmatchIndex(head(body))
	if loc == nil || strings.EqualFold(string(body[loc[4]:loc[5]]), "utf-8") {
		return body
	}
	out := make([]byte, 0, len(body))
	out = append(out, body[:loc[4]]...)
	out = append(out, "UTF-8"...)
	return append(out, body[loc[5]:]...)
}
