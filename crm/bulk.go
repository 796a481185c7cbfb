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
		if b.prefix == prefix && b.suffix == suffix && b.tuple == tuple {
			return b
		}
	}
	b := &bulkInsert{prefix: prefix, tuple: tuple, suffix: suffix, cols: cols, rank: rank}
	tx.bulks = append(tx.bulks, b)
	slices.SortStableFunc(tx.bulks, func(x, y *bulkInsert) int { return x.rank - y.rank })
	return b
}

func (tx *Tx) bulkAdd(b *bulkInsert, vals ...any) error {
	if len(vals) != b.cols {
		return fmt.Errorf("bulk insert: %d values for %d columns", len(vals), b.cols)
	}
	b.vals = append(b.vals, vals...)
	return nil
}

func (tx *Tx) bulkFlushOne(b *bulkInsert) error {
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
