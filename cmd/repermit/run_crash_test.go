package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	_ "github.com/mattn/go-sqlite3"
)

// recordingSMTP is a real SMTP server on loopback that counts the messages
// each recipient gets; delay slows every message down so that a kill lands
// in the middle of sending.
type recordingSMTP struct {
	addr  string
	mu    sync.Mutex
	count map[string]int
}

func startRecordingSMTP(t *testing.T, delay time.Duration) *recordingSMTP {
	t.Helper()
	rs := &recordingSMTP{count: map[string]int{}}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &recordingSession{rs: rs, delay: delay}, nil
	}))
	s.Domain = "localhost"
	s.AllowInsecureAuth = true
	s.ErrorLog = log.New(io.Discard, "", 0) // killed clients reset their connections
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs.addr = ln.Addr().String()
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return rs
}

func (rs *recordingSMTP) totals() (recipients, messages int) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, n := range rs.count {
		recipients++
		messages += n
	}
	return
}

type recordingSession struct {
	rs    *recordingSMTP
	delay time.Duration
	to    []string
}

func (s *recordingSession) Reset()                               { s.to = nil }
func (s *recordingSession) Logout() error                        { return nil }
func (s *recordingSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *recordingSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *recordingSession) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	time.Sleep(s.delay)
	s.rs.mu.Lock()
	for _, to := range s.to {
		s.rs.count[to]++
	}
	s.rs.mu.Unlock()
	return nil
}

// runCrashFixture writes an export of n people and a config whose [run]
// imports it and sends over SMTP to addr.
func runCrashFixture(t *testing.T, dir string, n int, smtpAddr string) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("email,first name,phone,country,consent\n")
	for i := range n {
		fmt.Fprintf(&b, "p%d@example.com,P%d,+49151%08d,DE,yes\n", i, i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "export.csv"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`[business]
name = "Example Coffee"
address = "Example Street 1, Berlin"
[sender]
from = "Example <hello@example.com>"
smtp = "smtp://%s"
concurrency = 4
[web]
base_url = "https://optin.example.com"
[run]
campaign = "rolling"
imports = ["export.csv"]
`, smtpAddr)
	if err := os.WriteFile(filepath.Join(dir, "repermit.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dbCounts reads what must match between a crashed-and-resumed run and a
// clean one.
func dbCounts(t *testing.T, path string) map[string]int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]int{}
	for name, q := range map[string]string{
		"contacts":         `SELECT count(*) FROM contacts`,
		"events":           `SELECT count(*) FROM consent_events`,
		"invitations":      `SELECT count(*) FROM invitations`,
		"invitations sent": `SELECT count(*) FROM invitations WHERE status = 'sent'`,
		"campaigns":        `SELECT count(*) FROM campaigns`,
	} {
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out[name] = n
	}
	return out
}

// TestRunCrashAndResume kills `repermit run` (SIGKILL) at several points and
// runs it again until it finishes: the end state equals one clean run, every
// person got the invitation, and no more were sent twice than were in
// flight at each kill.
func TestRunCrashAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	const people, concurrency = 1500, 4
	bin := cliBinary(t)
	runIn := func(dir string) *exec.Cmd {
		cmd := exec.Command(bin, "run", "--json")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "REPERMIT_DB=", "REPERMIT_CONFIG=")
		return cmd
	}

	// One clean run.
	cleanSMTP := startRecordingSMTP(t, 0)
	clean := t.TempDir()
	runCrashFixture(t, clean, people, cleanSMTP.addr)
	if out, err := runIn(clean).CombinedOutput(); err != nil {
		t.Fatalf("clean run: %v\n%s", err, out)
	}
	want := dbCounts(t, filepath.Join(clean, "repermit.db"))
	if r, m := cleanSMTP.totals(); r != people || m != people {
		t.Fatalf("clean run sent %d messages to %d people, want %d", m, r, people)
	}

	// The same, killed again and again.
	rs := startRecordingSMTP(t, 2*time.Millisecond)
	dir := t.TempDir()
	runCrashFixture(t, dir, people, rs.addr)
	kills := 0
	delays := []time.Duration{30 * time.Millisecond, 150 * time.Millisecond, 400 * time.Millisecond, 700 * time.Millisecond, 1200 * time.Millisecond}
	for _, d := range delays {
		cmd := runIn(dir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Logf("run finished before the kill at %v: %v", d, err)
		case <-time.After(d):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			kills++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	final := exec.CommandContext(ctx, bin, "run", "--json")
	final.Dir = dir
	final.Env = runIn(dir).Env
	out, err := final.Output()
	if err != nil {
		t.Fatalf("resumed run: %v\n%s", err, out)
	}
	var sum jobSummary
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("run --json: %v\n%s", err, out)
	}
	got := dbCounts(t, filepath.Join(dir, "repermit.db"))
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d after %d kills, want %d as in a clean run", k, got[k], kills, v)
		}
	}
	recipients, messages := rs.totals()
	if recipients != people {
		t.Errorf("%d of %d people got their invitation", recipients, people)
	}
	if dup := messages - recipients; dup > kills*concurrency {
		t.Errorf("%d duplicate messages after %d kills, want at most %d (those in flight)", dup, kills, kills*concurrency)
	} else {
		t.Logf("%d kills, %d messages to %d people: %d sent twice", kills, messages, recipients, dup)
	}
	// And once more: nothing left to do.
	again, err := runIn(dir).Output()
	if err != nil || !strings.Contains(string(again), `"sent": 0`) {
		t.Errorf("a further run: %v\n%s", err, again)
	}
	if _, m := rs.totals(); m != messages {
		t.Errorf("a further run sent %d more messages", m-messages)
	}
	v := runBinary(t, dir, "consent", "verify", "--json")
	if v.code != 0 || !strings.Contains(v.stdout, `"ok": true`) {
		t.Errorf("consent verify after the crashes: %d %s %s", v.code, v.stdout, v.stderr)
	}
}
