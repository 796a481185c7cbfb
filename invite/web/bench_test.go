package web_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite/web"
	"golang.org/x/time/rate"
)

// benchServerEnv makes the test binary a confirmation server: the load
// benchmark re-executes itself with it, so that server and clients are
// separate processes talking over loopback.
const benchServerEnv = "REPERMIT_WEB_BENCH_SERVER"

func TestMain(m *testing.M) {
	if db := os.Getenv(benchServerEnv); db != "" {
		os.Exit(benchServer(db, os.Getenv(benchServerEnv+"_SINGLE") == "1"))
	}
	if db := os.Getenv(otherWriterEnv); db != "" {
		os.Exit(otherWriter(db))
	}
	os.Exit(m.Run())
}

// benchServer serves db on a loopback port it prints as "ADDR host:port",
// until SIGTERM (or SIGKILL, which the benchmark sends to prove that what
// it was told is committed survives the process).
func benchServer(db string, single bool) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	st, err := crm.Open(ctx, db)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	h := web.New(st, web.Options{Business: testBusiness(), PostRate: rate.Inf, SingleWrites: single})
	defer h.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// REPERMIT_WEB_BENCH_CPUPROFILE=FILE profiles the server's first 8
	// seconds, or REPERMIT_WEB_BENCH_CPUPROFILE_SECONDS (the benchmark ends
	// it with SIGKILL, so it stops on a timer).
	if path := os.Getenv("REPERMIT_WEB_BENCH_CPUPROFILE"); path != "" {
		secs, err := strconv.Atoi(os.Getenv("REPERMIT_WEB_BENCH_CPUPROFILE_SECONDS"))
		if err != nil || secs <= 0 {
			secs = 8
		}
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			time.AfterFunc(time.Duration(secs)*time.Second, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	if err := web.Serve(ctx, ln, h, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// seedBench creates n contacts, each with a phone, granted email consent
// and an invitation, and returns their tokens.
func seedBench(b *testing.B, db string, n int) []string {
	st, err := crm.Open(context.Background(), db)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	campaign := seedCampaign(b, st, "bench")
	var tokens []string
	err = st.Update(context.Background(), func(tx *crm.Tx) error {
		tokens, err = web.SeedSentInvitations(tx, campaign, n, crm.FormatTime(time.Now().Add(24*time.Hour)))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return tokens
}

// startBenchServer runs the server process and returns its address.
func startBenchServer(b *testing.B, db string, single bool) (string, *exec.Cmd) {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), benchServerEnv+"="+db)
	if single {
		cmd.Env = append(cmd.Env, benchServerEnv+"_SINGLE=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		cmd.Process.Kill()
		b.Fatalf("bench server did not start: %q %v", line, err)
	}
	go io.Copy(io.Discard, out)
	return strings.TrimSpace(strings.TrimPrefix(line, "ADDR ")), cmd
}

// BenchmarkConfirmLoad measures durable confirmations per second: a server
// in its own process, 32 concurrent clients on loopback, each POST a full
// confirmation (event, interests, invitation) that is fsynced before the
// success page. After the run the server is SIGKILLed and the database
// reopened: every confirmation that got a 200 must be there.
//
// Run: go test -run '^$' -bench ConfirmLoad -benchtime 20000x ./invite/web/
func BenchmarkConfirmLoad(b *testing.B) {
	for _, mode := range []string{"group", "single"} {
		b.Run(mode, func(b *testing.B) { benchConfirmLoad(b, mode == "single", 32) })
	}
}

func benchConfirmLoad(b *testing.B, single bool, clients int) {
	db := filepath.Join(b.TempDir(), "bench.db")
	tokens := seedBench(b, db, b.N)
	addr, server := startBenchServer(b, db, single)
	defer server.Process.Kill()

	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	body := "decision=confirm&interest=offers&interest=recipes"
	var next, okCount atomic.Int64
	latencies := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ResetTimer()
	clientCPU0 := processCPU()
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(tokens) {
					return
				}
				t0 := time.Now()
				resp, err := client.Post("http://"+addr+"/c/"+tokens[i], "application/x-www-form-urlencoded", strings.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("confirmation %d: status %d", i, resp.StatusCode)
					return
				}
				latencies[c] = append(latencies[c], time.Since(t0))
				okCount.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	// Durability: kill the server without warning, then count.
	server.Process.Signal(syscall.SIGKILL)
	server.Wait()
	// CPU per confirmation: the server process (its seeding is done by the
	// benchmark process) and this process (the clients), for a figure that
	// the neighbours' load on a shared machine does not swing.
	serverCPU := server.ProcessState.UserTime() + server.ProcessState.SystemTime()
	clientCPU := processCPU() - clientCPU0
	st, err := crm.Open(context.Background(), db)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var durable int64
	if err := st.DB().QueryRow(`SELECT count(*) FROM consent_events WHERE channel = 'whatsapp' AND action = 'confirmed'`).Scan(&durable); err != nil {
		b.Fatal(err)
	}
	if durable != okCount.Load() {
		b.Fatalf("%d confirmations answered 200 but %d are in the database after a kill", okCount.Load(), durable)
	}
	if res, err := st.Verify(context.Background()); err != nil || !res.OK {
		b.Fatalf("ledger after load: %+v %v", res, err)
	}
	all := slices.Concat(latencies...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "confirms/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(durable), "durable")
	b.ReportMetric(float64(serverCPU.Microseconds())/float64(len(all)), "server-cpu-µs/op")
	b.ReportMetric(float64(clientCPU.Microseconds())/float64(len(all)), "client-cpu-µs/op")
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
