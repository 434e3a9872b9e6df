package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/store/storetest"
)

// envLockHelper makes the test binary a process that takes the build lock of
// the database it names and then waits to be killed (see TestMain).
const envLockHelper = "DIGEST_STORE_LOCK_HELPER"

func TestMain(m *testing.M) {
	if dsn := os.Getenv(envLockHelper); dsn != "" {
		os.Exit(holdBuildLock(dsn))
	}
	os.Exit(m.Run())
}

// holdBuildLock takes the build lock of issue w10, says "locked" on stdout
// and blocks while it holds the lock, until the process is killed.
func holdBuildLock(dsn string) int {
	ctx := context.Background()
	s, err := Open(ctx, dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	err = s.WithBuildLock(ctx, "w10", func(context.Context) error {
		fmt.Println("locked")
		select {}
	})
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// hangGuard bounds a wait that only a bug makes endless, so that a deadlock
// fails the test with a message instead of stalling the package.
func hangGuard(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestBuildLockExcludes(t *testing.T) { storetest.Run(t, testBuildLockExcludes) }

func testBuildLockExcludes(t *testing.T, db storetest.Backend) {
	ctx := hangGuard(t)
	dsn := db.Fresh(t)
	c := newClock()
	// Two Stores stand for two processes; each has several goroutines.
	stores := []*Store{openAt(t, dsn, c), openAt(t, dsn, c)}
	var (
		active, runs atomic.Int32
		overlap      atomic.Bool
		wg           sync.WaitGroup
		errs         = make(chan error, 32)
	)
	for w := range 6 {
		wg.Add(1)
		go func(s *Store) {
			defer wg.Done()
			for range 4 {
				err := s.WithBuildLock(ctx, "w10", func(ctx context.Context) error {
					if active.Add(1) > 1 {
						overlap.Store(true)
					}
					defer active.Add(-1)
					runs.Add(1)
					runtime.Gosched()
					// The store stays usable while the lock is held.
					_, err := s.SaveIssue(ctx, Issue{ID: "w10"})
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}(stores[w%2])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if overlap.Load() {
		t.Error("two holders of the build lock at once")
	}
	if runs.Load() != 24 {
		t.Errorf("%d locked runs, want 24", runs.Load())
	}
}

func TestBuildLockErrorsAndCancel(t *testing.T) { storetest.Run(t, testBuildLockErrorsAndCancel) }

func testBuildLockErrorsAndCancel(t *testing.T, db storetest.Backend) {
	ctx := hangGuard(t)
	dsn := db.Fresh(t)
	c := newClock()
	a, b := openAt(t, dsn, c), openAt(t, dsn, c)

	// fn's error comes back, and the lock is free afterwards.
	boom := errors.New("boom")
	if err := a.WithBuildLock(ctx, "w10", func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("WithBuildLock = %v, want fn's error", err)
	}

	// While a holds the lock, b's cancelled waits fail without running
	// fn and leave nothing locked behind.
	err := a.WithBuildLock(ctx, "w10", func(context.Context) error {
		for range 3 {
			wctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- b.WithBuildLock(wctx, "w10", func(context.Context) error {
					return errors.New("fn ran while another process held the lock")
				})
			}()
			runtime.Gosched()
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				return fmt.Errorf("cancelled wait: %v, want context.Canceled", err)
			}
		}
		if db == storetest.Postgres {
			// Locks are per issue on Postgres: another issue is free.
			return b.WithBuildLock(ctx, "w11", func(context.Context) error { return nil })
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	must(t, b.WithBuildLock(ctx, "w10", func(context.Context) error { ran = true; return nil }))
	if !ran {
		t.Error("fn did not run")
	}
}

// TestBuildLockReleasedOnCrash kills a process that holds the lock: the
// lock must be free at once, with no lease to wait out.
func TestBuildLockReleasedOnCrash(t *testing.T) { storetest.Run(t, testBuildLockReleasedOnCrash) }

func testBuildLockReleasedOnCrash(t *testing.T, db storetest.Backend) {
	ctx := hangGuard(t)
	dsn := db.Fresh(t)
	s := openAt(t, dsn, newClock()) // migrated before the helper starts

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envLockHelper+"="+dsn)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q, %v; want locked", line, err)
	}
	must(t, cmd.Process.Kill())
	_ = cmd.Wait()

	ran := false
	must(t, s.WithBuildLock(ctx, "w10", func(context.Context) error { ran = true; return nil }))
	if !ran {
		t.Error("fn did not run after the holder died")
	}
}

// TestOpenConcurrent opens a new database from several processes at once:
// each migration is applied exactly once.
func TestOpenConcurrent(t *testing.T) { storetest.Run(t, testOpenConcurrent) }

func testOpenConcurrent(t *testing.T, db storetest.Backend) {
	ctx := hangGuard(t)
	dsn := db.Fresh(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			errs <- s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s := openAt(t, dsn, newClock())
	var n int
	must(t, s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
	if want := len(s.d.migrations()); n != want {
		t.Errorf("%d migration rows, want %d", n, want)
	}
}

// TestConcurrentWriters runs the store's check-then-write operations from
// two processes at once: saving issues (the next number), adding one new
// address. On Postgres these run side by side and must be serialized.
func TestConcurrentWriters(t *testing.T) { storetest.Run(t, testConcurrentWriters) }

func testConcurrentWriters(t *testing.T, db storetest.Backend) {
	ctx := hangGuard(t)
	dsn := db.Fresh(t)
	c := newClock()
	stores := []*Store{openAt(t, dsn, c), openAt(t, dsn, c)}
	var (
		wg      sync.WaitGroup
		created atomic.Int32
		errs    = make(chan error, 64)
	)
	for w := range 8 {
		wg.Add(1)
		go func(s *Store) {
			defer wg.Done()
			for i := range 3 {
				if _, err := s.SaveIssue(ctx, Issue{ID: fmt.Sprintf("issue-%d", (w+i)%5)}); err != nil {
					errs <- err
				}
			}
			ok, err := s.Add(ctx, "new@example.org", fmt.Sprintf("New %d", w))
			if err != nil {
				errs <- err
			}
			if ok {
				created.Add(1)
			}
		}(stores[w%2])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if created.Load() != 1 {
		t.Errorf("%d Adds created the address, want 1", created.Load())
	}
	numbers := map[int]string{}
	for i := range 5 {
		is, err := stores[0].GetIssue(ctx, fmt.Sprintf("issue-%d", i))
		must(t, err)
		if other, dup := numbers[is.Number]; dup {
			t.Errorf("issues %s and %s both have number %d", other, is.ID, is.Number)
		}
		numbers[is.Number] = is.ID
	}
	if n, err := stores[1].CountActive(ctx); err != nil || n != 1 {
		t.Errorf("CountActive = %d, %v; want 1", n, err)
	}
}
