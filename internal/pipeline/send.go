package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
)

// LedgerStore is what delivery needs of the store.
type LedgerStore interface {
	Store
	deliver.Ledger
	Failures(ctx context.Context, issueID string, limit int) ([]ledger.Failure, error)
}

// Sender delivers built issues.
type Sender struct {
	Store     LedgerStore
	Composer  *mail.Composer
	Transport deliver.Transport
	Options   deliver.Options
	Now       func() time.Time // clock for completion stamps; nil means time.Now
}

// Delivery is the result of one Send.
type Delivery struct {
	deliver.Summary
	Enqueued int           // ledger rows created by this run
	Counts   ledger.Counts // the issue's whole ledger after the run
}

// Done reports whether every recipient is sent or failed.
func (d Delivery) Done() bool { return d.Counts.Pending == 0 && d.Counts.Sending == 0 }

// Remember records the issue's articles as sent, by ID and canonical link,
// so that no later issue carries them again. Send calls it when delivery
// starts.
func (s *Sender) Remember(ctx context.Context, b *Built) error {
	var keys []string
	for _, a := range b.Issue.Articles() {
		keys = append(keys, sentKeys(a)...)
	}
	return s.Store.MarkArticlesSent(ctx, b.Issue.ID, keys)
}

// Send delivers the issue to every active subscriber, continuing from the
// ledger: recipients already sent or failed are not touched, and rows left in
// flight by a crash are retried. The issue's articles are recorded as sent so
// that no later issue repeats them.
func (s *Sender) Send(ctx context.Context, b *Built) (Delivery, error) {
	id := b.Issue.ID
	var d Delivery
	n, err := s.Store.Enqueue(ctx, id)
	if err != nil {
		return d, err
	}
	d.Enqueued = n
	if err := s.Remember(ctx, b); err != nil {
		return d, err
	}
	opts := s.Options
	if c, err := s.Store.Counts(ctx, id); err != nil {
		return d, err
	} else if opts.Total == 0 {
		opts.Total = c.Pending + c.Sending // what this run has to do
	}
	sum, runErr := deliver.Run(ctx, id, b.Rendered, s.Composer, s.Store, s.Transport, opts)
	d.Summary = sum
	c, err := s.Store.Counts(context.WithoutCancel(ctx), id)
	if err != nil {
		return d, err
	}
	d.Counts = c
	if d.Done() {
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		if err := s.Store.MarkIssueComplete(context.WithoutCancel(ctx), id, now()); err != nil {
			return d, err
		}
	}
	if runErr != nil {
		return d, fmt.Errorf("deliver issue %s: %w", id, runErr)
	}
	return d, nil
}
