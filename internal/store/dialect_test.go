package store

import "testing"

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
