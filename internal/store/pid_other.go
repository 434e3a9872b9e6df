//go:build !unix

package store

// pidRunning cannot tell on this system: every pid counts as running, and
// only a lease's expiry (or, on Postgres, the liveness lock) tells a dead
// owner.
func pidRunning(int) bool { return true }
