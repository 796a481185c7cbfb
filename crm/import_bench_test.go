package crm

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// writeMailchimpExport writes an n-row export shaped like a real Mailchimp
// subscribed_members file (merge fields between names and MEMBER_RATING,
// phones in several national and international forms).
func writeMailchimpExport(tb testing.TB, path string, n int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "Email Address,First Name,Last Name,Phone Number,Company,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS")
	ccs := []string{"DE", "AT", "FR", "GB", "US"}
	phones := []string{"0151 %08d", "+43 664 %07d", "06 %08d", "07911 %06d", "(201) 555-%04d"}
	for i := range n {
		k := i % len(ccs)
		phone := fmt.Sprintf(phones[k], i%10000000)
		if k == 3 {
			phone = fmt.Sprintf(phones[k], i%100000)
		}
		if k == 4 {
			phone = fmt.Sprintf(phones[k], i%10000)
		}
		fmt.Fprintf(w, "user%d@example.com,First%d,Last%d,%s,Acme %d,2,2023-04-21 11:16:57,,2023-04-21 11:16:59,198.51.100.%d,,,,,,%s,,2023-04-21 11:16:59,%d,%08x,,\"\"\"Customers\"\"\"\n",
			i, i, i, phone, i%97, i%250, ccs[k], i, i)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
}

type countRejects struct{ n int }

func (c *countRejects) Reject(Reject) error { c.n++; return nil }

// BenchmarkImportMailchimp imports a generated 1,000,000-row Mailchimp
// export into a fresh database (REPERMIT_BENCH_ROWS overrides the size).
// It reports rows/s and the peak heap.
func BenchmarkImportMailchimp(b *testing.B) {
	rows := 1_000_000
	if v := os.Getenv("REPERMIT_BENCH_ROWS"); v != "" {
		fmt.Sscan(v, &rows)
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "subscribed_members_export_bench.csv")
	writeMailchimpExport(b, src, rows)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// As `repermit import` opens it.
		st, err := Open(context.Background(), filepath.Join(dir, fmt.Sprintf("bench%d.db", i)), SyncOnCheckpoint())
		if err != nil {
			b.Fatal(err)
		}
		var peak uint64
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			var ms runtime.MemStats
			for {
				select {
				case <-stop:
					return
				default:
				}
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
				runtime.Gosched()
				select {
				case <-stop:
					return
				case <-timeAfter():
				}
			}
		}()
		rej := &countRejects{}
		sum, err := st.Import(context.Background(), []string{src}, ImportOptions{Rejects: rej})
		close(stop)
		<-done
		if err != nil {
			b.Fatal(err)
		}
		if sum.Created != int64(rows) || rej.n != 0 {
			b.Fatalf("created %d of %d, %d rejected", sum.Created, rows, rej.n)
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds()*float64(i+1)/float64(i+1), "rows/s")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		st.Close()
	}
}

func timeAfter() <-chan time.Time { return time.After(50 * time.Millisecond) }
