package source

import (
	"context"
	"sync"
)

// MemoryCache is a Cache in memory, for the tests. The
// zero value is ready; it is safe for concurrent use.
type MemoryCache struct {
	mu sync.Mutex
	m  map[string]Cached
}

var _ Cache = (*MemoryCache)(nil)

// GetDocument implements Cache; it never fails.
func (m *MemoryCache) GetDocument(_ context.Context, key string) (Cached, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.m[key]
	return c, ok, nil
}

// PutDocument implements Cache; it never fails. It keeps its own copy of the body.
func (m *MemoryCache) PutDocument(_ context.Context, key string, c Cached) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]Cached{}
	}
	c.Body = append([]byte(nil), c.Body...)
	m.m[key] = c
	return nil
}
