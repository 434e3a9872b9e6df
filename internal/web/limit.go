package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a token bucket per key (a client network, an address) with
// bounded memory.
type limiter struct {
	every time.Duration
	burst int
	max   int

	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	l    *rate.Limiter
	last time.Time
}

func newLimiter(every time.Duration, burst, maxKeys int) *limiter {
	return &limiter{every: every, burst: burst, max: maxKeys, m: map[string]*bucket{}}
}

// allow takes one token from key's bucket at now, and reports whether
// there was one.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[key]
	if !ok {
		if len(l.m) >= l.max {
			l.sweep(now)
			if len(l.m) >= l.max {
				return false // every entry is busy: refuse rather than grow
			}
		}
		b = &bucket{l: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.m[key] = b
	}
	b.last = now
	return b.l.AllowN(now, 1)
}

// spent reports whether key's bucket is empty at now, without taking a
// token (a key never seen has a full one).
func (l *limiter) spent(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[key]
	return ok && b.l.TokensAt(now) < 1
}

// sweep drops the buckets that have refilled completely: forgetting them
// changes nothing.
func (l *limiter) sweep(now time.Time) {
	full := l.every * time.Duration(l.burst)
	for k, b := range l.m {
		if now.Sub(b.last) >= full {
			delete(l.m, k)
		}
	}
}

// clientKey is the rate-limit key of the request's client: its address, or
// for IPv6 its /64 network (one household or host usually has a whole
// /64). With header set, the address comes from it, as a reverse proxy
// writes it; a missing or malformed header falls back to the connection.
func clientKey(r *http.Request, header string) string {
	var addr netip.Addr
	if header != "" {
		v := r.Header.Values(header)
		if len(v) > 0 {
			// X-Forwarded-For lists every hop: the last one is what
			// our proxy saw; anything before it the client could write.
			parts := strings.Split(v[len(v)-1], ",")
			addr, _ = netip.ParseAddr(strings.TrimSpace(parts[len(parts)-1]))
		}
	}
	if !addr.IsValid() {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		addr, _ = netip.ParseAddr(host)
	}
	if !addr.IsValid() {
		return "unknown"
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}
