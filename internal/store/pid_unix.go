//go:build unix

package store

import (
	"errors"
	"syscall"
)

// pidRunning reports whether a process with this pid runs on this host (a
// process that exists but is not ours answers EPERM: it runs).
func pidRunning(pid int) bool {
	if pid <= 0 {
		return true // unknown: not provably gone
	}
	err := syscall.Kill(pid, 0)
	return err == nil || !errors.Is(err, syscall.ESRCH)
}
