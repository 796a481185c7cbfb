package crm

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// openPlainTestDB opens a database with the driver's defaults but the
// store's process-wide SQLite settings (the page cache layer among them).
func openPlainTestDB(t *testing.T) *sql.DB {
	t.Helper()
	if err := sqliteConfig(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "pc.db")+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// Rebalancing b-trees (rows arriving in the middle of an index, as the
// ledger's do) parks pages under a number past 1 GiB; the page cache layer
// still lets the end of nearly every transaction skip the truncation
// (that then walked the whole cache), and nothing is lost.
func TestPageCacheSkipsTruncationsWithNothingToDrop(t *testing.T) {
	db := openPlainTestDB(t)
	if _, err := db.Exec(`CREATE TABLE r (id INTEGER PRIMARY KEY, k TEXT, v TEXT); CREATE INDEX r_k ON r(k)`); err != nil {
		t.Fatal(err)
	}
	truncates0, skipped0 := pageCacheCounts()
	rng := rand.New(rand.NewPCG(1, 2))
	const txns, perTx = 200, 20
	for i := range txns {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for range perTx {
			k := fmt.Sprintf("%016x", rng.Uint64())
			if _, err := tx.Exec(`INSERT INTO r (k, v) VALUES (?, ?)`, k, fmt.Sprintf("%0200d", i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	truncates, skipped := pageCacheCounts()
	truncates, skipped = truncates-truncates0, skipped-skipped0
	if truncates < txns {
		t.Fatalf("SQLite asked %d truncations for %d transactions: is the page cache layer installed?", truncates, txns)
	}
	if skipped < txns*9/10 {
		t.Fatalf("%d of %d truncations skipped over %d transactions; want nearly every transaction's", skipped, truncates, txns)
	}
	var n int
	var ok string
	if err := db.QueryRow(`SELECT count(*) FROM r`).Scan(&n); err != nil || n != txns*perTx {
		t.Fatalf("%d rows (%v), want %d", n, err, txns*perTx)
	}
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q %v", ok, err)
	}
}

// Truncations that may have pages to drop still reach SQLite's page
// cache: after a transaction that grew the database rolls back, and after
// a VACUUM shrinks it. The data reads back right through both.
func TestPageCacheStillDropsPagesPastTheEnd(t *testing.T) {
	db := openPlainTestDB(t)
	if _, err := db.Exec(`CREATE TABLE b (id INTEGER PRIMARY KEY, v BLOB)`); err != nil {
		t.Fatal(err)
	}
	passed := func() int64 {
		truncates, skipped := pageCacheCounts()
		return truncates - skipped
	}
	fill := func(tx interface {
		Exec(string, ...any) (sql.Result, error)
	}, from, n int, tag byte) {
		t.Helper()
		for i := from; i < from+n; i++ {
			blob := make([]byte, 3000)
			for j := range blob {
				blob[j] = tag + byte(i)
			}
			if _, err := tx.Exec(`INSERT INTO b (id, v) VALUES (?, ?)`, i, blob); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill(db, 0, 300, 'a')
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	fill(tx, 300, 300, 'x') // grows the file, then is undone
	before := passed()
	tx.Rollback()
	if passed() == before {
		t.Fatal("the rollback of a growing transaction did not truncate the page cache")
	}
	if _, err := db.Exec(`DELETE FROM b WHERE id >= 100`); err != nil {
		t.Fatal(err)
	}
	before = passed()
	if _, err := db.Exec(`VACUUM`); err != nil {
		t.Fatal(err)
	}
	if passed() == before {
		t.Fatal("a VACUUM that shrank the database did not truncate the page cache")
	}
	fill(db, 100, 400, 'c')
	rows, err := db.Query(`SELECT id, v FROM b ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id int
		var v []byte
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		tag := byte('a')
		if id >= 100 {
			tag = 'c'
		}
		if len(v) != 3000 || v[0] != tag+byte(id) || v[2999] != tag+byte(id) {
			t.Fatalf("row %d reads %d bytes starting %q, want 3000 of %q", id, len(v), v[:1], tag+byte(id))
		}
		n++
	}
	if err := rows.Err(); err != nil || n != 500 {
		t.Fatalf("%d rows (%v), want 500", n, err)
	}
	var ok string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q %v", ok, err)
	}
}
