// Package crm holds the contact store: contacts, the append-only consent
// ledger, consent statements, the suppression list, erasure and CRM import.
// It knows nothing of HTTP or SMTP.
package crm

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// TimeLayout is how every time is stored: UTC, fixed width, so that text
// order is time order.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// FormatTime formats t for storage.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime parses a stored time; the zero time for "".
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(TimeLayout, s)
}

// Store is the SQLite database. Writes go through one connection (SQLite has
// one writer; queueing in Go avoids "database is locked"), reads through a
// pool of read-only connections that WAL lets run beside the writer.
type Store struct {
	Path string
	// Now is the clock; tests set it. It is read once per transaction.
	Now func() time.Time

	write *sql.DB
	read  *sql.DB
	salt  []byte

	// kept are statements that Update transactions ran, prepared on the
	// write connection once so that later transactions reuse them instead
	// of parsing them again (see Tx.prepared and Store.keep).
	keptMu sync.Mutex
	kept   map[string]*sql.Stmt
	closed bool
}

// Option changes how Open sets up the store.
type Option func(*openOptions)

type openOptions struct{ synchronous string }

// SyncOnCheckpoint makes this process's commits skip the disk flush
// (SQLite synchronous=NORMAL in WAL mode). A commit then survives the
// process being killed (kill -9, a crash) but not the machine losing power.
// Bulk work that can be redone (sending, imports) uses it; consent captured
// from a person (the web pages) keeps the default, a flush per commit.
func SyncOnCheckpoint() Option {
	return func(o *openOptions) { o.synchronous = "NORMAL" }
}

// Open opens (creating if needed) the database at path and applies pending
// migrations.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	sqliteConfig() // before the first connection; see configureSQLite
	oo := openOptions{synchronous: "FULL"}
	for _, o := range opts {
		o(&oo)
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_fk", "1")
	q.Set("_synchronous", oo.synchronous)
	q.Set("_txlock", "immediate")
	// A 48 MiB page cache: imports insert into indexes of random hashes, and
	// the default 2 MiB cache would go to the OS for almost every row.
	q.Set("_cache_size", "-49152")
	if oo.synchronous == "FULL" && walBufVFS() == nil {
		q.Set("vfs", walBufVFSName)
	}
	w, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w (check the path exists and is writable, or pass --db)", path, err)
	}
	s := &Store{Path: path, Now: time.Now, write: w}
	// An import whose process died may have left an index to build (see
	// crm/import_index.go); build it before anything (a migration) relies on it.
	if err := s.restoreDeferredIndex(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	rq := url.Values{}
	rq.Set("_busy_timeout", "10000")
	rq.Set("_fk", "1")
	rq.Set("_query_only", "1")
	r, err := sql.Open("sqlite3", "file:"+path+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, err
	}
	// Keep every read connection open between queries: database/sql keeps
	// only two idle by default, and a new SQLite connection re-reads the
	// schema, which costs more than a page's queries under load.
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	s.read = r
	if err := s.loadSalt(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes both pools.
func (s *Store) Close() error {
	var errs []error
	s.keptMu.Lock()
	for _, st := range s.kept {
		errs = append(errs, st.Close())
	}
	s.kept, s.closed = nil, true
	s.keptMu.Unlock()
	if s.read != nil {
		errs = append(errs, s.read.Close())
	}
	errs = append(errs, s.write.Close())
	return errors.Join(errs...)
}

// DB is the read-only pool, for queries of other packages.
func (s *Store) DB() *sql.DB { return s.read }

// Tx is a write transaction. Now is fixed when it begins so that every row
// and ledger event it writes agrees on the time.
type Tx struct {
	*sql.Tx
	Now   time.Time
	store *Store
	head  *chainHead // loaded on the first append
	stmts map[string]*sql.Stmt

	nowText   string // FormatTime(nowTextOf), see NowText
	nowTextOf time.Time

	// Bulk mode (the importer's batches): inserts of new contacts and
	// ledger events are gathered and written many rows per statement;
	// flushBulk runs before anything reads them and before commit.
	bulkMode      bool
	bulks         []*bulkInsert
	nextContactID int64
}

// prepared returns a statement prepared once per transaction: a batch of
// thousands of rows then parses each query once, not once per row.
func (tx *Tx) prepared(query string) (*sql.Stmt, error) {
	if st, ok := tx.stmts[query]; ok {
		return st, nil
	}
	var st *sql.Stmt
	if kept := tx.store.keptStmt(query); kept != nil {
		// Prepared on this same connection: the transaction uses it as is.
		st = tx.Stmt(kept)
	} else {
		var err error
		if st, err = tx.Prepare(query); err != nil {
			return nil, err
		}
	}
	if tx.stmts == nil {
		tx.stmts = map[string]*sql.Stmt{}
	}
	tx.stmts[query] = st
	return st, nil
}

func (tx *Tx) exec(query string, args ...any) (sql.Result, error) {
	st, err := tx.prepared(query)
	if err != nil {
		return nil, err
	}
	return st.Exec(args...)
}

// row runs a one-row query through the statement cache.
func (tx *Tx) row(query string, args ...any) rowScanner {
	st, err := tx.prepared(query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRow(args...)
}

type rowScanner interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// Update runs fn in a write transaction and commits it when fn returns nil.
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.commit(); err != nil {
		return err
	}
	s.keep(tx)
	return nil
}

func (s *Store) keptStmt(query string) *sql.Stmt {
	s.keptMu.Lock()
	defer s.keptMu.Unlock()
	return s.kept[query]
}

// keep prepares, on the write connection, the statements a committed
// transaction ran that are not kept yet, up to maxCachedStatements.
// Small transactions that repeat (the send pipeline records each group of
// results in one) then skip parsing: ~10% of a send's CPU
// (BenchmarkSend100k). A bulk import's many-row statements, one text per
// row count, are not kept. It runs after the commit, when the connection
// is free; a statement that fails to prepare is simply not kept.
func (s *Store) keep(tx *Tx) {
	if tx.bulkMode {
		return
	}
	// The lock is never held while preparing: a transaction that holds the
	// connection may be waiting for it in keptStmt.
	var missing []string
	s.keptMu.Lock()
	for q := range tx.stmts {
		if _, ok := s.kept[q]; !ok && len(s.kept)+len(missing) < maxCachedStatements {
			missing = append(missing, q)
		}
	}
	s.keptMu.Unlock()
	for _, q := range missing {
		st, err := s.write.Prepare(q)
		if err != nil {
			continue
		}
		s.keptMu.Lock()
		if _, ok := s.kept[q]; ok || s.closed {
			st.Close()
		} else {
			if s.kept == nil {
				s.kept = map[string]*sql.Stmt{}
			}
			s.kept[q] = st
		}
		s.keptMu.Unlock()
	}
}

// begin starts a write transaction; the caller must commit or roll back.
func (s *Store) begin(ctx context.Context) (*Tx, error) {
	sqlTx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin write: %w", err)
	}
	return &Tx{Tx: sqlTx, Now: s.Now().UTC(), store: s}, nil
}

// commit writes what is gathered and the chain head, then commits.
func (tx *Tx) commit() error {
	if err := tx.flushBulk(); err != nil {
		return err
	}
	if err := tx.flushHead(); err != nil {
		return err
	}
	return tx.Tx.Commit()
}

// Store returns the store the transaction belongs to.
func (tx *Tx) Store() *Store { return tx.store }

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("prepare migrations: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := s.applyMigration(ctx, name); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, name string) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	body, err := migrationFS.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`,
		name, FormatTime(time.Now())); err != nil {
		return err
	}
	return tx.Commit()
}

// loadSalt reads (or creates) the per-database secret that keys the hashes
// of emails and phones. It never leaves the database.
func (s *Store) loadSalt(ctx context.Context) error {
	var v string
	err := s.write.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'salt'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		v = hex.EncodeToString(b)
		if _, err := s.write.ExecContext(ctx, `INSERT OR IGNORE INTO meta (key, value) VALUES ('salt', ?)`, v); err != nil {
			return fmt.Errorf("create salt: %w", err)
		}
		err = s.write.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'salt'`).Scan(&v)
	}
	if err != nil {
		return fmt.Errorf("read salt: %w", err)
	}
	s.salt, err = hex.DecodeString(v)
	return err
}

// HashEmail is the salted hash under which an address is keyed and
// suppressed. addr must already be normalised (NormalizeEmail).
func (s *Store) HashEmail(addr string) string { return s.keyedHash("email:", addr) }

// HashPhone is the salted hash of an E.164 number.
func (s *Store) HashPhone(e164 string) string {
	if e164 == "" {
		return ""
	}
	return s.keyedHash("phone:", e164)
}

// keyedHash is HMAC-SHA256 under the database's salt, truncated to 128
// bits (as HMAC-SHA256-128): ample to key and suppress addresses, and half
// the width of the full digest in the random-ordered indexes every import
// inserts into.
func (s *Store) keyedHash(kind, v string) string {
	m := hmac.New(sha256.New, s.salt)
	m.Write([]byte(kind))
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// IsUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY conflict.
func IsUniqueViolation(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
	}
	return false
}

// Meta reads a value of the meta table ("" when absent).
func (tx *Tx) Meta(key string) (string, error) {
	var v string
	err := tx.QueryRow(`SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// SetMeta writes a value of the meta table.
func (tx *Tx) SetMeta(key, value string) error {
	// Cached: every transaction that appends to the ledger sets the chain head.
	_, err := tx.exec(`INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

// NormalizeEmail validates an address and returns its normal form: trimmed,
// lower-cased. It accepts the plain addr-spec forms CRMs export and rejects
// display names, spaces and missing parts.
func NormalizeEmail(raw string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(raw))
	e = strings.Trim(e, "<>")
	if e == "" {
		return "", errors.New("no email address")
	}
	at := strings.LastIndexByte(e, '@')
	if at <= 0 || at == len(e)-1 {
		return "", errors.New("not an email address (it needs a name, an @ and a domain)")
	}
	local, domain := e[:at], e[at+1:]
	if len(e) > 254 || len(local) > 64 {
		return "", errors.New("email address too long")
	}
	for _, r := range e {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(`(),:;<>[]\"`, r) {
			return "", fmt.Errorf("email address contains %q", r)
		}
	}
	if strings.Contains(local, "..") || strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") {
		return "", errors.New("email address has misplaced dots")
	}
	if !strings.Contains(domain, ".") || strings.Contains(domain, "..") || strings.HasPrefix(domain, ".") ||
		strings.HasSuffix(domain, ".") || strings.HasPrefix(domain, "-") || strings.ContainsRune(domain, '@') {
		return "", errors.New("email domain is not valid")
	}
	return e, nil
}
