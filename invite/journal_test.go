package invite

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/repermit/repermit/crm"
)

func TestJournalLineRoundTrip(t *testing.T) {
	for _, r := range []result{
		{id: 7, contactID: 3, state: 's', count: 2, at: "2026-01-02T03:04:05.000000Z", expires: "2026-02-02T03:04:05.000000Z", msgID: "<a@b>"},
		{id: 8, contactID: 4, reminder: true, state: 'b', count: 1, at: "t", errText: "550 5.1.1 <x@y>\tno such\nuser \"quoted\" é", source: "invite:bounce:spring"},
		{id: 9, state: 'd', errText: ""},
	} {
		line := string(r.appendLine(nil))
		if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
			t.Fatalf("not one line: %q", line)
		}
		got, err := parseResult(strings.TrimSuffix(line, "\n"))
		if err != nil || got != r {
			t.Fatalf("%q read back as %+v, %v; want %+v", line, got, err, r)
		}
	}
	for _, bad := range []string{"", "x", "si\t1\t2\t3\ta\tb\t\"\"\t\"\"", "zi\t1\t2\t3\ta\tb\t\"\"\t\"\"\t\"\"", "si\t1\t2\t3\ta\tb\t\"\"\t\"\"\tunquoted"} {
		if _, err := parseResult(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// A run killed before its applier caught up leaves results in the
// journal: the next run applies them before it claims anything (so
// nothing delivered is sent again), ignores a torn last line, applying
// twice changes nothing, and the file is gone afterwards.
func TestJournalReplayIsIdempotent(t *testing.T) {
	ctx := context.Background()
	st := mustOpen(t)
	seedMany(t, st, 3)
	c := testCampaign(t, st, "j")
	if _, err := Queue(ctx, st, "j", 0); err != nil {
		t.Fatal(err)
	}
	var ids, contacts []int64
	rows, err := st.DB().Query(`SELECT id, contact_id FROM invitations ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, contact int64
		rows.Scan(&id, &contact)
		ids, contacts = append(ids, id), append(contacts, contact)
	}
	rows.Close()
	now := crm.FormatTime(st.Now().UTC())
	rs := []result{
		{id: ids[0], contactID: contacts[0], state: 's', count: 1, at: now, expires: now, msgID: "<m1@x>"},
		{id: ids[1], contactID: contacts[1], state: 'b', count: 1, at: now, errText: "550 no such user", source: "invite:bounce:" + c.Name},
	}
	var b []byte
	for i := range rs {
		b = rs[i].appendLine(b)
	}
	torn := result{id: ids[2], contactID: contacts[2], state: 's', count: 1, at: now, expires: now}
	b = append(b, torn.appendLine(nil)[:10]...)
	if err := os.WriteFile(journalPath(st), b, 0o600); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		var got []string
		rows, err := st.DB().Query(`SELECT status || ' ' || attempts || ' ' || message_id FROM invitations ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			rows.Scan(&s)
			got = append(got, s)
		}
		if want := "sent 1 <m1@x>|failed 1 |queued 0 "; strings.Join(got, "|") != want {
			t.Fatalf("invitations %q, want %q", strings.Join(got, "|"), want)
		}
		var suppressed int
		st.DB().QueryRow(`SELECT count(*) FROM suppressions WHERE reason = ?`, crm.ReasonBounced).Scan(&suppressed)
		if suppressed != 1 {
			t.Fatalf("%d bounce suppressions", suppressed)
		}
	}
	if err := recoverInFlight(ctx, st); err != nil {
		t.Fatal(err)
	}
	check()
	if _, err := os.Stat(journalPath(st)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journal left after replay: %v", err)
	}
	if err := applyResults(ctx, st, rs); err != nil {
		t.Fatal(err)
	}
	check()

	// A damaged line stops the run with advice, and applies nothing.
	os.WriteFile(journalPath(st), []byte("garbage\n"), 0o600)
	if err := recoverInFlight(ctx, st); err == nil || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "move it aside") {
		t.Fatalf("damaged journal: %v", err)
	}
}
