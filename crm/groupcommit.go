package crm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// GroupCommit batches the writes of many concurrent callers into one
// transaction. With synchronous=FULL every commit is an fsync, and an fsync
// costs far more than the few inserts a caller makes; so one goroutine takes
// every call that is waiting, runs each in its own SAVEPOINT inside one
// transaction (a failing call rolls back only its own work), commits once,
// and then answers every caller. A caller hears nil only after its work is
// durable on disk.
//
// Batches form naturally: while one commit is being written, new calls queue
// up and become the next batch, so a lone caller waits for no timer.
//
// Use it where many small independent writes arrive at once (the
// confirmation page); Store.Update stays the simple path for everything else.
// Both go through the store's one writer connection, so they never conflict.
type GroupCommit struct {
	store *Store
	max   int
	wait  time.Duration

	mu     sync.RWMutex // guards closed against sends on a closed reqs
	closed bool
	reqs   chan *groupCall
	done   chan struct{}

	batches atomic.Int64
	calls   atomic.Int64

	// stmts are the statements the batches ran, prepared once on the
	// store's write connection and handed to each batch's transaction
	// (database/sql reuses a statement already prepared on the
	// transaction's connection): preparing them anew for every batch cost
	// ~11% of the confirmation server's CPU. Only the writer goroutine
	// touches it.
	stmts map[string]*sql.Stmt

	stopCheckpoints  func() // nil: inline checkpoints
	restoreTempStore bool   // set temp_store back to DEFAULT on Close (set before the writer starts)
	restoreCacheSize string // the cache_size to set back on Close; "" to leave it (set before the writer starts)
	restoreOnce      sync.Once
	procs            int // GOMAXPROCS before the writer took one more (set before the writer starts)
}

// GroupCommitOptions tune a GroupCommit. The zero value works.
type GroupCommitOptions struct {
	// MaxBatch caps the calls per transaction (default 512), which bounds
	// how long the first caller of a batch waits behind the others.
	MaxBatch int
	// MaxWait, when set, makes the writer wait up to this long for more
	// calls after the first one of a batch. Natural batching needs no wait;
	// set it only when callers arrive too sparsely to batch on their own.
	MaxWait time.Duration
	// InlineCheckpoints keeps SQLite's default: the commit that fills the
	// WAL past 1000 pages copies it into the database, and every caller of
	// that batch waits for it. By default a background connection does
	// that instead (a PASSIVE checkpoint does not block the writer), which
	// takes those stalls off the callers' latency.
	InlineCheckpoints bool
}

// groupCommitCacheSize is the write connection's page cache while a
// GroupCommit runs (PRAGMA cache_size; negative: KiB), see NewGroupCommit.
const groupCommitCacheSize = "-8192"

// ErrGroupCommitClosed is returned by Update after Close.
var ErrGroupCommitClosed = errors.New("the store's group commit writer is closed (the server is shutting down); try again shortly")

type groupCall struct {
	ctx context.Context
	fn  func(*Tx) error
	res chan error
}

// NewGroupCommit starts the batching writer. Call Close when done: it
// finishes the calls already queued.

func (s *Store) NewGroupCommit(opt GroupCommitOptions) *GroupCommit {
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 512
	}
	g := &GroupCommit{
		store: s,
		max:   opt.MaxBatch,
		wait:  opt.MaxWait,
		reqs:  make(chan *groupCall, opt.MaxBatch),
		done:  make(chan struct{}),
		stmts: map[string]*sql.Stmt{},
	}
	if !opt.InlineCheckpoints {
		g.stopCheckpoints = s.BackgroundCheckpoints()
	}
	// Each call's savepoint keeps the pages it changes in a statement
	// journal. SQLite moves that journal to a temporary file once a call
	// changes more than 64 KiB, and keeps writing the file (a syscall per
	// page) for the rest of the batch; in memory it costs a copy. A call's
	// pages are few and the journal is emptied after every call, so memory
	// is bounded by the largest call. Under the confirmation load the file
	// writes were ~5% of the server's CPU. Close restores the default.
	if _, err := s.write.Exec(`PRAGMA temp_store = MEMORY`); err == nil {
		g.restoreTempStore = true
	}
	// A small page cache on the write connection while it serves the
	// batches. When a b-tree split renumbers pages, SQLite parks a page
	// under a temporary number (that of the lock byte's page, past 1 GiB),
	// and the next commit then frees "pages past the end of the database"
	// by walking every page in the cache instead of the few past its end.
	// Splits happen in most batches (the ledger's and the current state's
	// indexes take rows in the middle), so every commit walked the store's
	// 48 MiB cache: ~25 µs of the writer's time per confirmation (perf:
	// pcache1TruncateUnsafe under pager_end_transaction) with a cache of a
	// few thousand pages, more as it fills. A batch touches a few hundred
	// pages, so 8 MiB still keeps them and the b-trees' upper levels.
	// The page cache layer (pcache.c) now spares most of those walks, but
	// the store's 48 MiB measured no better on the writer: -3.2%
	// confirmations per second (1 of 5 alternating pairs faster).
	// Close restores the store's size.
	var prevCache string
	if err := s.write.QueryRow(`PRAGMA cache_size`).Scan(&prevCache); err == nil {
		if _, err := s.write.Exec(`PRAGMA cache_size = ` + groupCommitCacheSize); err == nil {
			g.restoreCacheSize = prevCache
		}
	}
	// The writer runs on its own OS thread (see loop) and spends its life
	// in cgo calls, which keep their P until the runtime's monitor takes
	// it back (after 20 µs at the earliest), and an fsync's return waits
	// for a free P. With GOMAXPROCS = cores, the HTTP handlers were left
	// with about one P between them. One more P for the writer: measured
	// with BenchmarkConfirmLoad on this 2-core machine, alternating runs,
	// +8.3% confirmations per second (5 of 5 pairs faster); two more
	// instead of one added nothing (10 pairs). Close gives it back.
	g.procs = runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(g.procs + 1)
	go g.loop()
	return g
}

// Update runs fn in the next batch's transaction and returns once the
// batch has committed (nil: fn's work is durable) or fn's work was rolled
// back (fn's error, or the commit's). tx.Now is fixed for the duration of
// fn. fn must not commit or roll back tx itself, and should be short: every
// caller of the batch waits for it. fn sees the uncommitted work of the
// calls before it in the same batch, as it would had they committed one by
// one.
//
// fn may run twice: when a call of the batch fails, the batch is rolled
// back and run again with each call in its own savepoint (see run). So fn
// must set whatever it reports to its caller anew on every run, and change
// nothing outside tx that a second run would get wrong.
//
// A ctx cancelled before fn starts skips fn; once fn has run, Update waits
// for the commit regardless, so that the caller knows the outcome.
func (g *GroupCommit) Update(ctx context.Context, fn func(tx *Tx) error) error {
	c := &groupCall{ctx: ctx, fn: fn, res: make(chan error, 1)}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return ErrGroupCommitClosed
	}
	select {
	case g.reqs <- c:
	case <-ctx.Done():
		g.mu.RUnlock()
		return ctx.Err()
	}
	g.mu.RUnlock()
	return <-c.res
}

// Close stops accepting calls, runs those already queued and waits for the
// writer to finish. It is safe to call more than once.
func (g *GroupCommit) Close() error {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.reqs)
	}
	g.mu.Unlock()
	<-g.done
	if g.stopCheckpoints != nil {
		g.stopCheckpoints()
	}
	g.restoreOnce.Do(func() {
		// Unless someone changed it meanwhile.
		if runtime.GOMAXPROCS(0) == g.procs+1 {
			runtime.GOMAXPROCS(g.procs)
		}
		if g.restoreTempStore {
			g.store.write.Exec(`PRAGMA temp_store = DEFAULT`)
		}
		if n, err := strconv.ParseInt(g.restoreCacheSize, 10, 64); err == nil {
			g.store.write.Exec(`PRAGMA cache_size = ` + strconv.FormatInt(n, 10))
		}
	})
	return nil
}

// GroupCommitStats counts the work done so far.
type GroupCommitStats struct {
	Batches int64 // transactions committed or attempted
	Calls   int64 // calls run
}

// Stats reports how many calls were run in how many transactions; Calls /
// Batches is the average batch size.
func (g *GroupCommit) Stats() GroupCommitStats {
	return GroupCommitStats{Batches: g.batches.Load(), Calls: g.calls.Load()}
}

func (g *GroupCommit) loop() {
	// The writer spends its life in SQLite on one connection: kept on one
	// OS thread, it keeps that thread's caches and glibc malloc arena
	// (SQLite allocates and frees through malloc) instead of following the
	// scheduler from thread to thread between cgo calls. Measured with
	// BenchmarkConfirmLoad, six alternating runs with and without:
	// +8% confirmations per second.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(g.done)
	defer func() {
		for _, st := range g.stmts {
			st.Close()
		}
	}()
	batch := make([]*groupCall, 0, g.max)
	sinceCatchUp := 0
	for {
		first, ok := <-g.reqs
		if !ok {
			return
		}
		batch = append(batch[:0], first)
		open := g.collect(&batch)
		g.run(batch)
		if !open {
			return
		}
		if sinceCatchUp++; g.stopCheckpoints != nil && sinceCatchUp >= walCatchUpBatches {
			sinceCatchUp = 0
			if !g.catchUpWAL() {
				// Try again soon, but not after every batch: a long
				// reader elsewhere (an export) can hold old frames for
				// minutes, and each try may cost the writer two fsyncs.
				sinceCatchUp = walCatchUpBatches - walCatchUpRetry
			}
		}
	}
}

// walCatchUpBatches is how many batches the writer commits between its
// own checkpoints (catchUpWAL), and walCatchUpRetry after one that could
// not copy every frame.
const (
	walCatchUpBatches = 128
	walCatchUpRetry   = 16
)

// catchUpWAL checkpoints, on the writer's connection between two batches,
// the frames the background checkpointer has not copied yet, and reports
// whether the WAL is now entirely copied into the database.
//
// SQLite writes the WAL from its start again ("restarts" it) only when a
// write transaction begins while every frame is already in the database.
// Under a steady stream of commits the background checkpointer never gets
// there (frames keep arriving while it copies), so the WAL grew without
// end (176 MB over 20,000 confirmations) and every frame went to a new
// part of the file: the kernel allocated and zeroed page-cache pages and
// blocks for each (perf: ext4_da_write_begin, ext4_writepages under the
// commit's writes and fsync). Here no commit can come in between, so the
// copy completes (unless a reader still needs the older frames: then the
// writer tries again walCatchUpRetry batches later), and the next batch
// restarts the WAL over pages the kernel already holds. What is left to
// copy is what arrived since the background checkpointer's last pass, a
// few hundred frames at most.
func (g *GroupCommit) catchUpWAL() bool {
	var busy, frames, copied int
	err := g.store.write.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	return err == nil && busy == 0 && frames == copied
}

// collect adds the calls already waiting (and, with MaxWait, those arriving
// soon) to batch. It reports false when reqs was closed and drained.
func (g *GroupCommit) collect(batch *[]*groupCall) bool {
	var timeout <-chan time.Time
	if g.wait > 0 {
		t := time.NewTimer(g.wait)
		defer t.Stop()
		timeout = t.C
	}
	for len(*batch) < g.max {
		if timeout == nil {
			select {
			case c, ok := <-g.reqs:
				if !ok {
					return false
				}
				*batch = append(*batch, c)
			default:
				return true
			}
			continue
		}
		select {
		case c, ok := <-g.reqs:
			if !ok {
				return false
			}
			*batch = append(*batch, c)
		case <-timeout:
			return true
		}
	}
	return true
}

// run executes one batch in one transaction and answers every caller.
//
// It first runs every call straight in the transaction, without the
// savepoints that would isolate a failing call: a savepoint costs two
// statements, and SQLite copies every page a call changes into the
// savepoint's journal first (together ~15 µs of the writer's ~190 per
// confirmation). Calls rarely fail; when one does, the whole transaction
// is rolled back and the batch runs again with a savepoint per call, so a
// failing call still loses only its own work.
func (g *GroupCommit) run(batch []*groupCall) {
	g.batches.Add(1)
	g.calls.Add(int64(len(batch)))
	results := make([]error, len(batch))
	if !g.attempt(batch, results, false) {
		clear(results)
		g.attempt(batch, results, true)
	}
	for i, c := range batch {
		c.res <- results[i]
	}
}

// attempt runs batch in one transaction and fills in results. With
// isolate false it stops at the first call that fails, rolls the
// transaction back and reports false: nothing of the batch is committed,
// and it is to be run again with isolate, each call in its own savepoint.
func (g *GroupCommit) attempt(batch []*groupCall, results []error, isolate bool) bool {
	fail := func(err error) bool {
		for i := range results {
			if results[i] == nil {
				results[i] = err
			}
		}
		return true
	}
	s := g.store
	// The transaction belongs to no single caller, so no caller's ctx may
	// abort it.
	sqlTx, err := s.write.BeginTx(context.Background(), nil)
	if err != nil {
		return fail(fmt.Errorf("begin write: %w", err))
	}
	tx := &Tx{Tx: sqlTx, store: s, stmts: make(map[string]*sql.Stmt, len(g.stmts))}
	// keepStatements prepares on the write connection, which is free only
	// once the transaction has ended: defer it before the rollback (which
	// a failed batch relies on) so that it runs after.
	defer g.keepStatements(tx)
	defer sqlTx.Rollback()
	for q, st := range g.stmts {
		tx.stmts[q] = sqlTx.Stmt(st)
	}
	for i, c := range batch {
		if err := c.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		tx.Now = s.Now().UTC()
		if !isolate {
			if err := callSafely(c.fn, tx); err != nil {
				return false
			}
			continue
		}
		if _, err := tx.exec(`SAVEPOINT group_call`); err != nil {
			return fail(fmt.Errorf("begin savepoint: %w", err))
		}
		head, saved := tx.head, chainHead{}
		if head != nil {
			saved = *head
		}
		if err := callSafely(c.fn, tx); err != nil {
			results[i] = err
			if _, rerr := tx.exec(`ROLLBACK TO group_call`); rerr != nil {
				return fail(fmt.Errorf("roll back a failed write: %w", rerr))
			}
			// The chain head cached in tx must forget the rolled-back events.
			if head == nil {
				tx.head = nil
			} else {
				*head = saved
				tx.head = head
			}
		}
		if _, err := tx.exec(`RELEASE group_call`); err != nil {
			return fail(fmt.Errorf("release savepoint: %w", err))
		}
	}
	if err := tx.flushHead(); err != nil {
		return fail(err)
	}
	if err := sqlTx.Commit(); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	return true
}

// maxCachedStatements bounds the statements kept across batches (a
// multi-row insert has one text per row count).
const maxCachedStatements = 64

// keepStatements prepares, on the write connection, the statements tx
// prepared that the cache lacks, so that later batches need not. It runs
// after tx has ended; a statement that fails to prepare is simply not kept.
func (g *GroupCommit) keepStatements(tx *Tx) {
	for q := range tx.stmts {
		if len(g.stmts) >= maxCachedStatements {
			return
		}
		if _, ok := g.stmts[q]; ok {
			continue
		}
		if st, err := g.store.write.Prepare(q); err == nil {
			g.stmts[q] = st
		}
	}
}

// callSafely turns a panic in fn into an error for its caller alone, so
// that one bad call cannot take down the writer and every other caller.
func callSafely(fn func(*Tx) error, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write function panicked: %v", p)
		}
	}()
	return fn(tx)
}

// Row is a single-row query result.
type Row interface{ Scan(dest ...any) error }

// ExecCached runs a statement through the transaction's statement cache:
// under group commit one transaction runs the same few statements for
// hundreds of callers, and preparing each once per batch instead of once
// per call saves most of the writer's time. query must be one statement.
func (tx *Tx) ExecCached(query string, args ...any) (sql.Result, error) {
	return tx.exec(query, args...)
}

// QueryRowCached is QueryRow through the transaction's statement cache.
func (tx *Tx) QueryRowCached(query string, args ...any) Row { return tx.row(query, args...) }
