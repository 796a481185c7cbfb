package invite

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
)

// BenchmarkSend100k sends 100,000 invitations end to end (queue, render,
// SMTP to a discarding loopback go-smtp server, record) with the default
// settings (8 connections) and with 4. Run with -bench Send100k -benchtime 1x
// (BENCH_N=20000 for a quicker look). It reports msgs/s, the process's CPU
// time per message (sender and the in-process server: on a busy machine
// the rate depends on the neighbours, this much less), the peak Go heap and
// the process's peak resident memory during the send (which includes the
// test server and memory the seeding left with the C allocator; the real
// binary's own peak is lower, see the issue notes).
func BenchmarkSend100k(b *testing.B) {
	n := 100000
	if v := os.Getenv("BENCH_N"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	for _, conc := range []int{0, 4} {
		name := "default"
		if conc > 0 {
			name = "concurrency4"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				// As campaign send opens it: commits survive kill -9 without a
				// flush each.
				st := mustOpen(b, crm.SyncOnCheckpoint())
				seedMany(b, st, n)
				testCampaign(b, st, "bench")
				// Send from a freshly opened store, as campaign send runs in
				// a process of its own after the import.
				path := st.Path
				st.Close()
				st, err := crm.Open(context.Background(), path, crm.SyncOnCheckpoint())
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { st.Close() })
				ms := startServer(b)
				ms.Discard = true
				tr, _ := NewSMTP(ms.URL(), SMTPOptions{})
				runtime.GC()
				debug.FreeOSMemory()
				resetHWM()
				cpu0 := cpuTime()
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
				stopProfile := profileSend(b, name)
				b.StartTimer()
				start := time.Now()
				res, err := Send(context.Background(), st, SendOptions{Campaign: "bench", Identity: testIdentity(), Transport: tr, Concurrency: conc})
				el := time.Since(start)
				cpu := cpuTime() - cpu0
				b.StopTimer()
				stopProfile()
				close(done)
				if err != nil || res.Sent != n || ms.total() != n {
					b.Fatalf("%+v %v, server %d", res, err, ms.total())
				}
				b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
				b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
				b.ReportMetric(vmHWM(), "process-peak-RSS-MiB")
				b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/msg")
			}
		})
	}
}

// profileSend writes a CPU profile of the send alone (not the seeding) to
// $BENCH_CPUPROFILE-NAME when that variable is set.
func profileSend(b *testing.B, name string) func() {
	path := os.Getenv("BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path + "-" + name)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// resetHWM resets the process's peak resident memory to its current
// resident memory (Linux), so that vmHWM measures the send alone.
func resetHWM() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
