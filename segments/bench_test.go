//go:build unix

package segments

import (
	"context"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
)

// benchStore builds 1,000,000 contacts, 500,000 of them confirmed on
// WhatsApp with interests. Contacts and interests go in with bulk SQL (a
// recursive CTE); the 500,000 confirmations go through crm's AppendEvent so
// that the ledger is a real, verifiable hash chain and consent_current is
// maintained as in production. Countries: DE 50%, AT 20%, CH 15%, US 15%;
// interests of the confirmed: offers 1/2, recipes 1/2, events 1/3.
func benchStore(b *testing.B) *crm.Store {
	b.Helper()
	ctx := context.Background()
	st, err := crm.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	st.Now = func() time.Time { return testNow }
	b.Cleanup(func() { st.Close() })
	const contacts, confirmed = 1_000_000, 500_000
	start := time.Now()
	err = st.Update(ctx, func(tx *crm.Tx) error {
		now := crm.FormatTime(tx.Now)
		_, err := tx.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO contacts (id, email, email_hash, first_name, last_name, phone_e164, phone_hash, country, language,
				tags, attributes, source, created_at, updated_at)
			SELECT i, 'p' || i || '@example.com', printf('%064d', i), 'First' || i, 'Last' || (i % 997),
				printf('+49155%08d', i), printf('p%063d', i),
				CASE WHEN i % 20 < 10 THEN 'DE' WHEN i % 20 < 14 THEN 'AT' WHEN i % 20 < 17 THEN 'CH' ELSE 'US' END,
				CASE WHEN i % 20 < 17 THEN 'de' ELSE 'en' END,
				CASE WHEN i % 7 = 0 THEN '["vip"]' ELSE '[]' END,
				'{"city":"Berlin"}', 'mailchimp', ?, ?
			FROM n`, contacts, now, now)
		if err != nil {
			return err
		}
		// The confirmed are the odd ids; interests by id so that the
		// subsets overlap independently of the country.
		_, err = tx.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 2 FROM n WHERE i + 2 <= ?)
			INSERT INTO contact_interests (contact_id, interest, set_at)
			SELECT i, 'offers', ? FROM n WHERE (i / 2) % 2 = 0
			UNION ALL SELECT i, 'recipes', ? FROM n WHERE (i / 4) % 2 = 0
			UNION ALL SELECT i, 'events', ? FROM n WHERE (i / 8) % 3 = 0`, 2*confirmed, now, now, now)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	sha := crm.StatementHash("I agree to WhatsApp messages.")
	for lo := int64(1); lo <= 2*confirmed; lo += 100_000 {
		err := st.Update(ctx, func(tx *crm.Tx) error {
			for id := lo; id < lo+100_000 && id <= 2*confirmed; id += 2 {
				if err := tx.AppendEvent(&crm.Event{ContactID: id, Channel: crm.ChannelWhatsApp, Action: crm.ActionConfirmed,
					At: testNow.Add(-time.Duration(id) * time.Minute), Method: "invite:confirm-page", Campaign: "spring",
					StatementVersion: "whatsapp-v1", StatementSHA256: sha}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("setup: %d contacts, %d confirmed, in %v", contacts, confirmed, time.Since(start).Round(time.Millisecond))
	return st
}

// cpuTime is the user+system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakHeap samples the live heap while fn runs and returns the highest
// value seen, in bytes.
func peakHeap(fn func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	runtime.GC()
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			mu.Lock()
			peak = max(peak, sample[0].Value.Uint64())
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return peak
}

// BenchmarkExport1M exports segments of the 1M-contact store to CSV files.
// rows/s is exported rows per second; peak-heap-MB is the highest live heap
// during the export, which stays flat whatever the segment size.
func BenchmarkExport1M(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	for _, c := range []struct{ name, rule string }{
		{"either-of-two-interests-DE", "(interest:offers OR interest:recipes) AND country:DE"},
		{"both-interests-DE", "interest:offers AND interest:recipes AND country:DE"},
		{"one-interest-US", "interest:events AND country:US"},
	} {
		b.Run(c.name, func(b *testing.B) {
			if _, err := Replace(ctx, st, c.name, c.rule); err != nil {
				b.Fatal(err)
			}
			out := filepath.Join(b.TempDir(), "seg.csv")
			var rows int64
			b.ReportAllocs()
			cpu0 := cpuTime()
			start := time.Now()
			peak := peakHeap(func() {
				for b.Loop() {
					res, err := Export(ctx, st, c.name, ExportOptions{Out: out})
					if err != nil {
						b.Fatal(err)
					}
					rows += res.Rows
				}
			})
			b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
			// On a shared machine wall time depends on the neighbours; rows
			// per CPU second of this process does not.
			b.ReportMetric(float64(rows)/(cpuTime()-cpu0).Seconds(), "rows/cpu-s")
			b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}
