package deliver

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
)

// DryRunResult is what a dry run built.
type DryRunResult struct {
	Messages int   // messages built and encoded
	Bytes    int64 // their total size as they would be sent
	Skipped  int   // recipients the issue has nothing for (their topics)
	Failed   int   // recipients whose message could not be built
}

// DryRun builds and encodes the message of every recipient (signed, when
// DKIM is configured) without sending anything and without touching the
// ledger (claiming would move rows to sending), so it takes the recipients
// from the caller. Errors of single recipients are joined; the run goes on.
func DryRun(ctx context.Context, msgs Builder, recipients iter.Seq[ledger.Recipient]) (DryRunResult, error) {
	var res DryRunResult
	var errs []error
	var buf []byte
	for rc := range recipients {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		m, err := msgs.Build(buf, rc)
		if errors.Is(err, ErrSkip) {
			res.Skipped++
			continue
		}
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

// SendMessage opens a connection, sends one built message (such as
// mail.Prepared.BuildTest's test copy, which is DKIM-signed when configured,
// or a notice) and closes it, outside any ledger.
func SendMessage(ctx context.Context, t Transport, m *mail.Message) error {
	c, err := t.Open(ctx)
	if err != nil {
		return err
	}
	_, err = c.Send(ctx, m, nil)
	return errors.Join(err, c.Close())
}

// Notices sends single notices (a sign-up's confirmation, say) through a
// transport, built by Composer like the issues' messages, outside any
// ledger. The file transport writes them under <outbox>/notices/.
type Notices struct {
	Composer  *mail.Composer
	Transport Transport
}

// Send builds n and sends it.
func (s Notices) Send(ctx context.Context, n mail.Notice) error {
	msg, err := s.Composer.Notice(n)
	if err != nil {
		return err
	}
	return SendMessage(ctx, s.Transport, &msg)
}
