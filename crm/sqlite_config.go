package crm

/*
// sqlite3_config is SQLite's process-wide configuration, compiled into
// this binary by github.com/mattn/go-sqlite3. It is variadic, which cgo
// cannot call, hence the wrappers. The numbers are SQLITE_CONFIG_MEMSTATUS
// (9) and SQLITE_CONFIG_LOOKASIDE (13) of sqlite3.h.
extern int sqlite3_config(int, ...);

static int repermit_config_memstatus(int on) { return sqlite3_config(9, on); }
static int repermit_config_lookaside(int size, int count) { return sqlite3_config(13, size, count); }
*/
import "C"

import (
	"fmt"
	"sync"
)

// Lookaside memory per connection: SQLite's own small-allocation pool,
// lookasideSlots slots of lookasideSlotSize bytes (1.2 MB), instead of its
// default of 40 slots (48 KB).
const (
	lookasideSlotSize = 1200
	lookasideSlots    = 1000
)

// sqliteConfig is the outcome of configuring SQLite, which happens once per
// process, before its first connection: sqlite3_config refuses any change
// once SQLite is initialised.
var sqliteConfig = sync.OnceValue(configureSQLite)

// configureSQLite turns off SQLite's memory statistics and enlarges each
// connection's lookaside pool.
//
// Why: with statistics on (SQLite's default), every allocation and free,
// in every connection, takes one process-wide mutex to count bytes that
// repermit never reads. Under the confirmation page's load the writer, the
// lookup connections and the checkpointer allocate thousands of times per
// request between them, and they contended for that mutex. A confirmation
// makes more small allocations than 40 lookaside slots hold, so the rest
// went to malloc. Measured with BenchmarkRecordDecision (CPU per recorded
// confirmation, alternating runs): statistics off -10%, then 1,000 slots
// another -10%; BenchmarkConfirmLoad +5-8% confirmations/s.
//
// Failing leaves SQLite's defaults, which are slower, never wrong: the
// store opens either way, and the error is kept for the test that checks it.
func configureSQLite() error {
	if rc := C.repermit_config_memstatus(0); rc != 0 {
		return fmt.Errorf("sqlite3_config(MEMSTATUS): error %d (SQLite was initialised before the store opened)", int(rc))
	}
	if rc := C.repermit_config_lookaside(lookasideSlotSize, lookasideSlots); rc != 0 {
		return fmt.Errorf("sqlite3_config(LOOKASIDE): error %d", int(rc))
	}
	if rc := installPageCache(); rc != 0 {
		return fmt.Errorf("sqlite3_config(PCACHE2): error %d", rc)
	}
	return nil
}
