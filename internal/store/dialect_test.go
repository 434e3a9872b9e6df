package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

func TestBind(t *testing.T) {
	tests := []struct{ in, sqlite, postgres string }{
		{"SELECT 1", "SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = ? AND b = ?", "a = $1 AND b = $2"},
		{"x = '?' AND y = ?", "x = '?' AND y = ?", "x = '?' AND y = $1"},
		{`"we?ird" = ? -- why?` + "\nAND z = ?", `"we?ird" = ? -- why?` + "\nAND z = ?", `"we?ird" = $1 -- why?` + "\nAND z = $2"},
		{"a = 'it''s' || ?", "a = 'it''s' || ?", "a = 'it''s' || $1"},
		{"a = ?::text[] -- ?", "a = ?::text[] -- ?", "a = $1::text[] -- ?"},
		{"a = 'open ?", "a = 'open ?", "a = 'open ?"},
	}
	for _, tt := range tests {
		if got := dialectSQLite.bind(tt.in); got != tt.sqlite {
			t.Errorf("sqlite bind(%q) = %q, want %q", tt.in, got, tt.sqlite)
		}
		if got := dialectPostgres.bind(tt.in); got != tt.postgres {
			t.Errorf("postgres bind(%q) = %q, want %q", tt.in, got, tt.postgres)
		}
	}
}

// TestMigrationListsMatch: a schema version means the same change on both
// engines, so both lists must have the same length.
func TestMigrationListsMatch(t *testing.T) {
	if s, p := len(sqliteMigrations()), len(postgresMigrations()); s != p {
		t.Fatalf("%d SQLite migrations, %d Postgres migrations: every migration needs both", s, p)
	}
}

// TestStatementsGoThroughQueries: the SQL constants are written with "?"
// placeholders, which Postgres rejects; code must run them through the
// bound queries (s.q), never directly. This catches a direct use without a
// Postgres server at hand.
func TestStatementsGoThroughQueries(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*ast.File{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = f
	}
	declared := map[string]bool{}
	for name, f := range files {
		if name != "sql.go" && name != "sql_postgres.go" {
			continue
		}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
				for _, sp := range g.Specs {
					for _, n := range sp.(*ast.ValueSpec).Names {
						declared[n.Name] = true
					}
				}
			}
		}
	}
	for name, f := range files {
		if name == "sql.go" || name == "sql_postgres.go" || name == "queries.go" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			id, ok := n.(*ast.Ident)
			if ok && declared[id.Name] && (strings.HasPrefix(id.Name, "sql") || strings.HasPrefix(id.Name, "pg")) {
				t.Errorf("%s: %s used directly; add it to queries (queries.go) and use s.q", fset.Position(id.Pos()), id.Name)
			}
			return true
		})
	}
}
