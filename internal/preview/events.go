package preview

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// event is one server-sent event.
type event struct{ name, data string }

// broker fans events out to the open pages.
type broker struct {
	mu   sync.Mutex
	subs map[chan event]struct{}
}

func newBroker() *broker { return &broker{subs: map[chan event]struct{}{}} }

func (b *broker) subscribe() (<-chan event, func()) {
	ch := make(chan event, 8)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}
}

// publish never blocks: a page too slow to take an event misses it, and
// the next update (which carries the version) brings it up to date.
func (b *broker) publish(e event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

// keepAlive is how often an idle event stream sends a comment, so that
// proxies and browsers keep it open.
const keepAlive = 20 * time.Second

// serveEvents streams events to one page. It starts with the current
// version, so that a page that reconnects after missing updates reloads.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	ch, cancel := s.events.subscribe()
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	_, _, v, _ := s.current()
	fmt.Fprintf(w, "retry: 1000\nevent: update\ndata: %d\n\n", v)
	if err := rc.Flush(); err != nil {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.bg.Done(): // Close: the server is going away
			return
		case e := <-ch:
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.name, e.data)
		case <-tick.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
