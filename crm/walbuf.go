package crm

/*
extern int repermit_walbuf_register(void);
extern void repermit_walbuf_counts(long long *asked, long long *written);
*/
import "C"

import (
	"fmt"
	"sync"
)

// walBufVFSName is the SQLite VFS (walbuf_vfs.c) that the store's write
// connection opens the database with when every commit flushes to disk
// (synchronous=FULL, the default; see SyncOnCheckpoint).
//
// Why: SQLite writes each page of a commit to the write-ahead log as two
// calls, its 24-byte frame header and the page, so a group commit of the
// confirmation page (~27 pages) made ~54 pwrite calls, each taking the
// file's lock and updating its times in the kernel: under load they cost
// ~13 µs each and ~15% of the one writer's time. The VFS gathers a
// commit's log writes in memory and hands them to the kernel as one write
// when SQLite flushes the file (or reads it, truncates it, asks its size,
// closes it, publishes the commit to readers, writes elsewhere in it, or
// lets go of the log's write lock: what a rolled-back transaction spilled
// must land before another writer's frames can).
// Measured with BenchmarkConfirmLoad, alternating runs with and without:
// +5% confirmations per second, every pair faster.
//
// Why only with synchronous=FULL: there the flush inside every COMMIT
// writes the gathered log before SQLite tells any reader about it, and a
// failed write fails the commit. With NORMAL the last chance to write is
// SQLite's memory barrier before publishing, which cannot report an
// error.
const walBufVFSName = "repermit-walbuf"

// walBufVFS registers the VFS once per process (after configureSQLite,
// since registering initialises SQLite) and reports whether it may be
// used.
var walBufVFS = sync.OnceValue(func() error {
	if rc := C.repermit_walbuf_register(); rc != 0 {
		return fmt.Errorf("register SQLite VFS %s: error %d", walBufVFSName, int(rc))
	}
	return nil
})

// walBufCounts reports how many write-ahead log writes SQLite made through
// the VFS since the process started, and how many writes the kernel got
// for them.
func walBufCounts() (asked, written int64) {
	var a, w C.longlong
	C.repermit_walbuf_counts(&a, &w)
	return int64(a), int64(w)
}
