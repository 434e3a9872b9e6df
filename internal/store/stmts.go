package store

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps the statements of SQLite's ledger write path (Claim,
// Record, Release), prepared once on the database. Each transaction takes
// them with tx.StmtContext, which reuses the statement already prepared on
// the connection, instead of having SQLite parse and plan the SQL again in
// every transaction. (Postgres needs none of it: pgx caches its prepared
// statements per connection.)
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// prepared returns the statements of queries, preparing on the database
// those not prepared yet. It must not be called inside a transaction: with
// SQLite's single connection, preparing waits for the connection that the
// transaction holds.
func (s *Store) prepared(ctx context.Context, queries ...string) ([]*sql.Stmt, error) {
	c := &s.stmts
	out := make([]*sql.Stmt, len(queries))
	for i, q := range queries {
		c.mu.Lock()
		st := c.m[q]
		c.mu.Unlock()
		if st == nil {
			var err error
			if st, err = s.db.PrepareContext(ctx, q); err != nil {
				return nil, err
			}
			c.mu.Lock()
			if c.m == nil {
				c.m = map[string]*sql.Stmt{}
			}
			if first := c.m[q]; first != nil {
				st.Close() // another call prepared it meanwhile
				st = first
			} else {
				c.m[q] = st
			}
			c.mu.Unlock()
		}
		out[i] = st
	}
	return out, nil
}

// close closes the prepared statements.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}
