package atomicfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/digest/digest/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "index.html")
	if err := atomicfile.Write(path, []byte("old"), 0o644, nil); err != nil {
		t.Fatal(err)
	}
	// before sees the old file still in place, and its error keeps it.
	refused := errors.New("not now")
	err := atomicfile.Write(path, []byte("new"), 0o644, func() error {
		if b, _ := os.ReadFile(path); string(b) != "old" {
			t.Errorf("before the rename the file holds %q", b)
		}
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("err %v, want the hook's", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("a refused write changed the file to %q", b)
	}
	if err := atomicfile.Write(path, []byte("new"), 0o600, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if b, _ := os.ReadFile(path); string(b) != "new" || err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file %q, mode %v, err %v", b, fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := atomicfile.Write(filepath.Join(dir, "missing", "f"), nil, 0o644, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing folder: %v", err)
	}
}
