package deliver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	netmail "net/mail"
	"strings"

	gomail "github.com/wneessen/go-mail"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/render"
)

// DryRunResult is what a dry run built.
type DryRunResult struct {
	Messages int   // messages built and encoded
	Bytes    int64 // their total size as they would be sent
	Failed   int   // recipients whose message could not be built
}

// DryRun builds and encodes the message of every recipient (signed, when
// DKIM is configured) without sending anything and without touching the
// ledger (claiming would move rows to sending), so it takes the recipients
// from the caller. Errors of single recipients are joined; the run goes on.
func DryRun(ctx context.Context, r *render.Rendered, comp Composer, recipients iter.Seq[ledger.Recipient]) (DryRunResult, error) {
	var res DryRunResult
	prep, err := comp.Prepare(r)
	if err != nil {
		return res, err
	}
	var errs []error
	var buf []byte
	for rc := range recipients {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		m, err := prep.Build(buf, rc)
		if err != nil {
			res.Failed++
			errs = append(errs, fmt.Errorf("%s: %w", rc.Email, err))
			continue
		}
		buf = m.Data
		res.Bytes += int64(len(m.Data))
		res.Messages++
	}
	return res, errors.Join(errs...)
}

// SendOne opens a connection, sends one go-mail message (a test copy from
// mail.Composer.ComposeTest, for `send --to`) and closes it, outside any
// ledger. rc names the recipient for transports that need it (File); its
// SubscriberID may be 0. The envelope sender is the message's From.
func SendOne(ctx context.Context, t Transport, m *gomail.Msg, rc ledger.Recipient) error {
	from, err := m.GetSender(false)
	if err != nil {
		return fmt.Errorf("test message: %w", err)
	}
	to, err := m.GetRecipients()
	if err != nil || len(to) == 0 {
		return fmt.Errorf("test message has no recipient: %v", err)
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		return fmt.Errorf("test message: %w", err)
	}
	return SendMessage(ctx, t, &mail.Message{From: bareAddress(from), To: bareAddress(to[0]), Data: buf.Bytes()}, rc)
}

// bareAddress turns "<a@b>" or "Name <a@b>" into "a@b".
func bareAddress(s string) string {
	if a, err := netmail.ParseAddress(s); err == nil {
		return a.Address
	}
	return strings.Trim(s, "<> ")
}

// SendMessage opens a connection, sends one built message (such as
// mail.Prepared.BuildTest's test copy, which is DKIM-signed when configured)
// and closes it, outside any ledger.
func SendMessage(ctx context.Context, t Transport, m *mail.Message, rc ledger.Recipient) error {
	c, err := t.Open(ctx)
	if err != nil {
		return err
	}
	return errors.Join(c.Send(ctx, m, rc, nil), c.Close())
}
