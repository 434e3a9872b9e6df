package cli

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/digest/digest/internal/store"
	"github.com/digest/digest/internal/subscriber"
)

// importCSV reads a subscriber CSV and syncs it into the store: new addresses
// are added, names updated, and nobody who unsubscribed is re-activated. Bad
// rows are reported with their line and skipped.
func (e *env) importCSV(ctx context.Context, path string) (store.SyncResult, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return store.SyncResult{}, 0, err
	}
	defer f.Close()
	rows, problems := subscriber.ReadCSV(f)
	for _, p := range problems {
		fmt.Fprintf(e.stderr, "%s: %v (row skipped)\n", path, p)
	}
	if len(rows) == 0 && len(problems) > 0 {
		return store.SyncResult{}, len(problems), fmt.Errorf("%s: no valid rows", path)
	}
	res, err := e.store.Sync(ctx, rows)
	if err != nil {
		return res, len(problems), fmt.Errorf("%s: %w", path, err)
	}
	return res, len(problems), nil
}

func (e *env) subsImport(ctx context.Context, args []string) error {
	f := newFlags(e, "subscribers import", false)
	pos, err := f.parse(e, args, 1, 1)
	if err != nil {
		return err
	}
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	res, skipped, err := e.importCSV(ctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Imported %s: %d added, %d updated, %d unchanged, %d skipped\n",
		pos[0], res.Added, res.Updated, res.Unchanged, skipped)
	return nil
}

func (e *env) subsAdd(ctx context.Context, args []string) error {
	f := newFlags(e, "subscribers add", false)
	name := f.String("name", "", "display name")
	pos, err := f.parse(e, args, 1, 1)
	if err != nil {
		return err
	}
	addr, err := subscriber.NormalizeEmail(pos[0])
	if err != nil {
		return usagef("subscribers add: %v", err)
	}
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	created, err := e.store.Add(ctx, addr, *name)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(e.stdout, "Added %s\n", addr)
	} else {
		fmt.Fprintf(e.stdout, "Updated %s (active)\n", addr)
	}
	return nil
}

func (e *env) subsRemove(ctx context.Context, args []string) error {
	f := newFlags(e, "subscribers remove", false)
	purge := f.Bool("purge", false, "delete the record and its delivery history instead of marking it unsubscribed")
	pos, err := f.parse(e, args, 1, 1)
	if err != nil {
		return err
	}
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	if *purge {
		err = e.store.Delete(ctx, pos[0])
	} else {
		err = e.store.Remove(ctx, pos[0])
	}
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("subscribers remove: %s is not a subscriber", pos[0])
	}
	if err != nil {
		return err
	}
	if *purge {
		fmt.Fprintf(e.stdout, "Deleted %s\n", pos[0])
	} else {
		fmt.Fprintf(e.stdout, "Unsubscribed %s\n", pos[0])
	}
	return nil
}

func (e *env) subsList(ctx context.Context, args []string) error {
	f := newFlags(e, "subscribers list", false)
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	w := csv.NewWriter(e.stdout)
	if err := w.Write([]string{"email", "name", "status", "created"}); err != nil {
		return err
	}
	err := e.store.List(ctx, func(s subscriber.Subscriber) error {
		return w.Write([]string{s.Email, s.Name, s.Status, s.Created.UTC().Format(time.RFC3339)})
	})
	w.Flush()
	if err != nil {
		return err
	}
	return w.Error()
}
