package crm

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// seedLedger creates three contacts with two events each.
func seedLedger(t *testing.T, st *Store) {
	t.Helper()
	err := st.Update(context.Background(), func(tx *Tx) error {
		for i := range 3 {
			id, _, err := tx.UpsertContact(ContactInput{Email: fmt.Sprintf("p%d@example.com", i)})
			if err != nil {
				return err
			}
			if err := tx.AppendEvent(&Event{ContactID: id, Channel: ChannelEmail, Action: ActionGranted, Method: "test",
				Evidence: map[string]string{"ip": "198.51.100.1"}}); err != nil {
				return err
			}
			if err := tx.AppendEvent(&Event{ContactID: id, Channel: ChannelWhatsApp, Action: ActionConfirmed, Method: "test",
				IP: "203.0.113.9", UserAgent: "Mozilla/5.0", StatementVersion: "v1", StatementSHA256: StatementHash("I agree")}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLedgerRefusesUpdatesAndDeletes(t *testing.T) {
	st := MustOpen(t)
	seedLedger(t, st)
	for _, q := range []string{
		`DELETE FROM consent_events WHERE id = 2`,
		`UPDATE consent_events SET action = 'withdrawn' WHERE id = 2`,
		`UPDATE consent_events SET hash = 'x', redacted = 1 WHERE id = 2`,
	} {
		_, err := st.write.Exec(q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only trigger to refuse it", q, err)
		}
	}
	mustVerify(t, st)
}

func TestVerifyDetectsTampering(t *testing.T) {
	cases := []struct {
		name   string
		sql    []string
		badID  int64
		reason string
	}{
		{"edit an action", []string{`UPDATE consent_events SET action = 'declined' WHERE id = 4`}, 4, "edited"},
		{"edit evidence", []string{`UPDATE consent_events SET ip = '192.0.2.1' WHERE id = 2`}, 2, "edited"},
		{"edit and rehash", []string{`UPDATE consent_events SET at = '2020-01-01T00:00:00.000000Z', digest = 'abc' WHERE id = 3`}, 3, "edited"},
		{"delete a middle event", []string{`DELETE FROM consent_events WHERE id = 3`}, 3, "missing"},
		{"delete the newest event", []string{`DELETE FROM consent_events WHERE id = 6`}, 6, "newest events were deleted"},
		{"reorder two events", []string{
			`UPDATE consent_events SET id = 100 WHERE id = 2`,
			`UPDATE consent_events SET id = 2 WHERE id = 3`,
			`UPDATE consent_events SET id = 3 WHERE id = 100`}, 2, "does not link"},
		{"rewrite the current state", []string{`UPDATE consent_current SET action = 'confirmed' WHERE channel = 'email' AND contact_id = 1`}, 1, "current consent state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := MustOpen(t)
			seedLedger(t, st)
			mustVerify(t, st)
			// An attacker with the file drops the guards first.
			for _, q := range append([]string{`DROP TRIGGER consent_events_no_delete`, `DROP TRIGGER consent_events_redact_only`}, tc.sql...) {
				if _, err := st.write.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			res, err := st.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.OK {
				t.Fatalf("verify passed after tampering: %+v", res)
			}
			if res.BadID != tc.badID || !strings.Contains(res.Problem, tc.reason) {
				t.Errorf("bad event %d (%q), want %d with %q", res.BadID, res.Problem, tc.badID, tc.reason)
			}
		})
	}
}

func TestForgetKeepsChainAndBlocksReimport(t *testing.T) {
	st := MustOpen(t)
	seedLedger(t, st)
	ctx := context.Background()
	if err := st.Update(ctx, func(tx *Tx) error {
		return tx.SetPhone(1, "+4915112345678", "0151 12345678")
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Forget(ctx, "P0@example.com"); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, st)
	// No table holds the address, phone or evidence in clear.
	for _, q := range []string{
		`SELECT count(*) FROM contacts WHERE email LIKE '%p0@%' OR phone_e164 <> '' AND id = 1 OR phone_raw <> '' AND id = 1`,
		`SELECT count(*) FROM consent_events WHERE contact_id = 1 AND (ip <> '' OR user_agent <> '' OR evidence <> '{}')`,
	} {
		var n int
		if err := st.read.QueryRow(q).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s = %d (%v), want 0", q, n, err)
		}
	}
	c, err := st.ContactByEmail(ctx, "p0@example.com")
	if err != nil || !c.Erased || c.Email != "" {
		t.Fatalf("erased contact = %+v, %v", c, err)
	}
	// A re-import does not bring the person back.
	err = st.Update(ctx, func(tx *Tx) error {
		_, _, err := tx.UpsertContact(ContactInput{Email: "p0@example.com", FirstName: "Again"})
		return err
	})
	if err != ErrErased {
		t.Fatalf("upsert of an erased address: %v, want ErrErased", err)
	}
	var eligible int
	st.read.QueryRow(`SELECT count(*) FROM invite_eligible WHERE contact_id = 1`).Scan(&eligible)
	if eligible != 0 {
		t.Error("an erased contact is eligible for invitations")
	}
}

func TestStatementsAreImmutablePerVersion(t *testing.T) {
	st := MustOpen(t)
	ctx := context.Background()
	err := st.Update(ctx, func(tx *Tx) error {
		if _, err := tx.SaveStatement(Statement{Channel: ChannelWhatsApp, Version: "v1", Language: "en", Text: "I agree."}); err != nil {
			return err
		}
		_, err := tx.SaveStatement(Statement{Channel: ChannelWhatsApp, Version: "v1", Language: "en", Text: "I agree."})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(ctx, func(tx *Tx) error {
		_, err := tx.SaveStatement(Statement{Channel: ChannelWhatsApp, Version: "v1", Language: "en", Text: "I agree!"})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "new version") {
		t.Fatalf("changed wording under the same version: %v", err)
	}
	s, err := st.StatementFor(ctx, ChannelWhatsApp, "v1", "de")
	if err != nil || s.Text != "I agree." || s.SHA256 != StatementHash("I agree.") {
		t.Fatalf("StatementFor fallback = %+v, %v", s, err)
	}
}

func TestNormalizeEmail(t *testing.T) {
	good := map[string]string{" Ola@Example.COM ": "ola@example.com", "<a.b+tag@sub.example.org>": "a.b+tag@sub.example.org"}
	for in, want := range good {
		if got, err := NormalizeEmail(in); err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "no-at", "@example.com", "a@", "a b@example.com", "a@localhost", "a..b@example.com", "a@ex..com", "Name <a@example.com>"} {
		if got, err := NormalizeEmail(bad); err == nil {
			t.Errorf("NormalizeEmail(%q) = %q, want an error", bad, got)
		}
	}
}
