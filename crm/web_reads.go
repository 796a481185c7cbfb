package crm

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// lookupDSN opens a read-only connection with a 200 KiB page cache, for
// point lookups (a few rows by key) while another connection commits
// continuously, as the confirmation page does under load. In WAL mode a
// connection drops its whole page cache whenever the database changed
// since its last read, and dropping costs in proportion to the cache's
// size, not to what is in it: with the default 2 MB cache the invitation
// lookup took ~42 µs of CPU behind a stream of commits, with 200 KiB ~29
// µs. A query that reads much should use DB.
func (s *Store) lookupDSN() string {
	rq := url.Values{}
	rq.Set("_busy_timeout", "10000")
	rq.Set("_fk", "1")
	rq.Set("_query_only", "1")
	rq.Set("_cache_size", "-200")
	return "file:" + s.Path + "?" + rq.Encode()
}

// LookupStmt is one point-lookup query prepared on a few dedicated
// read-only connections (with lookupDSN's small page cache) and run
// through the SQLite driver directly, not database/sql. The confirmation
// page runs one per request, and database/sql's share of it (the pool, its
// statement per connection, Rows with its context watch, Scan converting
// each of 18 columns) was ~15 of the ~50 µs of CPU the lookup cost.
//
// The free connections are a stack, not a queue: the connection used last
// is used next, and the others only when it is busy. A connection drops
// its page cache on its first read after any commit, so the fewer
// connections share the reads, the more of them find a warm cache: behind
// the confirmation load's stream of commits the lookup cost ~50 µs of CPU
// with 4 connections taken in turn, ~68 with 8, ~36-39 with 2-8 taken as
// a stack.
//
// It is safe for concurrent use; a caller waits for a free connection.
type LookupStmt struct {
	slots chan struct{} // one per connection not in use
	mu    sync.Mutex
	free  []*lookupConn // a stack: the last returned is the next used
	all   []*lookupConn
}

// lookupConn is a connection, its prepared statement and the buffers one
// query needs.
type lookupConn struct {
	conn *sqlite3.SQLiteConn
	stmt driver.StmtQueryContext
	args []driver.NamedValue
	dest []driver.Value
}

// OpenLookupStmt prepares query, which takes one text parameter and
// returns at most one row, on conns connections.
func (s *Store) OpenLookupStmt(query string, conns int) (*LookupStmt, error) {
	dsn := s.lookupDSN()
	l := &LookupStmt{slots: make(chan struct{}, conns)}
	for range conns {
		c, err := (&sqlite3.SQLiteDriver{}).Open(dsn)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("open lookup reads on %s: %w", s.Path, err)
		}
		lc := &lookupConn{conn: c.(*sqlite3.SQLiteConn)}
		l.all = append(l.all, lc)
		st, err := lc.conn.Prepare(query)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("prepare lookup: %w", err)
		}
		q, ok := st.(driver.StmtQueryContext)
		if !ok {
			st.Close()
			l.Close()
			return nil, fmt.Errorf("prepare lookup: the driver's statement cannot query")
		}
		lc.stmt = q
		lc.args = make([]driver.NamedValue, 1)
		l.free = append(l.free, lc)
	}
	return l, nil
}

// QueryRow runs the lookup with key and calls scan with the row's values
// (int64, float64, string, []byte or nil; valid only during the call). It
// returns sql.ErrNoRows when there is no row.
func (l *LookupStmt) QueryRow(ctx context.Context, key string, scan func(cols []driver.Value) error) error {
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	l.mu.Lock()
	lc := l.free[len(l.free)-1]
	l.free = l.free[:len(l.free)-1]
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.free = append(l.free, lc)
		l.mu.Unlock()
		<-l.slots
	}()
	lc.args[0] = driver.NamedValue{Ordinal: 1, Value: key}
	// A point lookup takes microseconds: it runs without watching ctx (a
	// watched query costs a context.AfterFunc registration).
	rows, err := lc.stmt.QueryContext(context.Background(), lc.args)
	if err != nil {
		return err
	}
	if lc.dest == nil {
		lc.dest = make([]driver.Value, len(rows.Columns()))
	}
	err = rows.Next(lc.dest)
	if err == nil {
		err = scan(lc.dest)
	} else if errors.Is(err, io.EOF) {
		err = sql.ErrNoRows
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	clear(lc.dest)
	return err
}

// Close closes the connections. Call it when no QueryRow runs.
func (l *LookupStmt) Close() error {
	var first error
	for _, lc := range l.all {
		if lc.stmt != nil {
			if err := lc.stmt.(driver.Stmt).Close(); err != nil && first == nil {
				first = err
			}
		}
		if err := lc.conn.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
