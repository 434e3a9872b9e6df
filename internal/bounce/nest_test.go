package bounce

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
)

// nested is a message of depth multipart levels around one text part of
// size bytes.
func nested(depth, size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: MAILER-DAEMON@example.net\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\n")
	b.Write(bytes.Repeat([]byte("x"), size))
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "\r\n--b%d--\r\n", i)
	}
	return b.Bytes()
}

// A deep tree of one big part costs a bounded copy, not its size at every
// level (60 levels around 128 KB allocated about 17 MB before, 135 MB for
// 1 MB).
func TestDeepNestingIsBounded(t *testing.T) {
	msg := nested(60, 128<<10)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	v := testParser.Parse(bytes.NewReader(msg), "")
	runtime.ReadMemStats(&after)
	if v.Kind != Unmatched {
		t.Errorf("kind %s, want unmatched", v.Kind)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("parsing a %d KB message allocated %d MB", len(msg)>>10, alloc>>20)
	}
}
