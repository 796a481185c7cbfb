package crm

/*
extern int repermit_pcache_install(void);
extern void repermit_pcache_counts(long long *truncates, long long *skipped);
*/
import "C"

// The page cache layer (pcache.c) over SQLite's default page cache.
//
// Why: at the end of every transaction SQLite tells its page cache to drop
// the pages past the end of the database. The default cache skips that
// only while the largest page number it has seen is near the end; when a
// b-tree rebalance parks a page under a number past 1 GiB for a moment
// (btree.c's balance_nonroot, to put new pages in order), the next such
// call walks every page of the cache, though none is past the end by then.
// The confirmation page's group commits rebalance in most batches (the
// ledger's index and the current state take rows in the middle): perf put
// pcache1TruncateUnsafe at ~4.4% of the one writer's CPU. The layer
// follows page numbers created and moved since the last walk, and lets a
// truncation through only when a page can be past the limit.

// installPageCache puts the layer in place; SQLite accepts it only before
// it is initialised (configureSQLite).
func installPageCache() int { return int(C.repermit_pcache_install()) }

// pageCacheCounts reports how many truncations SQLite asked of the page
// caches since the process started, and how many had nothing to drop and
// were skipped.
func pageCacheCounts() (truncates, skipped int64) {
	var t, s C.longlong
	C.repermit_pcache_counts(&t, &s)
	return int64(t), int64(s)
}
