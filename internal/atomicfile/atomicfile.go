// Package atomicfile replaces files so that a reader sees the old content
// or the new one, never a part: the data goes to a temporary file in the
// same folder, which is then renamed over the target (a rename within a
// file system is atomic on POSIX systems).
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data, with permissions perm. The folder must
// exist. before, when not nil, runs once the data is written and closed,
// right before the rename: an error from it leaves path as it was and is
// returned as is. On any failure the temporary file is removed.
func Write(path string, data []byte, perm os.FileMode, before func() error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), perm)
	}
	if err == nil && before != nil {
		err = before()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
