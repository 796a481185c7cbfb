package crm

import (
	"archive/zip"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// ImportOptions configure an import.
type ImportOptions struct {
	Preset        string            // auto (default) or a preset name
	Map           map[string]string // header key → field, from ParseMap
	DefaultRegion string            // ISO country for phones without a prefix
	Encoding      string            // "" (UTF-8, checked), windows-1252, latin1, utf-16
	// Rejects receives every rejected row. It must not be nil.
	Rejects RejectSink
	// Progress, when set, is called as a file starts and after every batch
	// with how far into the current file the imported rows reach (bytes),
	// its size, and the rows read so far.
	Progress func(file string, bytesRead, fileSize, rows int64)
	// BatchSize is the rows applied at a time (default 2500) and
	// CommitRows the rows per transaction (default 100,000).
	BatchSize, CommitRows int
	// Workers normalise rows (phones are the costly part) beside the writer;
	// default GOMAXPROCS.
	Workers int

	// fresh, when the store had no contacts as the import began, spares
	// the lookups of rows that cannot exist (import_fresh.go).
	fresh *freshContacts
	// deferIndexMin is the input size (bytes) from which a first import
	// builds the phone-hash index at the end; 0 means 16 MiB (~100,000
	// rows), below which the index is not worth two extra commits.
	deferIndexMin int64
}

// Reject is one row that was not imported, with why.
type Reject struct {
	File   string
	Line   int
	Reason string
	Fields []string
}

// RejectSink receives rejected rows.
type RejectSink interface {
	Reject(Reject) error
}

// ImportSummary counts what an import did. Rows are data rows read;
// Created, Updated and Unchanged count contacts (a second row for the same
// email is an update or unchanged); Eligible is the number of contacts now
// eligible for an invitation.
type ImportSummary struct {
	Rows       int64         `json:"rows"`
	Created    int64         `json:"created"`
	Updated    int64         `json:"updated"`
	Unchanged  int64         `json:"unchanged"`
	Rejected   int64         `json:"rejected"`
	Eligible   int64         `json:"eligible"`
	Events     int64         `json:"events"`
	Suppressed int64         `json:"suppressed"`
	Files      []FileSummary `json:"files"`
}

// FileSummary says how one file was read.
type FileSummary struct {
	File      string `json:"file"`
	Preset    string `json:"preset"`
	Status    string `json:"status,omitempty"` // a whole-file status (Mailchimp)
	Delimiter string `json:"delimiter"`
	Rows      int64  `json:"rows"`
	Rejected  int64  `json:"rejected"`
	// NoConsent is set when the file has no column that carries email
	// consent: its contacts were imported without consent.
	NoConsent bool `json:"no_consent_column,omitempty"`
}

// Import reads CRM exports (CSV files, or zip files of them) into the store.
// Rows stream through: a reader, workers that validate and normalise, and
// one writer committing in batches. Nothing is lost: every row is imported
// or handed to opts.Rejects with its line and reason.
func (s *Store) Import(ctx context.Context, paths []string, opts ImportOptions) (ImportSummary, error) {
	var sum ImportSummary
	if opts.Rejects == nil {
		return sum, errors.New("import needs a rejects sink")
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 2500
	}
	if opts.CommitRows <= 0 {
		opts.CommitRows = 100_000
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	// Checkpoints of the large WAL an import writes run beside it, not
	// inside its commits.
	defer s.BackgroundCheckpoints()()
	// A large first import builds the phone-hash index at the end
	// (import_index.go).
	restore := func() error { return nil }
	if opts.deferIndexMin <= 0 {
		opts.deferIndexMin = 16 << 20
	}
	var size int64
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			size += fi.Size()
		}
	}
	if size >= opts.deferIndexMin {
		var err error
		if restore, err = s.deferIndexForImport(ctx); err != nil {
			return sum, err
		}
	}
	var empty bool
	if err := s.write.QueryRowContext(ctx, `SELECT NOT EXISTS (SELECT 1 FROM contacts)`).Scan(&empty); err != nil {
		restore()
		return sum, err
	}
	if empty {
		opts.fresh = newFreshContacts()
	}
	sum, err := s.importFiles(ctx, paths, opts, sum)
	if rerr := restore(); err == nil {
		err = rerr
	}
	if err != nil {
		return sum, err
	}
	err = s.read.QueryRowContext(ctx, `SELECT count(*) FROM invite_eligible`).Scan(&sum.Eligible)
	return sum, err
}

func (s *Store) importFiles(ctx context.Context, paths []string, opts ImportOptions, sum ImportSummary) (ImportSummary, error) {
	for _, p := range paths {
		if strings.EqualFold(filepath.Ext(p), ".zip") {
			if err := s.importZip(ctx, p, opts, &sum); err != nil {
				return sum, err
			}
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return sum, err
		}
		st, _ := f.Stat()
		err = s.importReader(ctx, f, filepath.Base(p), st.Size(), opts, &sum)
		f.Close()
		if err != nil {
			return sum, fmt.Errorf("%s: %w", p, err)
		}
	}
	return sum, nil
}

func (s *Store) importZip(ctx context.Context, path string, opts ImportOptions, sum *ImportSummary) error {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return fmt.Errorf("%s: not a readable zip file: %w", path, err)
	}
	defer zr.Close()
	found := 0
	for _, zf := range zr.File {
		name := filepath.Base(zf.Name)
		if zf.FileInfo().IsDir() || !strings.EqualFold(filepath.Ext(name), ".csv") || strings.HasPrefix(name, ".") {
			continue
		}
		found++
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", path, zf.Name, err)
		}
		err = s.importReader(ctx, rc, name, int64(zf.UncompressedSize64), opts, sum)
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", path, zf.Name, err)
		}
	}
	if found == 0 {
		return fmt.Errorf("%s: the zip holds no .csv file", path)
	}
	return nil
}

// rawRow is one CSV record with its line number.
type rawRow struct {
	line   int
	fields []string
}

// chunk is a slice of rows normalised by a worker; done closes when ready.
type chunk struct {
	raw    []rawRow
	rows   []importRow
	offset int64 // where in the (decoded) input the chunk ends, for progress
	done   chan struct{}
}

func (s *Store) importReader(ctx context.Context, r io.Reader, name string, size int64, opts ImportOptions, sum *ImportSummary) error {
	br, err := decodeText(r, opts.Encoding)
	if err != nil {
		return err
	}
	delim := sniffDelimiter(br)
	cr := csv.NewReader(br)
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return errors.New("the file is empty: a CSV export with a header row is expected")
	}
	if err != nil {
		return fmt.Errorf("cannot read the header row: %w", err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff"))
	}
	preset, err := choosePreset(opts.Preset, header)
	if err != nil {
		return err
	}
	mapping, err := mapColumns(preset, header, opts.Map)
	if err != nil {
		return err
	}
	fs := FileSummary{File: name, Preset: preset.Name, Delimiter: string(delim)}
	if opts.Progress != nil {
		opts.Progress(name, 0, size, sum.Rows)
	}
	if delim == '\t' {
		fs.Delimiter = "tab"
	}
	norm := &normalizer{file: name, mapping: mapping, header: header, defaultRegion: strings.ToUpper(opts.DefaultRegion),
		salt: s.salt}
	norm.fileStatus = fileStatus(preset.Name, name, mapping)
	fs.Status = norm.fileStatus
	fs.NoConsent = norm.fileStatus == "" && !mapping.hasConsentColumn()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const chunkRows = 500
	work := make(chan *chunk, opts.Workers*2)
	ordered := make(chan *chunk, opts.Workers*2)
	var readErr error
	go func() { // reader: keeps file order in `ordered`, hands work out
		defer close(work)
		defer close(ordered)
		c := &chunk{done: make(chan struct{})}
		flush := func() bool {
			c.offset = cr.InputOffset()
			select {
			case work <- c:
			case <-ctx.Done():
				return false
			}
			select {
			case ordered <- c:
			case <-ctx.Done():
				return false
			}
			c = &chunk{done: make(chan struct{})}
			return true
		}
		lastLine := 1
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				var pe *csv.ParseError
				if !errors.As(err, &pe) {
					readErr = err
					break
				}
				if pe.StartLine <= lastLine && pe.Line <= lastLine {
					readErr = fmt.Errorf("line %d: %w", pe.Line, err)
					break // no progress: stop instead of looping
				}
				c.raw = append(c.raw, rawRow{line: pe.StartLine, fields: append([]string{"!csv"}, pe.Err.Error())})
				lastLine = pe.Line
			} else {
				line, _ := cr.FieldPos(0)
				c.raw = append(c.raw, rawRow{line: line, fields: rec})
				lastLine = line
			}
			if len(c.raw) == chunkRows && !flush() {
				return
			}
		}
		if len(c.raw) > 0 {
			flush()
		}
	}()
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newKeyedHasher(norm.salt)
			for c := range work {
				c.rows = make([]importRow, len(c.raw))
				for i, rr := range c.raw {
					c.rows[i] = norm.normalize(rr, h)
				}
				close(c.done)
			}
		}()
	}
	defer wg.Wait()

	// The writer applies rows in file order, a batch at a time, and commits
	// every CommitRows rows: a transaction that covers many batches writes
	// each page of the random-keyed indexes once, where a commit per batch
	// would rewrite most of the index every time. 100,000 rather than
	// 50,000 rows per commit halved the commit and checkpoint work of a
	// 1M-row import (5.8 -> 3.8 s of CPU); the WAL's high-water mark on
	// 300,000 rows went from 400 MB to 345 MB (fewer rewritten pages).
	var batch []importRow
	var tx *Tx
	var applied int64 // input offset of the rows in the database
	sinceCommit := 0
	defer func() {
		if tx != nil {
			tx.Rollback()
		}
	}()
	commit := func() error {
		if tx == nil {
			return nil
		}
		err := tx.commit()
		tx, sinceCommit = nil, 0
		return err
	}
	apply := func() error {
		if len(batch) == 0 {
			return nil
		}
		if tx == nil {
			var err error
			if tx, err = s.begin(ctx); err != nil {
				return err
			}
		}
		if err := tx.applyImportBatch(batch, opts.fresh); err != nil {
			return err
		}
		for i := range batch {
			r := &batch[i]
			switch r.outcome {
			case Created:
				sum.Created++
			case Updated:
				sum.Updated++
			case Unchanged:
				sum.Unchanged++
			}
			sum.Events += int64(r.events)
			sum.Suppressed += int64(r.suppressed)
			if r.reject != "" {
				sum.Rejected++
				fs.Rejected++
				if err := opts.Rejects.Reject(Reject{File: name, Line: r.line, Reason: r.reject, Fields: r.fields}); err != nil {
					return fmt.Errorf("write rejects: %w", err)
				}
			}
		}
		sinceCommit += len(batch)
		batch = batch[:0]
		if opts.Progress != nil {
			opts.Progress(name, applied, size, sum.Rows)
		}
		if sinceCommit >= opts.CommitRows {
			return commit()
		}
		return nil
	}
	for c := range ordered {
		select {
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, r := range c.rows {
			sum.Rows++
			fs.Rows++
			batch = append(batch, r)
		}
		applied = c.offset
		if len(batch) >= opts.BatchSize {
			if err := apply(); err != nil {
				cancel()
				return err
			}
		}
	}
	if err := apply(); err != nil {
		return err
	}
	if err := commit(); err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sum.Files = append(sum.Files, fs)
	return nil
}

// fileStatus is the status every row of a file has when the export says so
// by its file name or its status-only columns (Mailchimp splits an audience
// into subscribed, unsubscribed, cleaned and nonsubscribed files).
func fileStatus(preset, name string, m *columnMapping) string {
	if preset != PresetMailchimp {
		return ""
	}
	n := strings.ToLower(name)
	switch {
	case strings.Contains(n, "nonsubscribed"):
		return StatusNever
	case strings.Contains(n, "unsubscribed"):
		return StatusUnsubscribed
	case strings.Contains(n, "cleaned"):
		return StatusCleaned
	case strings.Contains(n, "subscribed"):
		return StatusSubscribed
	case m.col(FieldUnsubTime) >= 0:
		return StatusUnsubscribed
	case m.col(FieldCleanTime) >= 0:
		return StatusCleaned
	}
	// Older single-file exports (members_export_<list>.csv) hold subscribed members.
	return StatusSubscribed
}

func (m *columnMapping) hasConsentColumn() bool {
	for _, f := range []string{FieldStatus, FieldEmailConsent, FieldOptOut, FieldBlocklisted, FieldConfirmation, FieldSuppressions} {
		if m.col(f) >= 0 {
			return true
		}
	}
	return false
}
