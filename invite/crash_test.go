package invite

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
)

// TestCrashHelper is the sending process of TestKill9ResumesWithoutLossOrMoreThanInFlightDuplicates;
// it does nothing in a normal run.
func TestCrashHelper(t *testing.T) {
	db, url := os.Getenv("REPERMIT_CRASH_DB"), os.Getenv("REPERMIT_CRASH_SMTP")
	if db == "" {
		t.Skip("helper process only")
	}
	st, err := crm.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := NewSMTP(url, SMTPOptions{})
	Send(context.Background(), st, SendOptions{Campaign: "crash", Identity: testIdentity(), Transport: tr, Concurrency: 4})
	time.Sleep(time.Hour) // wait to be killed
}

// A real kill -9 of a sending process part-way, then a resume: every
// contact receives its invitation (no loss) and at most --concurrency
// messages arrive twice (those in flight at the kill).
func TestKill9ResumesWithoutLossOrMoreThanInFlightDuplicates(t *testing.T) {
	const n, concurrency = 300, 4
	st := mustOpen(t)
	seedMany(t, st, n)
	testCampaign(t, st, "crash")
	ms := startServer(t)
	ms.delay = 2 * time.Millisecond
	cmd := exec.Command(os.Args[0], "-test.run", "^TestCrashHelper$")
	cmd.Env = append(os.Environ(), "REPERMIT_CRASH_DB="+st.Path, "REPERMIT_CRASH_SMTP="+ms.URL())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for ms.total() < n/3 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the helper sent only %d messages", ms.total())
		}
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	before := ms.total()
	if before >= n {
		t.Fatalf("the helper finished before the kill (%d)", before)
	}
	res, err := Send(context.Background(), st, SendOptions{Campaign: "crash", Identity: testIdentity(),
		Transport: smtpTransport(t, ms), Concurrency: concurrency})
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, m := range ms.messages() {
		per[m.To]++
	}
	dups := 0
	for _, k := range per {
		dups += k - 1
	}
	if len(per) != n {
		t.Fatalf("%d of %d contacts received their invitation", len(per), n)
	}
	if dups > concurrency {
		t.Fatalf("%d duplicates, more than the %d in flight", dups, concurrency)
	}
	t.Logf("killed after %d messages; resume sent %d; %d duplicate(s)", before, res.Sent, dups)
}
