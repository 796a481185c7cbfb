package main

import (
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestForgetLeavesNoPersonalData erases a person who was imported, invited,
// visited the page, confirmed with a number and interests, and is in a
// segment export; then no column of any table holds their email, phone or
// name in clear, a re-import does not bring them back, and the ledger still
// verifies.
func TestForgetLeavesNoPersonalData(t *testing.T) {
	tl := newTimeline(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	export := "email,first name,last name,phone,country,consent\n" +
		"zelda.quux@example.com,Zelda,Quuxington,+4915187654321,DE,yes\n" +
		"other@example.com,Otto,Other,+4915100000099,DE,yes\n"
	tl.export("crm.csv", export)
	tl.run()
	tl.mail()
	tl.answer("zelda.quux@example.com", "c", url.Values{"decision": {"confirm"}, "interest": {"offers", "recipes"}})
	tl.run()
	if got := tl.segment(); len(got) != 1 {
		t.Fatalf("segment before erasure: %v", got)
	}

	if err := tl.st.Forget(tl.ctx, "Zelda.Quux@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"zelda.quux@example.com", "zelda.quux", "Zelda", "Quuxington", "4915187654321", "87654321"} {
		if where := findText(t, tl.st.DB(), secret); where != "" {
			t.Errorf("%q is still stored in clear: %s", secret, where)
		}
	}
	if v, err := tl.st.Verify(tl.ctx); err != nil || !v.OK {
		t.Errorf("consent verify after erasure: %+v %v", v, err)
	}
	// A re-import of the same export rejects the erased row; nothing new is invited.
	tl.export("crm-again.csv", export)
	sum := tl.run()
	if sum.Import.Rejected != 1 || sum.Import.Created != 0 || sum.Invitations.Sent != 0 {
		t.Errorf("re-import after erasure: %+v, invitations %+v", sum.Import, sum.Invitations)
	}
	if got := tl.mail(); len(got) != 0 {
		t.Errorf("mail after erasure: %v", got)
	}
	if got := tl.segment(); len(got) != 0 {
		t.Errorf("segment after erasure: %v", got)
	}
}

// findText searches every text column of every table for s (case
// insensitive) and says where it is.
func findText(t *testing.T, db *sql.DB, s string) string {
	t.Helper()
	tables, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		tables.Scan(&n)
		names = append(names, n)
	}
	tables.Close()
	var found []string
	for _, table := range names {
		cols, err := db.Query(`SELECT name FROM pragma_table_info(?)`, table)
		if err != nil {
			t.Fatal(err)
		}
		var colNames []string
		for cols.Next() {
			var c string
			cols.Scan(&c)
			colNames = append(colNames, c)
		}
		cols.Close()
		for _, col := range colNames {
			var n int
			q := fmt.Sprintf(`SELECT count(*) FROM %q WHERE instr(lower(CAST(%q AS TEXT)), lower(?)) > 0`, table, col)
			if err := db.QueryRow(q, s).Scan(&n); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if n > 0 {
				found = append(found, fmt.Sprintf("%s.%s (%d rows)", table, col, n))
			}
		}
	}
	return strings.Join(found, ", ")
}
