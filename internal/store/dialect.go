package store

import (
	"strconv"
	"strings"
)

// dialect is the database engine behind a Store. Almost all of the store is
// written once for both; the dialect decides the few statements and
// algorithms that must differ (see queries and sql_postgres.go).
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

func (d dialect) String() string {
	if d == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// migrations returns the dialect's schema changes in order; version n is
// element n-1. Both lists have the same length and the same meaning, version
// by version, so that a schema version names one schema on either engine.
func (d dialect) migrations() []string {
	if d == dialectPostgres {
		return postgresMigrations()
	}
	return sqliteMigrations()
}

// noLimit is the LIMIT argument that means "all rows": SQLite takes a
// negative number, Postgres NULL (LIMIT NULL is LIMIT ALL).
func (d dialect) noLimit() any {
	if d == dialectPostgres {
		return nil
	}
	return -1
}

// bind turns a statement written with "?" placeholders into the dialect's
// form: unchanged for SQLite, "$1", "$2", … for Postgres. It is called once
// per statement when a Store opens, never per query. A "?" inside a string
// literal, a quoted identifier or a comment is left alone.
func (d dialect) bind(q string) string {
	if d != dialectPostgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(q[i+1:], c)
			if end < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+end+2])
			i += end + 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+end])
			i += end - 1
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
