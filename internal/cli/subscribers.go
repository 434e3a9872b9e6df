package cli

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/plural"
	"github.com/digest/digest/internal/store"
	"github.com/digest/digest/internal/subscriber"
	"github.com/digest/digest/internal/web"
)

// addressRules are the checks addresses from the operator and from readers
// must pass (newsletter.allow_dotless_domains).
func (e *env) addressRules() subscriber.Rules {
	return subscriber.Rules{AllowDotlessDomain: e.cfg.Newsletter.AllowDotlessDomains}
}

// topicKeys are the configured topics' stored forms.
func (e *env) topicKeys() []string {
	var keys []string
	for _, t := range e.cfg.Topics() {
		keys = append(keys, t.Key)
	}
	return keys
}

// importReport is what importing one CSV file did.
type importReport struct {
	store.SyncResult
	Bad        int // rows skipped for a problem of their own
	Duplicates int // rows skipped as repeats of an earlier address
}

// importFile reads a subscriber CSV and syncs it into the store row by row:
// new addresses are added, names and topics updated, and nobody who
// unsubscribed is re-activated. Bad rows and repeated addresses are handed
// to report (as *subscriber.LineError) and skipped; a file that is unusable
// as a whole (empty, no email column) is an error.
func (e *env) importFile(ctx context.Context, path string, report func(error)) (importReport, error) {
	var rep importReport
	f, err := os.Open(path)
	if err != nil {
		return rep, err
	}
	defer f.Close()
	c, err := subscriber.ReadCSV(f, e.addressRules())
	if err != nil {
		return rep, fmt.Errorf("%s: %w", path, err)
	}
	problem := func(p error) {
		var dup *subscriber.DuplicateError
		if errors.As(p, &dup) {
			rep.Duplicates++
		} else {
			rep.Bad++
		}
		report(p)
	}
	known := e.topicKeys()
	rows := func(yield func(subscriber.Row) bool) {
		for row := range c.Rows(problem) {
			if err := subscriber.CheckTopics(row.Topics, known); err != nil {
				problem(&subscriber.LineError{Line: row.Line, Err: err})
				continue
			}
			if !yield(row) {
				return
			}
		}
	}
	res, err := e.store.Import(ctx, rows)
	if err != nil {
		return rep, fmt.Errorf("%s: %w", path, err)
	}
	rep.SyncResult = res
	if res == (store.SyncResult{}) && rep.Bad > 0 {
		return rep, fmt.Errorf("%s: no valid rows", path)
	}
	return rep, nil
}

// csvSync is the subscribers_csv sync of one process (one configuration:
// the daemon makes a new one when it reloads).
type csvSync struct {
	e    *env
	path string
}

// maxLoggedRows bounds the skipped rows logged one by one per change.
const maxLoggedRows = 20

// csvProblemsKey is the store setting that keeps a digest of the skipped
// rows last logged, so that every process (a send from cron, the daemon's
// runs, a restart) logs them once per change of the file, not each time.
const csvProblemsKey = "subscribers_csv.problems"

// sync imports the file and logs what it did; its skipped rows are logged
// (without any part of an address) when they differ from those last
// logged.
func (c *csvSync) sync(ctx context.Context) error {
	var problems []string
	rep, err := c.e.importFile(ctx, c.path, func(p error) { problems = append(problems, subscriber.LogText(p)) })
	if err != nil {
		return fmt.Errorf("subscribers_csv: %w", err)
	}
	c.e.log.Info("subscribers synced", "file", c.path, "added", rep.Added,
		"updated", rep.Updated, "unchanged", rep.Unchanged, "skipped", rep.Bad+rep.Duplicates)
	sum := sha256.Sum256([]byte(c.path + "\n" + strings.Join(problems, "\n")))
	digest := hex.EncodeToString(sum[:])
	last, err := c.e.store.Setting(ctx, csvProblemsKey)
	if err != nil || last == digest {
		return err
	}
	for i, p := range problems {
		if i == maxLoggedRows {
			c.e.log.Warn("subscribers file: more rows skipped", "file", c.path, "more", len(problems)-i)
			break
		}
		c.e.log.Warn("subscribers file: row skipped", "file", c.path, "problem", p)
	}
	return c.e.store.PutSetting(ctx, csvProblemsKey, digest)
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
	rep, err := e.importFile(ctx, pos[0], func(p error) { fmt.Fprintf(e.stderr, "%s: %v (row skipped)\n", pos[0], p) })
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Imported %s: %d added, %d updated, %d unchanged, %s, %d skipped\n",
		pos[0], rep.Added, rep.Updated, rep.Unchanged, plural.N(rep.Duplicates, "duplicate", "duplicates"), rep.Bad)
	return nil
}

func (e *env) subsAdd(ctx context.Context, args []string) error {
	f := newFlags(e, "subscribers add", false)
	name := f.String("name", "", "display name")
	topicsFlag := f.String("topics", "", "comma-separated topics; empty: every topic")
	pos, err := f.parse(e, args, 1, 1)
	if err != nil {
		return err
	}
	topicsGiven := false
	f.Visit(func(fl *flag.Flag) {
		if fl.Name == "topics" {
			topicsGiven = true
		}
	})
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	addr, boxName, err := e.addressRules().ParseMailbox(pos[0])
	if err != nil {
		return usagef("subscribers add: %v", err)
	}
	row := subscriber.Row{Email: addr, Name: subscriber.CleanName(*name)}
	if row.Name == "" {
		row.Name = subscriber.CleanName(boxName)
	}
	if topicsGiven {
		topics, err := subscriber.SplitTopics(*topicsFlag)
		if err == nil {
			err = subscriber.CheckTopics(topics, e.topicKeys())
		}
		if err != nil {
			return usagef("subscribers add --topics: %v", err)
		}
		row.Topics = append([]string{}, topics...) // not nil: replace the stored topics
	}
	res, err := e.store.Put(ctx, row)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, describePut(res))
	return nil
}

// describePut says what an add did, truthfully: added, what changed, or
// that nothing did.
func describePut(res store.AddResult) string {
	a, b := res.After, res.Before
	if res.Created {
		s := "Added " + a.Email + " (active"
		if len(a.Topics) > 0 {
			s += "; topics " + strings.Join(a.Topics, ", ")
		}
		return s + ")"
	}
	var changes []string
	if a.Email != b.Email {
		changes = append(changes, "address now spelled "+a.Email+" (was "+b.Email+")")
	}
	if a.Status != b.Status {
		changes = append(changes, "re-activated (was "+b.Status+")")
	}
	if a.Name != b.Name {
		changes = append(changes, fmt.Sprintf("name now %q (was %q)", a.Name, b.Name))
	}
	if !slices.Equal(a.Topics, b.Topics) {
		changes = append(changes, "topics now "+topicList(a.Topics)+" (were "+topicList(b.Topics)+")")
	}
	if len(changes) == 0 {
		return a.Email + " is already subscribed (active); nothing changed"
	}
	return "Updated " + a.Email + ": " + strings.Join(changes, "; ")
}

func topicList(t []string) string {
	if len(t) == 0 {
		return "all"
	}
	return strings.Join(t, ", ")
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
	addr := strings.TrimSpace(pos[0])
	if *purge {
		err := e.store.Delete(ctx, addr)
		if errors.Is(err, ledger.ErrNotFound) {
			return fmt.Errorf("subscribers remove: %s is not a subscriber", addr)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Deleted %s and its delivery history\n", addr)
		return nil
	}
	// What the address was, to say truthfully what removing it did.
	before, err := e.store.Get(ctx, addr)
	pending := false
	if errors.Is(err, ledger.ErrNotFound) {
		su, serr := e.store.SignupByEmail(ctx, addr)
		if errors.Is(serr, ledger.ErrNotFound) {
			return fmt.Errorf("subscribers remove: %s is not a subscriber", addr)
		}
		if serr != nil {
			return serr
		}
		before, pending = subscriber.Subscriber{Email: su.Email}, true
	} else if err != nil {
		return err
	}
	if err := e.store.Remove(ctx, addr); err != nil {
		return err
	}
	switch {
	case pending:
		fmt.Fprintf(e.stdout, "Removed the pending sign-up of %s (it was never confirmed)\n", before.Email)
	case before.Status == subscriber.StatusUnsubscribed:
		fmt.Fprintf(e.stdout, "%s was already unsubscribed; nothing changed\n", before.Email)
	case before.Status == subscriber.StatusBounced:
		fmt.Fprintf(e.stdout, "Unsubscribed %s (its mail had bounced)\n", before.Email)
	default:
		fmt.Fprintf(e.stdout, "Unsubscribed %s\n", before.Email)
	}
	return nil
}

func (e *env) subsList(ctx context.Context, args []string) error {
	f := newFlags(e, "subscribers list", false)
	status := f.String("status", "", "only subscribers with this status: "+strings.Join(subscriber.Statuses, ", "))
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	if *status != "" && !slices.Contains(subscriber.Statuses, *status) {
		return usagef("subscribers list --status %q: want one of %s", *status, strings.Join(subscriber.Statuses, ", "))
	}
	return e.writeList(ctx, *status)
}

func (e *env) subsExport(ctx context.Context, args []string) error {
	f := newFlags(e, "subscribers export", false)
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	return e.writeList(ctx, "")
}

// writeList prints subscribers (with status, or all) as CSV, then the
// pending sign-ups, after purging the expired ones.
func (e *env) writeList(ctx context.Context, status string) error {
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	if _, err := e.store.PurgeSignups(ctx, e.now().Add(-web.SignupLifetime)); err != nil {
		return err
	}
	w := csv.NewWriter(e.stdout)
	if err := w.Write(subscriber.Columns); err != nil {
		return err
	}
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	var err error
	if status != subscriber.StatusPending {
		err = e.store.List(ctx, func(s subscriber.Subscriber) error {
			if status != "" && s.Status != status {
				return nil
			}
			return w.Write([]string{s.Email, s.Name, s.Status, strings.Join(s.Topics, ";"), stamp(s.Created), stamp(s.Updated)})
		})
	}
	if err == nil && (status == "" || status == subscriber.StatusPending) {
		err = e.store.ListSignups(ctx, func(su subscriber.Signup) error {
			if status == "" {
				// One row per address: a reader who left and signed up again
				// is listed once, as the subscriber (--status pending shows
				// the sign-up).
				if _, err := e.store.Get(ctx, su.Email); err == nil {
					return nil
				} else if !errors.Is(err, ledger.ErrNotFound) {
					return err
				}
			}
			return w.Write([]string{su.Email, su.Name, subscriber.StatusPending, strings.Join(su.Topics, ";"), stamp(su.Created), stamp(su.Created)})
		})
	}
	w.Flush()
	if err != nil {
		return err
	}
	return w.Error()
}
