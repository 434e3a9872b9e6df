package deliver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	gomail "github.com/wneessen/go-mail"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/render"
)

// DryRunResult is what a dry run built.
type DryRunResult struct {
	Messages int   // messages built and encoded
	Bytes    int64 // their total size as they would be sent
	Failed   int   // recipients whose message could not be built
}

// DryRun builds and encodes the message of every recipient without sending
// anything and without touching the ledger (claiming would move rows to
// sending), so it takes the recipients from the caller. Errors of single
// recipients are joined; the run goes on.
func DryRun(ctx context.Context, r *render.Rendered, comp Composer, recipients iter.Seq[ledger.Recipient]) (DryRunResult, error) {
	var res DryRunResult
	var errs []error
	for rc := range recipients {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		m, err := comp.Compose(r, rc)
		if err == nil {
			var n int64
			n, err = m.WriteTo(io.Discard)
			res.Bytes += n
		}
		if err != nil {
			res.Failed++
			errs = append(errs, fmt.Errorf("%s: %w", rc.Email, err))
			continue
		}
		res.Messages++
	}
	return res, errors.Join(errs...)
}

// SendOne opens a connection, sends one message and closes it: for a test
// copy (`send --to`), outside any ledger. rc names the recipient for
// transports that need it (File); its SubscriberID may be 0.
func SendOne(ctx context.Context, t Transport, m *gomail.Msg, rc ledger.Recipient) error {
	c, err := t.Open(ctx)
	if err != nil {
		return err
	}
	err = c.Send(ctx, m, rc)
	if err != nil && m.IsDelivered() {
		err = nil // accepted; only the connection failed afterwards
	}
	return errors.Join(err, c.Close())
}
