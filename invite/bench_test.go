package invite

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
)

// BenchmarkSend100k sends 100,000 invitations end to end (queue, render,
// SMTP to a discarding loopback go-smtp server, record) with the default
// settings and with 8 connections. Run with -bench Send100k -benchtime 1x.
func BenchmarkSend100k(b *testing.B) {
	n := 100000
	if v := os.Getenv("BENCH_N"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	for _, conc := range []int{0, 8} {
		name := "default"
		if conc > 0 {
			name = "concurrency8"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				// As campaign send opens it: commits survive kill -9 without a
				// flush each.
				st := mustOpen(b, crm.SyncOnCheckpoint())
				seedMany(b, st, n)
				testCampaign(b, st, "bench")
				ms := startServer(b)
				ms.Discard = true
				tr, _ := NewSMTP(ms.URL(), SMTPOptions{})
				runtime.GC()
				var peak atomic.Uint64
				done := make(chan struct{})
				go func() {
					var m runtime.MemStats
					for {
						runtime.ReadMemStats(&m)
						if v := m.HeapInuse + m.StackInuse; v > peak.Load() {
							peak.Store(v)
						}
						select {
						case <-done:
							return
						case <-time.After(20 * time.Millisecond):
						}
					}
				}()
				b.StartTimer()
				start := time.Now()
				res, err := Send(context.Background(), st, SendOptions{Campaign: "bench", Identity: testIdentity(), Transport: tr, Concurrency: conc})
				el := time.Since(start)
				b.StopTimer()
				close(done)
				if err != nil || res.Sent != n || ms.total() != n {
					b.Fatalf("%+v %v, server %d", res, err, ms.total())
				}
				b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
				b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
				b.ReportMetric(vmHWM(), "process-peak-RSS-MiB")
			}
		})
	}
}

// vmHWM is the process's peak resident memory (Linux), 0 elsewhere.
func vmHWM() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return 0
}
