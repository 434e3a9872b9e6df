package deliver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/digest/digest/internal/atomicfile"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
)

// File is a Transport that writes each message to
// <dir>/<issue id>/<recipient address>.eml instead of sending it: for
// development, previews and tests. A test copy goes to
// <dir>/<issue id>/test/<address>.<n>.eml instead, n counting up, so that
// it never replaces a delivered message or an earlier test copy. A message
// of no issue (a notice: mail.Message.Issue empty) goes under
// <dir>/notices/. The bytes are those an SMTP relay would receive. Files
// appear atomically (written to a temporary name, then renamed).
type File struct {
	dir string
}

// NewFile returns a File transport writing under dir (created when needed).
func NewFile(dir string) *File { return &File{dir: dir} }

// Path returns the file a recipient's message is written to (for a test
// copy, the folder's pattern: see File).
func (f *File) Path(rc ledger.Recipient) string {
	return f.path(rc.IssueID, rc.Email, rc.Test)
}

func (f *File) path(issueID, email string, test bool) string {
	dir := filepath.Join(f.dir, safeName(issueID, "issue"))
	if test {
		return filepath.Join(dir, "test", safeName(email, "recipient")+".*.eml")
	}
	return filepath.Join(dir, safeName(email, "recipient")+".eml")
}

// noticesDir is the folder of messages of no issue (notices).
const noticesDir = "notices"

// testPath picks the first free numbered name for a test copy. Test copies
// are sent one at a time by hand, so the race between the check and the
// rename is not a concern.
func testPath(pattern string) string {
	for n := 1; ; n++ {
		p := strings.Replace(pattern, "*", strconv.Itoa(n), 1)
		if _, err := os.Lstat(p); os.IsNotExist(err) {
			return p
		}
	}
}

// Open returns a connection; there is nothing to dial.
func (f *File) Open(context.Context) (Conn, error) { return fileConn{f}, nil }

type fileConn struct{ f *File }

// Send writes m to its file; it never starts a next message (opened is
// always false).
func (c fileConn) Send(ctx context.Context, m *mail.Message, ready Ready) (opened bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	issueID := m.Issue
	if issueID == "" {
		issueID = noticesDir
	}
	path := c.f.path(issueID, m.To, m.Test)
	if m.Test {
		path = testPath(path)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("outbox %s: %w", dir, err)
	}
	// The rename is the step that "accepts" the message: it comes only
	// after ready.
	err = atomicfile.Write(path, m.Data, 0o600, func() error {
		if ready == nil {
			return nil
		}
		if _, err := ready(false); err != nil {
			return fmt.Errorf("%w: %w", ErrConnBroken, err)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("outbox %s: %w", path, err)
	}
	return false, nil
}

func (fileConn) Close() error { return nil }

// safeName maps s to a single, portable path element: letters, digits and
// "@._+-" are kept, anything else becomes '_', and a leading dot is replaced
// so that the name is never hidden, "." or "..".
func safeName(s, fallback string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '@', r == '.', r == '_', r == '+', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 200 {
			break
		}
	}
	out := b.String()
	if out == "" {
		return fallback
	}
	if out[0] == '.' {
		out = "_" + out[1:]
	}
	return out
}
