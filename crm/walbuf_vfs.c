// walbuf is a shim over SQLite's default VFS ("unix") that gathers the
// writes SQLite makes to a WAL file and hands them to the kernel as one
// pwrite when SQLite syncs the file (or reads it, truncates it, asks its
// size, closes it, publishes the new frames, lets go of the log's write
// lock, or a write does not follow the previous one). SQLite writes every frame as two calls, its 24-byte
// header and its page: a group commit of ~27 pages was ~54 pwrite calls,
// each taking the inode lock and updating the file times. See
// crm/walbuf.go for why and when it is used.
//
// The declarations below are the public ABI of sqlite3.h (SQLite 3.x),
// restated because the SQLite that github.com/mattn/go-sqlite3 compiles
// into this binary does not put its header on this package's include
// path.

#include <stdlib.h>
#include <string.h>

typedef long long sqlite3_int64;
typedef struct sqlite3_file sqlite3_file;
typedef struct sqlite3_io_methods sqlite3_io_methods;
typedef struct sqlite3_vfs sqlite3_vfs;
typedef void (*sqlite3_syscall_ptr)(void);

struct sqlite3_file {
	const sqlite3_io_methods *pMethods;
};

struct sqlite3_io_methods {
	int iVersion;
	int (*xClose)(sqlite3_file *);
	int (*xRead)(sqlite3_file *, void *, int iAmt, sqlite3_int64 iOfst);
	int (*xWrite)(sqlite3_file *, const void *, int iAmt, sqlite3_int64 iOfst);
	int (*xTruncate)(sqlite3_file *, sqlite3_int64 size);
	int (*xSync)(sqlite3_file *, int flags);
	int (*xFileSize)(sqlite3_file *, sqlite3_int64 *pSize);
	int (*xLock)(sqlite3_file *, int);
	int (*xUnlock)(sqlite3_file *, int);
	int (*xCheckReservedLock)(sqlite3_file *, int *pResOut);
	int (*xFileControl)(sqlite3_file *, int op, void *pArg);
	int (*xSectorSize)(sqlite3_file *);
	int (*xDeviceCharacteristics)(sqlite3_file *);
	int (*xShmMap)(sqlite3_file *, int iPg, int pgsz, int, void volatile **);
	int (*xShmLock)(sqlite3_file *, int offset, int n, int flags);
	void (*xShmBarrier)(sqlite3_file *);
	int (*xShmUnmap)(sqlite3_file *, int deleteFlag);
	int (*xFetch)(sqlite3_file *, sqlite3_int64 iOfst, int iAmt, void **pp);
	int (*xUnfetch)(sqlite3_file *, sqlite3_int64 iOfst, void *p);
};

struct sqlite3_vfs {
	int iVersion;
	int szOsFile;
	int mxPathname;
	sqlite3_vfs *pNext;
	const char *zName;
	void *pAppData;
	int (*xOpen)(sqlite3_vfs *, const char *zName, sqlite3_file *, int flags, int *pOutFlags);
	int (*xDelete)(sqlite3_vfs *, const char *zName, int syncDir);
	int (*xAccess)(sqlite3_vfs *, const char *zName, int flags, int *pResOut);
	int (*xFullPathname)(sqlite3_vfs *, const char *zName, int nOut, char *zOut);
	void *(*xDlOpen)(sqlite3_vfs *, const char *zFilename);
	void (*xDlError)(sqlite3_vfs *, int nByte, char *zErrMsg);
	void (*(*xDlSym)(sqlite3_vfs *, void *, const char *zSymbol))(void);
	void (*xDlClose)(sqlite3_vfs *, void *);
	int (*xRandomness)(sqlite3_vfs *, int nByte, char *zOut);
	int (*xSleep)(sqlite3_vfs *, int microseconds);
	int (*xCurrentTime)(sqlite3_vfs *, double *);
	int (*xGetLastError)(sqlite3_vfs *, int, char *);
	int (*xCurrentTimeInt64)(sqlite3_vfs *, sqlite3_int64 *);
	int (*xSetSystemCall)(sqlite3_vfs *, const char *zName, sqlite3_syscall_ptr);
	sqlite3_syscall_ptr (*xGetSystemCall)(sqlite3_vfs *, const char *zName);
	const char *(*xNextSystemCall)(sqlite3_vfs *, const char *zName);
};

extern sqlite3_vfs *sqlite3_vfs_find(const char *zVfsName);
extern int sqlite3_vfs_register(sqlite3_vfs *, int makeDflt);
extern sqlite3_file *sqlite3_database_file_object(const char *);

#define SQLITE_OK 0
#define SQLITE_ERROR 1
#define SQLITE_NOMEM 7
#define SQLITE_OPEN_MAIN_DB 0x00000100
#define SQLITE_OPEN_WAL 0x00080000
#define SQLITE_SHM_UNLOCK 1

// walWriteLock is the wal-index lock a connection holds while it writes
// the log (WAL_WRITE_LOCK in SQLite's wal.c).
#define walWriteLock 0

// walbufMax is the most a WAL file gathers before writing it out: a
// larger transaction goes out in writes of walbufMaxWrite as it grows.
#define walbufMax (1 << 20)

// walbufMaxWrite is the most the unix VFS writes in one call: it keeps
// only the low 17 bits of a length (seekAndWriteFd, 0x1ffff). 31 pages of
// 4 KiB, most group commits whole.
#define walbufMaxWrite (31 * 4096)

typedef struct walbufFile walbufFile;
struct walbufFile {
	sqlite3_file base;   // pMethods: &walbufMethods, or NULL when the open failed
	sqlite3_file *real;  // the default VFS's file, in the memory after this struct
	walbufFile *wal;     // a main database file: its WAL file, while open
	walbufFile *db;      // a WAL file: its main database file
	int isWal;
	char *buf;           // a WAL file: the writes not yet given to real
	int nBuf, capBuf;
	sqlite3_int64 bufOff; // where buf[0] goes in the file
};

static sqlite3_vfs walbufVfs;
static sqlite3_vfs *walbufReal;

// Counts for tests: the WAL writes SQLite asked for, and the writes the
// real files got for them.
static long long walbufAsked, walbufWritten;

// walbufFlush hands the gathered writes to the real file.
static int walbufFlush(walbufFile *p) {
	if (p->nBuf == 0) {
		return SQLITE_OK;
	}
	int rc = SQLITE_OK;
	for (int done = 0; done < p->nBuf && rc == SQLITE_OK;) {
		int n = p->nBuf - done;
		if (n > walbufMaxWrite) {
			n = walbufMaxWrite;
		}
		rc = p->real->pMethods->xWrite(p->real, p->buf + done, n, p->bufOff + done);
		__atomic_add_fetch(&walbufWritten, 1, __ATOMIC_RELAXED);
		done += n;
	}
	p->nBuf = 0;
	return rc;
}

static int walbufClose(sqlite3_file *f) {
	walbufFile *p = (walbufFile *)f;
	int rc = walbufFlush(p);
	if (p->isWal && p->db) {
		p->db->wal = 0;
	}
	if (!p->isWal && p->wal) {
		p->wal->db = 0;
	}
	free(p->buf);
	p->buf = 0;
	int rc2 = p->real->pMethods->xClose(p->real);
	return rc != SQLITE_OK ? rc : rc2;
}

static int walbufRead(sqlite3_file *f, void *b, int n, sqlite3_int64 off) {
	walbufFile *p = (walbufFile *)f;
	int rc = walbufFlush(p);
	if (rc != SQLITE_OK) {
		return rc;
	}
	return p->real->pMethods->xRead(p->real, b, n, off);
}

static int walbufWrite(sqlite3_file *f, const void *b, int n, sqlite3_int64 off) {
	walbufFile *p = (walbufFile *)f;
	if (!p->isWal) {
		return p->real->pMethods->xWrite(p->real, b, n, off);
	}
	__atomic_add_fetch(&walbufAsked, 1, __ATOMIC_RELAXED);
	if (p->nBuf > 0 && (off != p->bufOff + p->nBuf || p->nBuf + n > walbufMax)) {
		int rc = walbufFlush(p);
		if (rc != SQLITE_OK) {
			return rc;
		}
	}
	if (n > walbufMax) {
		__atomic_add_fetch(&walbufWritten, 1, __ATOMIC_RELAXED);
		return p->real->pMethods->xWrite(p->real, b, n, off);
	}
	if (p->nBuf + n > p->capBuf) {
		int c = p->capBuf ? p->capBuf : 64 << 10;
		while (c < p->nBuf + n) {
			c *= 2;
		}
		char *nb = realloc(p->buf, c);
		if (!nb) {
			int rc = walbufFlush(p);
			if (rc != SQLITE_OK) {
				return rc;
			}
			__atomic_add_fetch(&walbufWritten, 1, __ATOMIC_RELAXED);
			return p->real->pMethods->xWrite(p->real, b, n, off);
		}
		p->buf = nb;
		p->capBuf = c;
	}
	if (p->nBuf == 0) {
		p->bufOff = off;
	}
	memcpy(p->buf + p->nBuf, b, n);
	p->nBuf += n;
	return SQLITE_OK;
}

// Each of the next three writes the gathered frames out first, for its
// own reason.

// A truncation (a WAL reset) must not land before frames meant for the
// part it keeps, nor have them land past the new end afterwards.
static int walbufTruncate(sqlite3_file *f, sqlite3_int64 size) {
	walbufFile *p = (walbufFile *)f;
	int rc = walbufFlush(p);
	return rc != SQLITE_OK ? rc : p->real->pMethods->xTruncate(p->real, size);
}

// The sync inside COMMIT is what makes the commit durable: the frames
// must be in the file when it runs, and a failed write fails the commit.
static int walbufSync(sqlite3_file *f, int flags) {
	walbufFile *p = (walbufFile *)f;
	int rc = walbufFlush(p);
	return rc != SQLITE_OK ? rc : p->real->pMethods->xSync(p->real, flags);
}

// SQLite derives frame offsets and the need to restart the log from the
// size, which must count the gathered frames.
static int walbufFileSize(sqlite3_file *f, sqlite3_int64 *size) {
	walbufFile *p = (walbufFile *)f;
	int rc = walbufFlush(p);
	return rc != SQLITE_OK ? rc : p->real->pMethods->xFileSize(p->real, size);
}

static int walbufLock(sqlite3_file *f, int l) {
	walbufFile *p = (walbufFile *)f;
	return p->real->pMethods->xLock(p->real, l);
}

static int walbufUnlock(sqlite3_file *f, int l) {
	walbufFile *p = (walbufFile *)f;
	return p->real->pMethods->xUnlock(p->real, l);
}

static int walbufCheckReservedLock(sqlite3_file *f, int *out) {
	walbufFile *p = (walbufFile *)f;
	return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int walbufFileControl(sqlite3_file *f, int op, void *arg) {
	walbufFile *p = (walbufFile *)f;
	return p->real->pMethods->xFileControl(p->real, op, arg);
}

static int walbufSectorSize(sqlite3_file *f) {
	walbufFile *p = (walbufFile *)f;
	return p->real->pMethods->xSectorSize(p->real);
}

static int walbufDeviceCharacteristics(sqlite3_file *f) {
	walbufFile *p = (walbufFile *)f;
	return p->real->pMethods->xDeviceCharacteristics(p->real);
}

static int walbufShmMap(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp) {
	walbufFile *p = (walbufFile *)f;
	if (p->real->pMethods->iVersion < 2) {
		return SQLITE_ERROR;
	}
	return p->real->pMethods->xShmMap(p->real, pg, pgsz, extend, pp);
}

// walbufShmLock writes out what the WAL file gathered before the
// connection lets go of the log's write lock (lock 0 of the wal-index). A
// commit has written everything by then; a rolled-back transaction may
// leave frames it spilled from its cache (never to be committed), and
// those must reach the file while no other connection can write: written
// later, they would land on whatever the next writer put there.
static int walbufShmLock(sqlite3_file *f, int off, int n, int flags) {
	walbufFile *p = (walbufFile *)f;
	if (p->real->pMethods->iVersion < 2) {
		return SQLITE_ERROR;
	}
	if (p->wal && (flags & SQLITE_SHM_UNLOCK) && off <= walWriteLock && walWriteLock < off + n) {
		int rc = walbufFlush(p->wal);
		if (rc != SQLITE_OK) {
			return rc;
		}
	}
	return p->real->pMethods->xShmLock(p->real, off, n, flags);
}

// walbufShmBarrier is where SQLite publishes new frames to readers (the
// wal-index header): a WAL write still gathered goes out first, so that
// no reader, in this process or another, looks for a frame the file does
// not hold yet. A commit that syncs has flushed already; this covers the
// rest.
static void walbufShmBarrier(sqlite3_file *f) {
	walbufFile *p = (walbufFile *)f;
	if (p->wal) {
		walbufFlush(p->wal);
	}
	if (p->real->pMethods->iVersion >= 2) {
		p->real->pMethods->xShmBarrier(p->real);
	}
}

static int walbufShmUnmap(sqlite3_file *f, int del) {
	walbufFile *p = (walbufFile *)f;
	if (p->real->pMethods->iVersion < 2) {
		return SQLITE_OK;
	}
	return p->real->pMethods->xShmUnmap(p->real, del);
}

static int walbufFetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp) {
	walbufFile *p = (walbufFile *)f;
	if (p->real->pMethods->iVersion < 3) {
		*pp = 0;
		return SQLITE_OK;
	}
	return p->real->pMethods->xFetch(p->real, off, n, pp);
}

static int walbufUnfetch(sqlite3_file *f, sqlite3_int64 off, void *ptr) {
	walbufFile *p = (walbufFile *)f;
	if (p->real->pMethods->iVersion < 3) {
		return SQLITE_OK;
	}
	return p->real->pMethods->xUnfetch(p->real, off, ptr);
}

static const sqlite3_io_methods walbufMethods = {
	3,
	walbufClose,
	walbufRead,
	walbufWrite,
	walbufTruncate,
	walbufSync,
	walbufFileSize,
	walbufLock,
	walbufUnlock,
	walbufCheckReservedLock,
	walbufFileControl,
	walbufSectorSize,
	walbufDeviceCharacteristics,
	walbufShmMap,
	walbufShmLock,
	walbufShmBarrier,
	walbufShmUnmap,
	walbufFetch,
	walbufUnfetch,
};

// walbufRealOffset is where the real file starts in a walbufFile's memory,
// aligned for any type.
#define walbufRealOffset ((sizeof(walbufFile) + 15) & ~(size_t)15)

static int walbufOpen(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *outFlags) {
	walbufFile *p = (walbufFile *)f;
	memset(p, 0, sizeof(*p));
	p->real = (sqlite3_file *)((char *)f + walbufRealOffset);
	int rc = walbufReal->xOpen(walbufReal, name, p->real, flags, outFlags);
	if (p->real->pMethods == 0) {
		p->base.pMethods = 0;
		return rc;
	}
	p->base.pMethods = &walbufMethods;
	if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) && name) {
		p->isWal = 1;
		walbufFile *db = (walbufFile *)sqlite3_database_file_object(name);
		if (db && db->base.pMethods == &walbufMethods) {
			p->db = db;
			db->wal = p;
		}
	}
	return rc;
}

void repermit_walbuf_counts(long long *asked, long long *written) {
	*asked = __atomic_load_n(&walbufAsked, __ATOMIC_RELAXED);
	*written = __atomic_load_n(&walbufWritten, __ATOMIC_RELAXED);
}

// repermit_walbuf_register registers the shim as the VFS "repermit-walbuf"
// (not the default). It returns 0 on success.
int repermit_walbuf_register(void) {
	if (walbufReal) {
		return SQLITE_OK;
	}
	sqlite3_vfs *real = sqlite3_vfs_find(0);
	if (!real) {
		return SQLITE_ERROR;
	}
	walbufReal = real;
	memcpy(&walbufVfs, real, sizeof(walbufVfs));
	walbufVfs.iVersion = real->iVersion < 3 ? real->iVersion : 3;
	walbufVfs.pNext = 0;
	walbufVfs.zName = "repermit-walbuf";
	walbufVfs.szOsFile = (int)walbufRealOffset + real->szOsFile;
	walbufVfs.xOpen = walbufOpen;
	return sqlite3_vfs_register(&walbufVfs, 0);
}
