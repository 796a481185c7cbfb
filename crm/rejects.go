package crm

import (
	"bytes"
	"encoding/csv"
	"os"
	"strings"

	"github.com/jszwec/csvutil"
)

// RejectsFile writes rejected rows to a CSV file: file, line, reason and the
// original row. The file is created on the first reject only, so a clean
// import leaves nothing behind.
type RejectsFile struct {
	Path  string
	Count int

	f   *os.File
	w   *csv.Writer
	enc *csvutil.Encoder
}

type rejectRecord struct {
	File   string `csv:"file"`
	Line   int    `csv:"line"`
	Reason string `csv:"reason"`
	Row    string `csv:"row"`
}

var _ RejectSink = (*RejectsFile)(nil)

// Reject implements RejectSink.
func (r *RejectsFile) Reject(rej Reject) error {
	if r.f == nil {
		f, err := os.Create(r.Path)
		if err != nil {
			return err
		}
		r.f = f
		r.w = csv.NewWriter(f)
		r.enc = csvutil.NewEncoder(r.w)
	}
	r.Count++
	var row bytes.Buffer
	if len(rej.Fields) > 0 {
		cw := csv.NewWriter(&row)
		cw.Write(rej.Fields)
		cw.Flush()
	}
	return r.enc.Encode(rejectRecord{File: rej.File, Line: rej.Line, Reason: rej.Reason,
		Row: strings.TrimRight(row.String(), "\n")})
}

// Close flushes and closes the file (if one was created).
func (r *RejectsFile) Close() error {
	if r.f == nil {
		return nil
	}
	r.w.Flush()
	if err := r.w.Error(); err != nil {
		r.f.Close()
		return err
	}
	return r.f.Close()
}
