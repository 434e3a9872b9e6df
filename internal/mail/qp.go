package mail

// Quoted-printable (RFC 2045 §6.7) encoding of the body parts, written so
// that an issue's shared text can be encoded once and the per-recipient
// values spliced in between: every static chunk and every value starts at
// column 0 and ends at column 0 (with a soft line break "=\r\n" when it
// stopped mid-line). Soft breaks add nothing to the decoded text, so the
// spliced message decodes to exactly the text a one-pass encoder would give,
// and no slot token or escape sequence can be split across chunks.

const (
	qpMaxLine = 76 // characters per encoded line, "=" of a soft break included
	hexDigits = "0123456789ABCDEF"
)

// qpEncoder appends the quoted-printable form of text to a buffer, tracking
// the column. Line ends ("\n" or "\r\n") become CRLF hard breaks.
type qpEncoder struct {
	col int
}

// append encodes s onto dst. Whitespace at the end of s is encoded (=20,
// =09), since it ends a line or a chunk.
func (e *qpEncoder) append(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' || (c == '\r' && i+1 < len(s) && s[i+1] == '\n') {
			if c == '\r' {
				i++
			}
			dst = append(dst, '\r', '\n')
			e.col = 0
			continue
		}
		literal := (c >= 33 && c <= 126 && c != '=') ||
			((c == ' ' || c == '\t') && !lineEndsAt(s, i+1))
		w := 3
		if literal {
			w = 1
		}
		if e.col+w > qpMaxLine-1 {
			dst = append(dst, '=', '\r', '\n')
			e.col = 0
		}
		if literal {
			dst = append(dst, c)
		} else {
			dst = append(dst, '=', hexDigits[c>>4], hexDigits[c&0x0f])
		}
		e.col += w
	}
	return dst
}

// end closes a chunk: a soft break when it stopped mid-line, so that what
// follows starts at column 0.
func (e *qpEncoder) end(dst []byte) []byte {
	if e.col > 0 {
		dst = append(dst, '=', '\r', '\n')
		e.col = 0
	}
	return dst
}

// lineEndsAt reports whether position i of s is the end of s or of a line.
func lineEndsAt(s string, i int) bool {
	return i == len(s) || s[i] == '\n' || (s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n')
}

// qpValue appends a per-recipient value, closed with a soft break when it
// stopped mid-line.
func qpValue(dst []byte, v string) []byte {
	var e qpEncoder
	return e.end(e.append(dst, v))
}
