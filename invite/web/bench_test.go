package web_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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
	// REPERMIT_WEB_BENCH_MEMPROFILE=FILE writes the server's allocations
	// (go tool pprof -sample_index=alloc_space) after the same seconds.
	if path := os.Getenv("REPERMIT_WEB_BENCH_MEMPROFILE"); path != "" {
		secs, err := strconv.Atoi(os.Getenv("REPERMIT_WEB_BENCH_CPUPROFILE_SECONDS"))
		if err != nil || secs <= 0 {
			secs = 8
		}
		time.AfterFunc(time.Duration(secs)*time.Second, func() {
			if f, err := os.Create(path); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		})
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
// The clients are a lean load generator, as wrk is, not net/http's
// Client: each keeps one connection open (HTTP/1.1 keep-alive), writes a
// request pre-formatted but for its token, and reads the answer's status
// line, the headers it needs and the body by hand (readResponse),
// checking the status. Both processes share the machine's two cores, and
// http.Client cost ~111 µs of CPU per confirmation (transport goroutines,
// header maps, pooling), http.ReadResponse ~45, this client ~33: the
// server's share is what the benchmark is about.
// server-cpu-µs/op and client-cpu-µs/op report both.
//
// Run: go test -run '^$' -bench ConfirmLoad -benchtime 20000x ./invite/web/
func BenchmarkConfirmLoad(b *testing.B) {
	for _, mode := range []string{"group", "single"} {
		b.Run(mode, func(b *testing.B) { benchConfirmLoad(b, mode == "single", 32) })
	}
}

// confirmBody is what every benchmark client posts: a confirmation with two
// interests, as a person ticking two boxes sends it.
const confirmBody = "decision=confirm&interest=offers&interest=recipes"

// benchClient is one keep-alive connection of the load generator.
type benchClient struct {
	addr string
	conn net.Conn
	r    *bufio.Reader
	req  []byte
}

// confirm posts one confirmation and returns the response's status. A
// kept-alive connection that fails is redialled once.
func (c *benchClient) confirm(token string) (int, error) {
	reused := c.conn != nil
	status, err := c.roundTrip(token)
	if err != nil && reused {
		// The server may close an idle keep-alive connection.
		c.close()
		status, err = c.roundTrip(token)
	}
	return status, err
}

func (c *benchClient) roundTrip(token string) (int, error) {
	if c.conn == nil {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			return 0, err
		}
		c.conn, c.r = conn, bufio.NewReaderSize(conn, 8<<10)
	}
	c.req = append(c.req[:0], "POST /c/"...)
	c.req = append(c.req, token...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: "...)
	c.req = append(c.req, c.addr...)
	c.req = append(c.req, "\r\nUser-Agent: repermit-bench/1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "...)
	c.req = strconv.AppendInt(c.req, int64(len(confirmBody)), 10)
	c.req = append(c.req, "\r\n\r\n"...)
	c.req = append(c.req, confirmBody...)
	if _, err := c.conn.Write(c.req); err != nil {
		return 0, err
	}
	status, closing, err := c.readResponse()
	if err != nil {
		return 0, err
	}
	if closing {
		c.close()
	}
	return status, nil
}

// readResponse reads one response as wrk does: the status line, the
// headers it needs (the body's length, whether the server closes) and
// the body, which it discards. What the server never sends here is an
// error: a chunked body, a body without a length.
func (c *benchClient) readResponse() (status int, closing bool, err error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// HTTP/1.1 200 OK
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	if status, err = atoi(line[9:12]); err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		if line, err = c.r.ReadSlice('\n'); err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = atoi(value); err != nil {
				return 0, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, false, fmt.Errorf("the load generator reads only bodies with a Content-Length, got Transfer-Encoding %q", value)
		}
	}
	if length < 0 {
		return 0, false, errors.New("the load generator reads only bodies with a Content-Length, got none")
	}
	if _, err := c.r.Discard(length); err != nil {
		return 0, false, err
	}
	return status, closing, nil
}

// atoi parses a non-negative decimal number.
func atoi(b []byte) (int, error) {
	if len(b) == 0 || len(b) > 9 {
		return 0, fmt.Errorf("bad number %q", b)
	}
	n := 0
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, fmt.Errorf("bad number %q", b)
		}
		n = n*10 + int(d-'0')
	}
	return n, nil
}

func (c *benchClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.r = nil, nil
	}
}

func benchConfirmLoad(b *testing.B, single bool, clients int) {
	db := filepath.Join(b.TempDir(), "bench.db")
	tokens := seedBench(b, db, b.N)
	addr, server := startBenchServer(b, db, single)
	defer server.Process.Kill()

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
			client := &benchClient{addr: addr}
			defer client.close()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(tokens) {
					return
				}
				t0 := time.Now()
				status, err := client.confirm(tokens[i])
				if err != nil {
					b.Error(err)
					return
				}
				if status != http.StatusOK {
					b.Errorf("confirmation %d: status %d", i, status)
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
