// pcache is a thin layer over SQLite's default page cache (pcache1) that
// spares it a pointless walk of the whole cache at the end of most write
// transactions. See crm/pcache.go for why.
//
// The declarations below are the public ABI of sqlite3.h (SQLite 3.x),
// restated as in walbuf_vfs.c.

#include <stdlib.h>
#include <string.h>

typedef struct sqlite3_pcache sqlite3_pcache;
typedef struct sqlite3_pcache_page {
	void *pBuf;
	void *pExtra;
} sqlite3_pcache_page;
typedef struct sqlite3_pcache_methods2 {
	int iVersion;
	void *pArg;
	int (*xInit)(void *);
	void (*xShutdown)(void *);
	sqlite3_pcache *(*xCreate)(int szPage, int szExtra, int bPurgeable);
	void (*xCachesize)(sqlite3_pcache *, int nCachesize);
	int (*xPagecount)(sqlite3_pcache *);
	sqlite3_pcache_page *(*xFetch)(sqlite3_pcache *, unsigned key, int createFlag);
	void (*xUnpin)(sqlite3_pcache *, sqlite3_pcache_page *, int discard);
	void (*xRekey)(sqlite3_pcache *, sqlite3_pcache_page *, unsigned oldKey, unsigned newKey);
	void (*xTruncate)(sqlite3_pcache *, unsigned iLimit);
	void (*xDestroy)(sqlite3_pcache *);
	void (*xShrink)(sqlite3_pcache *);
} sqlite3_pcache_methods2;

extern int sqlite3_config(int, ...);

#define SQLITE_CONFIG_PCACHE2 18
#define SQLITE_CONFIG_GETPCACHE2 19

// The most keys moved above the bound (rekeyed) that one cache keeps
// track of; past that it no longer knows, and lets every truncation
// through until the next one it lets through.
#define pcacheMaxMoved 8

// pcacheCache wraps one pcache1 cache with what is needed to tell that a
// truncation has nothing to drop:
//
//   - known: no page has a key >= bound, except keys created since
//     (largest: the largest of them) and keys moved there (moved);
//   - not known (a new cache, or too many moves): truncate lets pcache1
//     do its work.
typedef struct pcacheCache {
	sqlite3_pcache *inner;
	int known;
	unsigned bound;
	unsigned largest;
	int nMoved;
	unsigned moved[pcacheMaxMoved];
} pcacheCache;

static sqlite3_pcache_methods2 pcacheInner;
static long long pcacheTruncates, pcacheSkipped;

static int pcacheInit(void *arg) { return pcacheInner.xInit(pcacheInner.pArg); }
static void pcacheShutdown(void *arg) { pcacheInner.xShutdown(pcacheInner.pArg); }

static sqlite3_pcache *pcacheCreate(int szPage, int szExtra, int bPurgeable) {
	pcacheCache *c = calloc(1, sizeof *c);
	if (c == NULL) return NULL;
	c->inner = pcacheInner.xCreate(szPage, szExtra, bPurgeable);
	if (c->inner == NULL) {
		free(c);
		return NULL;
	}
	return (sqlite3_pcache *)c;
}

static void pcacheCachesize(sqlite3_pcache *p, int n) { pcacheInner.xCachesize(((pcacheCache *)p)->inner, n); }
static int pcachePagecount(sqlite3_pcache *p) { return pcacheInner.xPagecount(((pcacheCache *)p)->inner); }

static sqlite3_pcache_page *pcacheFetch(sqlite3_pcache *p, unsigned key, int create) {
	pcacheCache *c = (pcacheCache *)p;
	sqlite3_pcache_page *pg = pcacheInner.xFetch(c->inner, key, create);
	if (create && pg != NULL && key > c->largest) c->largest = key;
	return pg;
}

static void pcacheUnpin(sqlite3_pcache *p, sqlite3_pcache_page *pg, int discard) {
	pcacheInner.xUnpin(((pcacheCache *)p)->inner, pg, discard);
}

// pcacheRekey follows the one move that defeats pcache1: a b-tree
// rebalance parks a page under the number of the page after the lock
// byte's (past 1 GiB) and moves it back a moment later.
static void pcacheRekey(sqlite3_pcache *p, sqlite3_pcache_page *pg, unsigned from, unsigned to) {
	pcacheCache *c = (pcacheCache *)p;
	pcacheInner.xRekey(c->inner, pg, from, to);
	for (int i = 0; i < c->nMoved; i++) {
		if (c->moved[i] == from) {
			c->moved[i] = c->moved[--c->nMoved];
			break;
		}
	}
	if (c->known && to >= c->bound) {
		if (c->nMoved == pcacheMaxMoved) {
			c->known = 0;
		} else {
			c->moved[c->nMoved++] = to;
		}
	}
}

// pcacheTruncate drops the pages with keys >= limit. SQLite asks for it at
// the end of every transaction, with the database's size; pcache1 then
// walks its whole hash table whenever its largest key ever seen is far
// above the limit, which after a parked page it is until the next walk.
// When no page can have a key >= limit, there is nothing to walk for.
static void pcacheTruncate(sqlite3_pcache *p, unsigned limit) {
	pcacheCache *c = (pcacheCache *)p;
	__atomic_add_fetch(&pcacheTruncates, 1, __ATOMIC_RELAXED);
	if (c->known && limit >= c->bound && c->largest < limit) {
		int above = 0;
		for (int i = 0; i < c->nMoved; i++) above |= c->moved[i] >= limit;
		if (!above) {
			__atomic_add_fetch(&pcacheSkipped, 1, __ATOMIC_RELAXED);
			return;
		}
	}
	pcacheInner.xTruncate(c->inner, limit);
	c->known = 1;
	c->bound = limit;
	c->largest = 0;
	c->nMoved = 0;
}

static void pcacheDestroy(sqlite3_pcache *p) {
	pcacheCache *c = (pcacheCache *)p;
	pcacheInner.xDestroy(c->inner);
	free(c);
}

static void pcacheShrink(sqlite3_pcache *p) { pcacheInner.xShrink(((pcacheCache *)p)->inner); }

// pcacheLayer is the layer's method table (version 1, as pcache1's).
static sqlite3_pcache_methods2 pcacheLayer = {
	.iVersion = 1,
	.xInit = pcacheInit, .xShutdown = pcacheShutdown, .xCreate = pcacheCreate,
	.xCachesize = pcacheCachesize, .xPagecount = pcachePagecount, .xFetch = pcacheFetch,
	.xUnpin = pcacheUnpin, .xRekey = pcacheRekey, .xTruncate = pcacheTruncate,
	.xDestroy = pcacheDestroy, .xShrink = pcacheShrink,
};

// repermit_pcache_install puts the layer over the page cache SQLite would
// use. It must run before SQLite is initialised (sqlite3_config refuses
// otherwise) and at most once.
int repermit_pcache_install(void) {
	int rc = sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &pcacheInner);
	if (rc != 0) return rc;
	return sqlite3_config(SQLITE_CONFIG_PCACHE2, &pcacheLayer);
}

void repermit_pcache_counts(long long *truncates, long long *skipped) {
	*truncates = __atomic_load_n(&pcacheTruncates, __ATOMIC_RELAXED);
	*skipped = __atomic_load_n(&pcacheSkipped, __ATOMIC_RELAXED);
}
