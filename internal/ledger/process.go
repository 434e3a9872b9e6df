package ledger

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
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

// NewProcess describes this process, with a fresh random ID that starts
// with its pid space (see PIDSpace) when the system tells it.
func NewProcess() (Process, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Process{}, fmt.Errorf("process id: %w", err)
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	id := hex.EncodeToString(b[:])
	if space := pidSpace(); space != "" {
		id = space + "-" + id
	}
	return Process{ID: id, Host: host, PID: os.Getpid()}, nil
}

// PIDSpace is the space the pid of the process with this ID counts in:
// its machine's boot and its pid namespace, hashed. Two processes whose
// spaces are the same see the same pids; with another, or an unknown one
// (""), a pid says nothing: containers that share a host name (host
// networking) but not their pids, say.
func PIDSpace(id string) string {
	space, _, ok := strings.Cut(id, "-")
	if !ok {
		return ""
	}
	return space
}

// pidSpace is this process's pid space: a hash of the boot id and the pid
// namespace, "" where the system does not tell them.
func pidSpace() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(string(boot)) + "\x00" + ns))
	return hex.EncodeToString(sum[:5])
}

// String names the process for people: "host pid 4711".
func (p Process) String() string { return fmt.Sprintf("%s pid %d", p.Host, p.PID) }
