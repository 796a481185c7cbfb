package crm

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// fillBlobs writes rows blobs of size bytes in one transaction of st's
// write connection, into a table of their own, and returns them.
func fillBlobs(t *testing.T, st *Store, rows, size int) [][]byte {
	t.Helper()
	want := make([][]byte, rows)
	err := st.Update(context.Background(), func(tx *Tx) error {
		if _, err := tx.exec(`CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY, b BLOB NOT NULL)`); err != nil {
			return err
		}
		for i := range want {
			want[i] = bytes.Repeat([]byte{byte('a' + i%26)}, size)
			want[i][0] = byte(i)
			if _, err := tx.exec(`INSERT INTO blobs (id, b) VALUES (?, ?)`, i+1, want[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// checkBlobs reads the blobs back through db (another connection than the
// one that wrote them) and checks the database's integrity.
func checkBlobs(t *testing.T, db *sql.DB, want [][]byte) {
	t.Helper()
	for i, w := range want {
		var got []byte
		if err := db.QueryRow(`SELECT b FROM blobs WHERE id = ?`, i+1).Scan(&got); err != nil {
			t.Fatalf("blob %d: %v", i+1, err)
		}
		if !bytes.Equal(got, w) {
			t.Fatalf("blob %d reads back %d bytes differing from the %d written", i+1, len(got), len(w))
		}
	}
	var ok string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q, %v", ok, err)
	}
}

// openWALTestDB opens path through database/sql on one connection, in WAL
// mode, with the driver parameters params (through the gathering VFS when
// they name it).
func openWALTestDB(t *testing.T, path, params string) *sql.DB {
	t.Helper()
	if err := walBufVFS(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_busy_timeout=10000"+params)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// walTestPair opens a new database twice, first through the gathering VFS
// with the driver parameters gathering, then with other, and creates
// table t (id, v) through the first. It returns the database's path.
func walTestPair(t *testing.T, gathering, other string) (path string, a, b *sql.DB) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "pair.db")
	a = openWALTestDB(t, path, gathering+"&vfs="+walBufVFSName)
	b = openWALTestDB(t, path, other)
	if _, err := a.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)`); err != nil {
		t.Fatal(err)
	}
	return path, a, b
}

// A commit's log writes reach the kernel gathered, a few large writes
// instead of two per page, and another connection reads exactly what was
// written.
func TestWALWritesGathered(t *testing.T) {
	st := openGroupTestStore(t)
	asked0, written0 := walBufCounts()
	want := fillBlobs(t, st, 20, 3000) // ~20 pages, ~80 KiB of log
	asked, written := walBufCounts()
	asked, written = asked-asked0, written-written0
	if asked < 40 {
		t.Fatalf("SQLite made %d log writes through the VFS for ~20 pages: is the store's write connection on %s?", asked, walBufVFSName)
	}
	if written > 4 {
		t.Fatalf("%d log writes became %d writes to the kernel; want them gathered into a few", asked, written)
	}
	checkBlobs(t, st.DB(), want)
}

// A transaction larger than the gathering buffer goes out in pieces, and
// still reads back whole after a checkpoint copies it into the database.
func TestWALLargeTransactionThroughVFS(t *testing.T) {
	st := openGroupTestStore(t)
	want := fillBlobs(t, st, 600, 3500) // ~2 MiB, twice the buffer
	checkBlobs(t, st.DB(), want)
	if _, err := st.write.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	checkBlobs(t, st.DB(), want)
}

// With synchronous=NORMAL no flush comes before SQLite publishes a commit
// to readers: the VFS writes what it gathered at that moment instead, so
// that another connection never looks for a page the log does not hold.
func TestWALGatheredWritesPublishedWithoutSync(t *testing.T) {
	_, w, r := walTestPair(t, "&_synchronous=NORMAL", "")
	for i := 1; i <= 50; i++ {
		b := bytes.Repeat([]byte{byte(i)}, 2000)
		if _, err := w.Exec(`INSERT INTO t VALUES (?, ?)`, i, b); err != nil {
			t.Fatal(err)
		}
		var got []byte
		if err := r.QueryRow(`SELECT v FROM t WHERE id = ?`, i).Scan(&got); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("row %d right after its commit, from another connection: %d bytes, %v", i, len(got), err)
		}
	}
}

// walKillEnv makes the test binary a writer that commits rows one by one
// into the store at its path, printing each row's number once its commit
// has returned, until it is killed.
const walKillEnv = "REPERMIT_WALBUF_KILL_DB"

func TestWALKillHelper(t *testing.T) {
	path := os.Getenv(walKillEnv)
	if path == "" {
		t.Skip("run by TestWALCommitsSurviveKill")
	}
	st, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 1; ; i++ {
		err := st.Update(context.Background(), func(tx *Tx) error {
			_, err := tx.exec(`INSERT INTO blobs (id, b) VALUES (?, randomblob(1500))`, i)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString(strconv.Itoa(i) + "\n")
		out.Flush()
	}
}

// A commit that returned is in the log file, not in the process's memory:
// kill -9 right after loses none of them.
func TestWALCommitsSurviveKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kill.db")
	st, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	fillBlobs(t, st, 0, 0)
	st.Close()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestWALKillHelper$")
	cmd.Env = append(os.Environ(), walKillEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	last, deadline := 0, time.Now().Add(60*time.Second)
	for last < 300 && lines.Scan() {
		if time.Now().After(deadline) {
			break
		}
		last, _ = strconv.Atoi(lines.Text())
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if last < 300 {
		t.Fatalf("the writer committed only %d rows before the deadline", last)
	}
	st, err = Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	if err := st.DB().QueryRow(`SELECT count(*) FROM blobs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < last {
		t.Fatalf("after kill -9, %d rows are stored; the writer had been told %d were committed", n, last)
	}
	var ok string
	if err := st.DB().QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q, %v", ok, err)
	}
}

// A transaction that spills pages to the log and then rolls back leaves
// frames that will never be committed. They must reach the file (or be
// dropped) while this connection still holds the log's write lock: once
// another connection has written over them, writing them late would
// destroy its commit.
func TestWALRolledBackSpillDoesNotClobberTheNextWriter(t *testing.T) {
	path, a, b := walTestPair(t, "&_synchronous=FULL&_cache_size=10", "&_synchronous=FULL")
	// An empty log: the rollback below then reloads its pages from the
	// database file and reads nothing from the log.
	if _, err := a.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	// More dirty pages than a's cache of 10 holds: SQLite spills them to
	// the log as uncommitted frames, then the rollback abandons them.
	tx, err := a.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 200; i++ {
		if _, err := tx.Exec(`INSERT INTO t VALUES (?, randomblob(1000))`, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// Another connection commits over the same part of the log.
	for i := 1; i <= 50; i++ {
		if _, err := b.Exec(`INSERT INTO t VALUES (?, zeroblob(1000))`, 1000+i); err != nil {
			t.Fatal(err)
		}
	}
	// a reads the log again (and writes, and closes).
	var n int
	if err := a.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(`INSERT INTO t VALUES (5000, x'00')`); err != nil {
		t.Fatal(err)
	}
	// A new connection, whose cache cannot hide what the log holds.
	a.Close()
	b.Close()
	c := openWALTestDB(t, path, "")
	var ok string
	if err := c.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q, %v", ok, err)
	}
	if err := c.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 51 {
		t.Fatalf("%d rows, %v; want the other connection's 50 and one more", n, err)
	}
}

// Two writers take turns on one database, one through the gathering VFS
// with a cache small enough to spill, one without; some of the gathering
// writer's transactions roll back, some readers look in between. Every
// committed row must be there, and nothing else.
func TestWALTakingTurnsWithAnotherWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "turns.db")
	a := openWALTestDB(t, path, "&_synchronous=FULL&_cache_size=12&vfs="+walBufVFSName)
	b := openWALTestDB(t, path, "&_synchronous=NORMAL")
	r := openWALTestDB(t, path, "")
	if _, err := a.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT, v BLOB)`); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	id := 0
	for round := range 60 {
		w, who := a, "a"
		if round%2 == 1 {
			w, who = b, "b"
		}
		tx, err := w.Begin()
		if err != nil {
			t.Fatal(err)
		}
		rows := 20 + round%7*25 // 20 to 170 rows of 700 bytes: most spill

		for range rows {
			id++
			if _, err := tx.Exec(`INSERT INTO t VALUES (?, ?, randomblob(700))`, id, who); err != nil {
				t.Fatal(err)
			}
		}
		if who == "a" && round%8 == 4 || who == "a" && round%6 == 0 {
			err = tx.Rollback()
		} else {
			err = tx.Commit()
			want[who] += rows
		}
		if err != nil {
			t.Fatal(err)
		}
		// Sometimes empty the log, so that a rollback reads nothing back
		// from it before the other writer's turn.
		if round%4 == 3 {
			if _, err := r.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				t.Fatal(err)
			}
		}
		for _, db := range []*sql.DB{a, b, r} {
			got := map[string]int{}
			rs, err := db.Query(`SELECT who, count(*) FROM t GROUP BY who`)
			if err != nil {
				t.Fatal(err)
			}
			for rs.Next() {
				var w string
				var n int
				if err := rs.Scan(&w, &n); err != nil {
					t.Fatal(err)
				}
				got[w] = n
			}
			rs.Close()
			if got["a"] != want["a"] || got["b"] != want["b"] {
				t.Fatalf("round %d: rows per writer %v, want %v", round, got, want)
			}
		}
	}
	var ok string
	if err := r.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q, %v", ok, err)
	}
}
