package segments

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/repermit/repermit/crm"
)

// An export evaluates its segment in chunks of contact ids, on several
// read connections at once, and writes the chunks in id order. Evaluating
// the base condition and the rule is SQLite work of about a microsecond per
// opt-in on one core; chunks let every core take a share while the output
// stays the single ordered stream (and the same bytes) a sequential export
// writes.

// chunkIDs is the span of contact ids per chunk. A chunk holds at most this
// many rows, so the memory an export needs (a few chunks in flight) is
// bounded by it, not by the size of the segment. Each chunk re-runs the
// query (re-collecting the suppressed contacts of the view), so a span much
// smaller would cost more than it spreads.
const chunkIDs = 1 << 16

// maxExportWorkers bounds the read connections one export holds (crm's
// read pool serves the web pages and other commands too).
const maxExportWorkers = 4

// exportWorkers is how many chunks to evaluate at once.
func exportWorkers(chunks int) int {
	return max(1, min(runtime.GOMAXPROCS(0), maxExportWorkers, chunks))
}

// readSnapshot begins n read transactions that all see the same committed
// state. SQLite takes a WAL reader's snapshot at its first read; here each
// first read happens while a write transaction holds the database's write
// lock, so nothing can commit in between. One transaction needs no lock.
func readSnapshot(ctx context.Context, st *crm.Store, n int) ([]*sql.Tx, error) {
	var txs []*sql.Tx
	begin := func() error {
		tx, err := st.DB().BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		txs = append(txs, tx)
		var count int
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM segments`).Scan(&count)
	}
	var err error
	if n == 1 {
		err = begin()
	} else {
		err = st.Update(ctx, func(*crm.Tx) error {
			for range n {
				if err := begin(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		for _, tx := range txs {
			tx.Rollback()
		}
		return nil, fmt.Errorf("export: begin read: %w", err)
	}
	return txs, nil
}

// chunk is the encoded rows of one id range: row i is buf[ends[i-1]:ends[i]].
type chunk struct {
	buf  *bytes.Buffer
	ends []int
	err  error
}

// chunkRows runs the export query over each chunk (span ids) of [lo, hi] on the
// transactions txs (one worker each) and calls emit with the chunks in id
// order. At most len(txs)+1 chunks are held at once. emit's error stops
// the export.
func (p *plan) chunkRows(ctx context.Context, txs []*sql.Tx, query string, args []any, lo, hi, span int64, emit func(*chunk) error) error {
	chunks := int((hi-lo)/span) + 1
	ctx, cancel := context.WithCancel(ctx)

	results := make([]chan *chunk, chunks)
	for i := range results {
		results[i] = make(chan *chunk, 1)
	}
	// tokens bound the chunks evaluated but not yet written; free recycles
	// their buffers.
	tokens := make(chan struct{}, len(txs)+1)
	free := make(chan *bytes.Buffer, len(txs)+1)
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, tx := range txs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stmt, err := tx.PrepareContext(ctx, query)
			if err != nil {
				for k := next.Add(1) - 1; k < int64(chunks); k = next.Add(1) - 1 {
					results[k] <- &chunk{err: err}
				}
				return
			}
			defer stmt.Close()
			raw := make([]sql.RawBytes, len(p.selects))
			dest := make([]any, len(raw))
			for i := range raw {
				dest[i] = &raw[i]
			}
			var scratch []byte
			for {
				select {
				case tokens <- struct{}{}:
				case <-ctx.Done():
					return
				}
				// Chunks are taken in order, so the one the writer waits
				// for is always being evaluated: tokens cannot run out
				// while it is missing.
				k := next.Add(1) - 1
				if k >= int64(chunks) || ctx.Err() != nil {
					return
				}
				c := &chunk{}
				select {
				case c.buf = <-free:
					c.buf.Reset()
				default:
					c.buf = new(bytes.Buffer)
				}
				from := lo + k*span
				a := append(append(make([]any, 0, len(args)+2), args...), from, from+span)
				scratch, c.err = p.encodeChunk(ctx, stmt, a, c, raw, dest, scratch)
				results[k] <- c
			}
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	for k := range chunks {
		var c *chunk
		select {
		case c = <-results[k]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if c.err != nil {
			return c.err
		}
		if err := emit(c); err != nil {
			return err
		}
		select {
		case free <- c.buf:
		default:
		}
		<-tokens
	}
	return nil
}

// encodeChunk runs the query for one chunk and encodes its rows into c.
func (p *plan) encodeChunk(ctx context.Context, stmt *sql.Stmt, args []any, c *chunk, raw []sql.RawBytes, dest []any, scratch []byte) ([]byte, error) {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return scratch, fmt.Errorf("export: %w", err)
	}
	defer rows.Close()
	bw := bufio.NewWriterSize(c.buf, 64<<10)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return scratch, fmt.Errorf("export: %w", err)
		}
		if scratch, err = p.writeRow(bw, raw, scratch); err != nil {
			return scratch, err
		}
		c.ends = append(c.ends, c.buf.Len()+bw.Buffered())
	}
	if err := rows.Err(); err != nil {
		return scratch, fmt.Errorf("export: %w", err)
	}
	return scratch, bw.Flush()
}
