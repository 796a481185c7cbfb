package crm

import (
	"fmt"
	"slices"
	"strings"
)

// bulkInsert gathers rows for one INSERT statement and writes them many
// rows per statement: a per-row statement costs a cgo call and
// database/sql's bookkeeping each time, which dominates a large import.
type bulkInsert struct {
	prefix string // "INSERT INTO t (a, b)"
	suffix string // e.g. an ON CONFLICT clause
	tuple  string // one row's VALUES tuple when not all "?" (bulkWith)
	cols   int    // the "?" per row
	rank   int    // flush order: referenced tables first
	vals   []any
	full   string // the query for bulkRows rows, built once
	// sel, when set, makes the statement an INSERT … SELECT sel … WHERE
	// id BETWEEN ? AND ? over the rows ids names (bulkSelect), not VALUES.
	sel string
	ids []int64
}

// bulkRows is how many rows the importer gathers before it flushes: one
// statement per table then carries them all.
const bulkRows = 100

func (b *bulkInsert) query(rows int) string {
	if rows == bulkRows && b.full != "" {
		return b.full
	}
	one := b.tuple
	if one == "" {
		one = "(" + strings.TrimSuffix(strings.Repeat("?,", b.cols), ",") + ")"
	}
	q := b.prefix + " VALUES " + strings.TrimSuffix(strings.Repeat(one+",", rows), ",") + " " + b.suffix
	if rows == bulkRows {
		b.full = q
	}
	return q
}

// Flush ranks of the tables written in bulk: a row is flushed after the
// rows it references (foreign keys are checked at once).
const (
	rankContacts = iota
	rankEvents
	rankCurrent
)

// bulk returns the transaction's inserter for a table, creating it.
func (tx *Tx) bulk(prefix, suffix string, cols, rank int) *bulkInsert {
	return tx.bulkWith(prefix, "", suffix, rank, cols)
}

// bulkWith is bulk with a VALUES tuple of the caller's, such as
// "(?, ?, 'email', ”, ?)": values that are the same for every row of a
// transaction are written into the statement instead of bound once per
// row (each bound text is a cgo call; see import_write.go). cols is the
// number of "?" in tuple.
func (tx *Tx) bulkWith(prefix, tuple, suffix string, rank, cols int) *bulkInsert {
	for _, b := range tx.bulks {
		if b.prefix == prefix && b.suffix == suffix && b.tuple == tuple && b.sel == "" {
			return b
		}
	}
	b := &bulkInsert{prefix: prefix, tuple: tuple, suffix: suffix, cols: cols, rank: rank}
	tx.bulks = append(tx.bulks, b)
	slices.SortStableFunc(tx.bulks, func(x, y *bulkInsert) int { return x.rank - y.rank })
	return b
}

// bulkSelect is an inserter whose rows are copies of rows already written
// in the same flush: `prefix SELECT sel WHERE id BETWEEN ? AND ? …
// suffix`, sel naming the table and its "id" column, added by id with
// bulkAddID. Its rank must come after the table it reads. The importer
// writes each event's current state this way (consent_current is a copy of
// the event's contact, channel, action, id and time): 2 bound values per
// 100 rows instead of 4 per row, each a cgo call with database/sql's
// conversion before it.
func (tx *Tx) bulkSelect(prefix, sel, suffix string, rank int) *bulkInsert {
	for _, b := range tx.bulks {
		if b.prefix == prefix && b.suffix == suffix && b.sel == sel {
			return b
		}
	}
	b := &bulkInsert{prefix: prefix, suffix: suffix, sel: sel, rank: rank}
	tx.bulks = append(tx.bulks, b)
	slices.SortStableFunc(tx.bulks, func(x, y *bulkInsert) int { return x.rank - y.rank })
	return b
}

// bulkAddID adds the row with this id (ids must grow) to a bulkSelect.
func (b *bulkInsert) bulkAddID(id int64) { b.ids = append(b.ids, id) }

// flushSelect writes a bulkSelect's rows: one id range when they are
// consecutive (no other row came between them), else the ids one by one.
func (tx *Tx) flushSelect(b *bulkInsert) error {
	n := len(b.ids)
	if n == 0 {
		return nil
	}
	defer func() { b.ids = b.ids[:0] }()
	if lo, hi := b.ids[0], b.ids[n-1]; hi-lo+1 == int64(n) {
		_, err := tx.exec(b.prefix+" SELECT "+b.sel+" WHERE id BETWEEN ? AND ? ORDER BY id "+b.suffix, lo, hi)
		return err
	}
	vals := make([]any, n)
	for i, id := range b.ids {
		vals[i] = id
	}
	_, err := tx.exec(b.prefix+" SELECT "+b.sel+" WHERE id IN ("+strings.TrimSuffix(strings.Repeat("?,", n), ",")+
		") ORDER BY id "+b.suffix, vals...)
	return err
}

func (tx *Tx) bulkAdd(b *bulkInsert, vals ...any) error {
	if len(vals) != b.cols {
		return fmt.Errorf("bulk insert: %d values for %d columns", len(vals), b.cols)
	}
	b.vals = append(b.vals, vals...)
	return nil
}

func (tx *Tx) bulkFlushOne(b *bulkInsert) error {
	if b.sel != "" {
		return tx.flushSelect(b)
	}
	rows := len(b.vals) / b.cols
	if rows == 0 {
		return nil
	}
	_, err := tx.exec(b.query(rows), b.vals...)
	b.vals = b.vals[:0]
	return err
}

// flushBulk writes every gathered row, referenced tables first.
func (tx *Tx) flushBulk() error {
	for _, b := range tx.bulks {
		if err := tx.bulkFlushOne(b); err != nil {
			return err
		}
	}
	return nil
}
