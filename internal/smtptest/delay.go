package smtptest

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// DelayProxy listens on a loopback port and relays each connection to
// addr, delivering every chunk read in either direction rtt/2 after it
// was read (a round trip of rtt, bandwidth unbounded, order kept), for
// benchmarks of what a client waits for. It returns the port; rtt 0
// returns addr's own port: no proxy. The listener is closed by
// tb.Cleanup. Timers overshoot on a loaded machine: measure the round
// trip through it rather than assume rtt.
func DelayProxy(tb testing.TB, addr string, rtt time.Duration) int {
	tb.Helper()
	if rtt == 0 {
		_, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		return port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			var both sync.WaitGroup
			both.Go(func() { delayCopy(up, c, rtt/2) })
			both.Go(func() { delayCopy(c, up, rtt/2) })
			go func() { both.Wait(); c.Close(); up.Close() }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// delayCopy copies src to dst, each chunk d after it was read; at the end
// of src it closes dst for writing.
func delayCopy(dst, src net.Conn, d time.Duration) {
	type chunk struct {
		at   time.Time
		data []byte
	}
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 64<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{time.Now().Add(d), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	for range q { // drain, so that the reader ends
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	} else {
		_ = dst.Close()
	}
}
