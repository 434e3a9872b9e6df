package cli

import (
	"context"
	"fmt"

	"github.com/digest/digest/internal/plural"
)

// archive is `digest archive`: it writes every built issue's folder, and the
// archive's index and feed, again from the store. The archive folder is a
// publication of the store (build writes it too): any machine with the
// database and the config can publish it, and losing it loses nothing.
func (e *env) archive(ctx context.Context, args []string) error {
	f := newFlags(e, "archive", false)
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	p, err := e.pipeline()
	if err != nil {
		return err
	}
	n, err := p.Publish(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Archive %s written from the store: %s.\n", e.cfg.Archive, plural.N(n, "issue", "issues"))
	return nil
}
