package crm

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// threadCPU is the CPU time of the calling OS thread (RUSAGE_THREAD): on a
// machine shared with other benchmarks it measures the work, not the wait.
func threadCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkImportStages measures the CPU per row of the import's worker
// stage on the rows BenchmarkImportMailchimp imports, one thread, no
// database: normalize (all a worker does per row) and, of it, the phone
// (phonenumbers Parse, validity check and E.164 format). On two cores the
// import cannot exceed 2 / (phone CPU per row) rows/s however cheap the
// rest becomes: this is the ceiling the target is measured against.
func BenchmarkImportStages(b *testing.B) {
	const rows = 20_000
	src := filepath.Join(b.TempDir(), "subscribed_members_export_bench.csv")
	writeMailchimpExport(b, src, rows)
	f, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	header, recs := recs[0], recs[1:]
	preset, err := choosePreset("", header)
	if err != nil {
		b.Fatal(err)
	}
	mapping, err := mapColumns(preset, header, nil)
	if err != nil {
		b.Fatal(err)
	}
	salt := make([]byte, 32)
	norm := &normalizer{file: filepath.Base(src), mapping: mapping, header: header, salt: salt}
	norm.fileStatus = fileStatus(preset.Name, norm.file, mapping)
	phone, cc := mapping.col(FieldPhone), mapping.col(FieldCountry)

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var normCPU, phoneCPU time.Duration
	b.ResetTimer()
	for range b.N {
		h := newKeyedHasher(salt)
		t0 := threadCPU(b)
		for i, rec := range recs {
			if r := norm.normalize(rawRow{line: i + 2, fields: rec}, h); r.reject != "" || r.contact.Phone == "" {
				b.Fatalf("line %d: %q, phone %q", i+2, r.reject, rec[phone])
			}
		}
		t1 := threadCPU(b)
		for _, rec := range recs {
			normalizePhone(rec[phone], rec[cc], rec[cc])
		}
		normCPU += t1 - t0
		phoneCPU += threadCPU(b) - t1
	}
	perRow := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N*rows) }
	b.ReportMetric(perRow(normCPU), "normalize-µs/row")
	b.ReportMetric(perRow(phoneCPU), "phone-µs/row")
	b.ReportMetric(2e6/perRow(phoneCPU), "phone-ceiling-rows/s")
}
