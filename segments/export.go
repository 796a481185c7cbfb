package segments

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"github.com/repermit/repermit/crm"
)

// ExportOptions say how to export. The zero value (with Out set) is a CSV
// of the default columns in one file.
type ExportOptions struct {
	// Format is csv (default), jsonl or a provider preset (Presets).
	Format string
	// Columns picks and orders the columns of csv and jsonl (FieldNames,
	// attr.NAME); empty means DefaultColumns.
	Columns []string
	// BatchSize > 0 splits the export into numbered files of at most that
	// many rows (OUT-001.csv, …), e.g. for Meta's daily messaging tiers of
	// 250, 2,000, 10,000 and 100,000 unique users.
	BatchSize int
	// Out is the file to write, atomically (a temporary file renamed when
	// complete) with a manifest beside it (Out + ".manifest.json"); "-"
	// writes to Stdout and no manifest file.
	Out    string
	Stdout io.Writer
}

// ExportFile is one written file.
type ExportFile struct {
	Path   string `json:"path"`
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"`
}

// ExportResult describes a finished export; it is also the manifest.
type ExportResult struct {
	Segment  string       `json:"segment,omitempty"`
	Rule     string       `json:"rule"`
	Base     string       `json:"base_condition"`
	Format   string       `json:"format"`
	Columns  []string     `json:"columns"`
	At       time.Time    `json:"at"`
	Rows     int64        `json:"rows"`
	Files    []ExportFile `json:"files"`
	Manifest string       `json:"manifest,omitempty"`
}

// ExportRecord is an export in the audit trail of a segment.
type ExportRecord struct {
	At     time.Time    `json:"at"`
	Rule   string       `json:"rule"`
	Format string       `json:"format"`
	Rows   int64        `json:"rows"`
	Files  []ExportFile `json:"files"`
}

// ErrUsage marks an export asked for in a way that cannot work (unknown
// format, --columns with a preset, batches to stdout).
var ErrUsage = errors.New("invalid export options")

// Export evaluates the segment called name now (st.Now) and writes it as
// opts say, then records the export (rule, time, rows, file hashes) in the
// store's audit trail.
func Export(ctx context.Context, st *crm.Store, name string, opts ExportOptions) (ExportResult, error) {
	seg, err := Get(ctx, st, name)
	if err != nil {
		return ExportResult{}, err
	}
	r, err := Parse(seg.Rule)
	if err != nil {
		return ExportResult{}, fmt.Errorf("segment %s: stored rule: %w", name, err)
	}
	res, err := export(ctx, st, name, r, opts, chunkIDs)
	if err != nil {
		return res, err
	}
	files, _ := json.Marshal(res.Files)
	err = st.Update(ctx, func(tx *crm.Tx) error {
		_, err := tx.Exec(`INSERT INTO segment_exports (segment_id, rule, format, rows, files, at) VALUES (?, ?, ?, ?, ?, ?)`,
			seg.ID, seg.Rule, res.Format, res.Rows, string(files), crm.FormatTime(res.At))
		return err
	})
	if err != nil {
		return res, fmt.Errorf("export written but not recorded in the audit trail: %w", err)
	}
	return res, nil
}

// ExportRule is Export for a rule that is not stored (nothing is
// recorded in the audit trail besides the manifest).
func ExportRule(ctx context.Context, st *crm.Store, r *Rule, opts ExportOptions) (ExportResult, error) {
	return export(ctx, st, "", r, opts, chunkIDs)
}

// exportsOf lists the newest exports of a segment.
func exportsOf(ctx context.Context, tx *sql.Tx, segmentID int64, limit int) ([]ExportRecord, error) {
	rows, err := tx.QueryContext(ctx, `SELECT at, rule, format, rows, files FROM segment_exports
		WHERE segment_id = ? ORDER BY id DESC LIMIT ?`, segmentID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ExportRecord{}
	for rows.Next() {
		var e ExportRecord
		var at, files string
		if err := rows.Scan(&at, &e.Rule, &e.Format, &e.Rows, &files); err != nil {
			return nil, err
		}
		e.At, _ = crm.ParseTime(at)
		_ = json.Unmarshal([]byte(files), &e.Files)
		out = append(out, e)
	}
	return out, rows.Err()
}

// outCol is one output column: where its value comes from.
type outCol struct {
	kind     valueKind
	idx      int // index in the select list (phone_e164 for kindPhone)
	phone    phoneForm
	constant string
}

// plan is an export's query and column layout.
type plan struct {
	format  string
	jsonl   bool
	headers []string
	cols    []outCol
	selects []string
	selArgs []any
	contact bool         // a column reads c (the contact row)
	codes   map[int]bool // country calling codes, for the phone forms
}

func (p *plan) addSelect(spec fieldSpec) int {
	if len(spec.args) == 0 {
		for i, s := range p.selects {
			if s == spec.sql {
				return i
			}
		}
	}
	p.selects = append(p.selects, spec.sql)
	p.selArgs = append(p.selArgs, spec.args...)
	p.contact = p.contact || spec.contact
	return len(p.selects) - 1
}

func (p *plan) addColumn(header, name string) error {
	spec, err := field(name)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	col := outCol{kind: spec.kind}
	switch spec.kind {
	case kindConst:
		col.constant = name[1:]
	case kindPhone:
		phone, _ := field("phone_e164")
		col.idx, col.phone = p.addSelect(phone), spec.phone
		if p.codes == nil {
			p.codes = phonenumbers.GetSupportedCallingCodes()
		}
	default:
		col.idx = p.addSelect(spec)
	}
	p.headers = append(p.headers, header)
	p.cols = append(p.cols, col)
	return nil
}

// plainInCSV reports whether a field's values never need quoting in CSV:
// E.164 numbers (the base condition guarantees the form), fixed-format
// times, hex digests and ids.
func plainInCSV(name string) bool {
	switch name {
	case "phone_e164", "opted_in_at", "consent_statement_sha256", "consent_event_id", "contact_id":
		return true
	}
	return false
}

// addPlainRun adds consecutive CSV columns that need no quoting as one
// value that SQLite joins with commas: the driver converts one value
// instead of several. The default columns end with three such (opted_in_at,
// the statement's SHA-256 and the event id); as one value,
// BenchmarkExport1M spends about a tenth less CPU per row.
func (p *plan) addPlainRun(names []string) error {
	parts := make([]string, len(names))
	for i, name := range names {
		spec, err := field(name)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUsage, err)
		}
		parts[i] = "(" + spec.sql + ")"
		p.contact = p.contact || spec.contact
	}
	col := outCol{kind: kindCSV, idx: p.addSelect(fieldSpec{sql: strings.Join(parts, " || ',' || ")})}
	p.headers = append(p.headers, names...)
	p.cols = append(p.cols, col)
	return nil
}

// newPlan lays out the columns of a format. attrKeys is called only for a
// preset that appends attributes.
func newPlan(opts ExportOptions, attrKeys func() ([]string, error)) (*plan, error) {
	format := opts.Format
	if format == "" {
		format = "csv"
	}
	p := &plan{format: format}
	switch format {
	case "csv", "jsonl":
		p.jsonl = format == "jsonl"
		cols := opts.Columns
		if len(cols) == 0 {
			cols = DefaultColumns()
			if p.jsonl {
				cols = append(cols, "attributes")
			}
		}
		seen := map[string]bool{}
		var names []string
		for _, c := range cols {
			c = strings.TrimSpace(c)
			if c == "" || seen[c] {
				continue
			}
			seen[c] = true
			if strings.HasPrefix(c, "=") {
				return nil, fmt.Errorf("%w: column %q: constants are for presets", ErrUsage, c)
			}
			names = append(names, c)
		}
		for i := 0; i < len(names); {
			j := i
			for !p.jsonl && j < len(names) && plainInCSV(names[j]) {
				j++
			}
			if j-i >= 2 {
				if err := p.addPlainRun(names[i:j]); err != nil {
					return nil, err
				}
				i = j
				continue
			}
			if err := p.addColumn(names[i], names[i]); err != nil {
				return nil, err
			}
			i++
		}
		if len(p.cols) == 0 {
			return nil, fmt.Errorf("%w: no columns", ErrUsage)
		}
		return p, nil
	}
	preset, ok := presetByName(format)
	if !ok {
		return nil, fmt.Errorf("%w: unknown format %q: use %s", ErrUsage, format, strings.Join(Formats(), ", "))
	}
	if len(opts.Columns) > 0 {
		return nil, fmt.Errorf("%w: --columns applies to csv and jsonl; the %s preset has fixed columns", ErrUsage, format)
	}
	used := map[string]bool{}
	for _, c := range preset.Columns {
		if err := p.addColumn(c.Header, c.Field); err != nil {
			return nil, err
		}
		used[strings.ToLower(c.Header)] = true
	}
	if preset.Attributes {
		keys, err := attrKeys()
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if used[strings.ToLower(k)] {
				continue // an attribute may not shadow a fixed column
			}
			used[strings.ToLower(k)] = true
			if err := p.addColumn(k, "attr."+k); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// maxAttributeColumns bounds the columns a preset adds for attributes.
const maxAttributeColumns = 200

// sink is one output file (or stdout) being written.
type sink struct {
	path string // final path; "" for stdout
	tmp  *os.File
	bw   *bufio.Writer
	h    hash.Hash
	rows int64
}

// export writes the rule's rows, evaluated in chunks of span contact ids
// (chunkIDs; tests pass small spans to cross many chunk boundaries).
func export(ctx context.Context, st *crm.Store, name string, r *Rule, opts ExportOptions, span int64) (res ExportResult, err error) {
	if opts.Out == "" {
		return res, fmt.Errorf("%w: no output: give a file, or - for stdout", ErrUsage)
	}
	if opts.BatchSize < 0 {
		return res, fmt.Errorf("%w: batch size %d: give a positive number of rows per file", ErrUsage, opts.BatchSize)
	}
	toStdout := opts.Out == "-"
	if toStdout && opts.BatchSize > 0 {
		return res, fmt.Errorf("%w: batches are numbered files; give --out FILE instead of -", ErrUsage)
	}
	if toStdout && opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	now := st.Now().UTC()
	w := r.compile(now)
	res = ExportResult{Segment: name, Rule: r.Text(), Base: BaseCondition, At: now, Files: []ExportFile{}}

	// Read transactions that share one snapshot, so that the attribute
	// columns and the rows of every chunk agree (parallel.go).
	txs, err := readSnapshot(ctx, st, exportWorkers(maxExportWorkers))
	if err != nil {
		// Taking the shared snapshot needs the write lock for a moment;
		// when a long write holds it, one transaction still works.
		if txs, err = readSnapshot(ctx, st, 1); err != nil {
			return res, err
		}
	}
	defer func() {
		for _, tx := range txs {
			tx.Rollback()
		}
	}()
	tx := txs[0]
	p, err := newPlan(opts, func() ([]string, error) {
		return attributeKeys(ctx, tx, w)
	})
	if err != nil {
		return res, err
	}
	res.Format, res.Columns = p.format, p.headers

	// The contact ids to cover (those of the audience); chunks split this
	// range. Each bound is a subquery of its own: SQLite answers a lone
	// min() or max() from the b-tree's edge, but min() and max() together
	// in one SELECT scan the whole table (155 ms of a 370 ms export on the
	// 1M-contact store of BenchmarkExport1M, when it read contacts).
	var lo, hi int64
	if err = tx.QueryRowContext(ctx, `SELECT coalesce((SELECT min(contact_id) FROM whatsapp_audience), 0),
		coalesce((SELECT max(contact_id) FROM whatsapp_audience), 0)`).Scan(&lo, &hi); err != nil {
		return res, fmt.Errorf("export: %w", err)
	}
	if n := exportWorkers(int((hi-lo)/span) + 1); n < len(txs) {
		for _, extra := range txs[n:] {
			extra.Rollback()
		}
		txs = txs[:n]
	}

	// No ORDER BY: the plan walks whatsapp_audience by its primary key
	// (contact_id), so each chunk's rows come in contact id order already, while asking SQLite to sort makes it evaluate and sort the
	// whole chunk in a temporary b-tree before the first row. The order is
	// not part of the contract; the golden tests pin it for the plans we
	// know.
	q := selectFrom(strings.Join(p.selects, ", "), w, p.contact) + "\n  AND o.contact_id >= ? AND o.contact_id < ?"
	args := append(append([]any{}, p.selArgs...), w.args...)

	var sinks []*sink
	defer func() {
		if err != nil {
			for _, s := range sinks {
				if s.tmp != nil {
					s.tmp.Close()
					os.Remove(s.tmp.Name())
				}
			}
		}
	}()
	open := func() (*sink, error) {
		s := &sink{h: sha256.New()}
		if toStdout {
			s.bw = bufio.NewWriterSize(io.MultiWriter(opts.Stdout, s.h), 256<<10)
		} else {
			s.path = opts.Out
			if opts.BatchSize > 0 {
				s.path = batchPath(opts.Out, len(sinks)+1)
			}
			f, err := os.CreateTemp(filepath.Dir(s.path), "."+filepath.Base(s.path)+".tmp-*")
			if err != nil {
				return nil, fmt.Errorf("export: %w (check the directory exists and is writable)", err)
			}
			s.tmp = f
			s.bw = bufio.NewWriterSize(io.MultiWriter(f, s.h), 256<<10)
		}
		sinks = append(sinks, s)
		return s, p.writeHeader(s.bw)
	}

	var cur *sink
	err = p.chunkRows(ctx, txs, q, args, lo, hi, span, func(c *chunk) error {
		b, start := c.buf.Bytes(), 0
		for i := 0; i < len(c.ends); {
			if cur == nil || (opts.BatchSize > 0 && cur.rows == int64(opts.BatchSize)) {
				var err error
				if cur, err = open(); err != nil {
					return err
				}
			}
			// As many rows as fit in the current file, in one write.
			n := len(c.ends) - i
			if opts.BatchSize > 0 {
				n = min(n, opts.BatchSize-int(cur.rows))
			}
			end := c.ends[i+n-1]
			if _, err := cur.bw.Write(b[start:end]); err != nil {
				return fmt.Errorf("export: write: %w", err)
			}
			cur.rows += int64(n)
			res.Rows += int64(n)
			i, start = i+n, end
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if cur == nil { // an empty segment still gets a file (a header)
		if _, err = open(); err != nil {
			return res, err
		}
	}
	for _, s := range sinks {
		if err = s.bw.Flush(); err != nil {
			return res, fmt.Errorf("export: write: %w", err)
		}
		if s.tmp != nil {
			if err = s.tmp.Sync(); err != nil {
				return res, fmt.Errorf("export: write: %w", err)
			}
			if err = s.tmp.Close(); err != nil {
				return res, fmt.Errorf("export: write: %w", err)
			}
		}
		res.Files = append(res.Files, ExportFile{Path: s.path, Rows: s.rows, SHA256: hex.EncodeToString(s.h.Sum(nil))})
	}
	if toStdout {
		return res, nil
	}
	for _, s := range sinks {
		if err = os.Rename(s.tmp.Name(), s.path); err != nil {
			return res, fmt.Errorf("export: %w", err)
		}
		s.tmp = nil
	}
	res.Manifest = opts.Out + ".manifest.json"
	if err = writeManifest(res); err != nil {
		return res, err
	}
	return res, syncDir(filepath.Dir(opts.Out))
}

// batchPath numbers a batch: offers.csv → offers-001.csv.
func batchPath(out string, n int) string {
	ext := filepath.Ext(out)
	return fmt.Sprintf("%s-%03d%s", strings.TrimSuffix(out, ext), n, ext)
}

// writeManifest writes the manifest beside the export, atomically. File
// paths in it are relative to the manifest.
func writeManifest(res ExportResult) error {
	m := res
	m.Manifest = ""
	m.Files = make([]ExportFile, len(res.Files))
	for i, f := range res.Files {
		f.Path = filepath.Base(f.Path)
		m.Files[i] = f
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(res.Manifest), "."+filepath.Base(res.Manifest)+".tmp-*")
	if err != nil {
		return fmt.Errorf("export manifest: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("export manifest: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("export manifest: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("export manifest: %w", err)
	}
	if err := os.Rename(f.Name(), res.Manifest); err != nil {
		return fmt.Errorf("export manifest: %w", err)
	}
	return nil
}

// syncDir makes the renames durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("export: sync %s: %w", dir, err)
	}
	return nil
}

// attributeKeys lists the attribute keys present in the segment, sorted.
func attributeKeys(ctx context.Context, tx *sql.Tx, w where) ([]string, error) {
	q := `SELECT DISTINCT a.key FROM (` + selectFrom("c.attributes AS attributes", w, true) + `) m, json_each(m.attributes) a
		ORDER BY a.key LIMIT ?`
	rows, err := tx.QueryContext(ctx, q, append(append([]any{}, w.args...), maxAttributeColumns)...)
	if err != nil {
		return nil, fmt.Errorf("export: attribute columns: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

func (p *plan) writeHeader(w *bufio.Writer) error {
	if p.jsonl {
		return nil
	}
	for i, h := range p.headers {
		if i > 0 {
			w.WriteByte(',')
		}
		writeCSVField(w, []byte(h))
	}
	_, err := w.WriteString("\n")
	return err
}

// writeRow writes one row; scratch is reused between rows so that a row
// costs no allocation here.
func (p *plan) writeRow(w *bufio.Writer, raw []sql.RawBytes, scratch []byte) ([]byte, error) {
	if p.jsonl {
		w.WriteByte('{')
	}
	for i, c := range p.cols {
		var v []byte
		switch c.kind {
		case kindConst:
			v = append(scratch[:0], c.constant...)
			scratch = v[:0]
		case kindPhone:
			v = p.phoneForm(scratch[:0], raw[c.idx], c.phone)
			scratch = v[:0]
		default:
			v = raw[c.idx]
		}
		if p.jsonl {
			if i > 0 {
				w.WriteByte(',')
			}
			appendJSONString(w, p.headers[i])
			w.WriteByte(':')
			switch {
			case c.kind == kindInt && len(v) > 0:
				w.Write(v)
			case c.kind == kindList:
				w.WriteByte('[')
				for j, item := range splitBytes(v) {
					if j > 0 {
						w.WriteByte(',')
					}
					appendJSONString(w, item)
				}
				w.WriteByte(']')
			case c.kind == kindJSON && json.Valid(v):
				w.Write(v)
			default:
				appendJSONString(w, v)
			}
			continue
		}
		if i > 0 {
			w.WriteByte(',')
		}
		if c.kind == kindCSV {
			w.Write(v)
			continue
		}
		if c.kind == kindList {
			for j := range v {
				if v[j] == unitSep[0] {
					v[j] = '|'
				}
			}
		}
		writeCSVField(w, v)
	}
	if p.jsonl {
		w.WriteByte('}')
	}
	return scratch, w.WriteByte('\n')
}

// splitBytes splits a unit-separated list (none for empty).
func splitBytes(v []byte) []string {
	if len(v) == 0 {
		return nil
	}
	return strings.Split(string(v), unitSep)
}

// phoneForm writes an E.164 number in another form. A country calling
// code is the one of 1 to 3 digits that the ITU assigned (they are
// prefix-free, so at most one matches).
func (p *plan) phoneForm(dst, e164 []byte, form phoneForm) []byte {
	digits := e164
	if len(digits) > 0 && digits[0] == '+' {
		digits = digits[1:]
	}
	switch form {
	case phoneWhatsApp:
		dst = append(dst, "whatsapp:+"...)
		return append(dst, digits...)
	case phoneDigits:
		return append(dst, digits...)
	}
	cc := 0
	for l := 1; l <= 3 && l < len(digits); l++ {
		n, err := strconv.Atoi(string(digits[:l]))
		if err == nil && p.codes[n] {
			cc = l
			break
		}
	}
	if form == phoneCC {
		return append(dst, digits[:cc]...)
	}
	return append(dst, digits[cc:]...)
}

// writeCSVField writes a field as RFC 4180 wants: quoted when it holds a
// comma, a quote, a line break or starts with a space, quotes doubled.
func writeCSVField(w *bufio.Writer, v []byte) {
	quote := len(v) > 0 && (v[0] == ' ' || v[0] == '\t')
	if !quote {
		for _, c := range v {
			if c == ',' || c == '"' || c == '\n' || c == '\r' {
				quote = true
				break
			}
		}
	}
	if !quote {
		w.Write(v)
		return
	}
	w.WriteByte('"')
	for _, c := range v {
		if c == '"' {
			w.WriteByte('"')
		}
		w.WriteByte(c)
	}
	w.WriteByte('"')
}

// appendJSONString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD
// as encoding/json does.
func appendJSONString[T string | []byte](w *bufio.Writer, s T) {
	const hexDigits = "0123456789abcdef"
	w.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				w.WriteByte('\\')
				w.WriteByte(c)
			case c < 0x20:
				switch c {
				case '\n':
					w.WriteString(`\n`)
				case '\r':
					w.WriteString(`\r`)
				case '\t':
					w.WriteString(`\t`)
				default:
					w.WriteString(`\u00`)
					w.WriteByte(hexDigits[c>>4])
					w.WriteByte(hexDigits[c&0xf])
				}
			default:
				w.WriteByte(c)
			}
			i++
			continue
		}
		var r rune
		var size int
		switch v := any(s).(type) {
		case string:
			r, size = utf8.DecodeRuneInString(v[i:])
		case []byte:
			r, size = utf8.DecodeRune(v[i:])
		}
		if r == utf8.RuneError && size == 1 {
			w.WriteString(`\ufffd`)
		} else if r == '\u2028' || r == '\u2029' {
			fmt.Fprintf(w, `\u%04x`, r)
		} else {
			w.WriteRune(r)
		}
		i += size
	}
	w.WriteByte('"')
}
