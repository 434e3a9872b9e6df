package ledger

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
)

// Process names one running program that holds, or wants, a lease: a
// delivery run's or the daemon's. ID tells processes apart (host and pid
// repeat across containers and reboots); Host and PID are for people
// ("web-1 pid 4711") and for telling, on the same host, that a process is
// gone.
type Process struct {
	ID   string
	Host string
	PID  int
}

// NewProcess describes this process, with a fresh random ID.
func NewProcess() (Process, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Process{}, fmt.Errorf("process id: %w", err)
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return Process{ID: hex.EncodeToString(b[:]), Host: host, PID: os.Getpid()}, nil
}

// String names the process for people: "host pid 4711".
func (p Process) String() string { return fmt.Sprintf("%s pid %d", p.Host, p.PID) }
