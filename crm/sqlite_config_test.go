package crm

import "testing"

// TestSQLiteConfigured: the process-wide settings (configureSQLite) take
// effect, which they only do when set before SQLite's first connection:
// Open sets them first thing.
func TestSQLiteConfigured(t *testing.T) {
	openGroupTestStore(t)
	if err := sqliteConfig(); err != nil {
		t.Fatal(err)
	}
}
