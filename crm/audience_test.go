package crm

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// audienceIDs lists the contacts in whatsapp_audience (what segments read).
func audienceIDs(t *testing.T, st *Store) string {
	t.Helper()
	var ids string
	if err := st.DB().QueryRow(`SELECT coalesce(group_concat(contact_id, ','), '') FROM (SELECT contact_id FROM whatsapp_audience ORDER BY contact_id)`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestAudienceFollowsEveryWrite walks one store through the writes that
// change who may be in a segment, including the ones no command makes
// today (a suppression lifted or edited by hand, a consent row deleted), and
// checks after each that the projection whatsapp_audience equals its
// definition (consent verify) and holds the expected people.
func TestAudienceFollowsEveryWrite(t *testing.T) {
	ctx := context.Background()
	st := MustOpen(t)
	ids := map[string]int64{}
	err := st.Update(ctx, func(tx *Tx) error {
		for i, name := range []string{"ann", "bob", "cem"} {
			id, _, err := tx.UpsertContact(ContactInput{Email: name + "@example.com", Phone: fmt.Sprintf("+4915112345%03d", i), FirstName: name})
			if err != nil {
				return err
			}
			ids[name] = id
			if err := tx.SetInterests(id, []string{"offers"}); err != nil {
				return err
			}
			if err := tx.AppendEvent(&Event{ContactID: id, Channel: ChannelWhatsApp, Action: ActionConfirmed, Method: "test",
				StatementVersion: "v1", StatementSHA256: StatementHash("I agree.")}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	step := func(what, sql, want string, args ...any) {
		t.Helper()
		if sql != "" {
			err := st.Update(ctx, func(tx *Tx) error {
				_, err := tx.Exec(sql, args...)
				return err
			})
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		mustVerify(t, st)
		if got := audienceIDs(t, st); got != want {
			t.Fatalf("%s: audience %q, want %q", what, got, want)
		}
	}
	a, b, c := ids["ann"], ids["bob"], ids["cem"]
	all := fmt.Sprintf("%d,%d,%d", a, b, c)
	step("three confirmed", "", all)

	var bobPhoneHash string
	st.DB().QueryRow(`SELECT phone_hash FROM contacts WHERE id = ?`, b).Scan(&bobPhoneHash)
	step("STOP from bob's number", `INSERT INTO suppressions (phone_hash, channel, reason, at) VALUES (?, 'whatsapp', 'whatsapp-stop', '2026-11-01T12:00:00.000000Z')`,
		fmt.Sprintf("%d,%d", a, c), bobPhoneHash)
	step("the STOP lifted by hand", `DELETE FROM suppressions WHERE phone_hash = ?`, all, bobPhoneHash)
	step("an email-only suppression changed to all", `INSERT INTO suppressions (email_hash, channel, reason, at) VALUES (?, 'email', 'unsubscribed', '2026-11-01T12:00:00.000000Z')`,
		all, st.HashEmail("cem@example.com"))
	step("… then widened to every channel", `UPDATE suppressions SET channel = 'all'`, fmt.Sprintf("%d,%d", a, b))
	step("a bad phone", `UPDATE contacts SET phone_e164 = '+49 151' WHERE id = ?`, fmt.Sprintf("%d", b), a)
	step("a good phone again", `UPDATE contacts SET phone_e164 = '+4915199999999' WHERE id = ?`, fmt.Sprintf("%d,%d", a, b), a)
	step("new interests", `DELETE FROM contact_interests WHERE contact_id = ?`, fmt.Sprintf("%d,%d", a, b), a)
	var interests string
	st.DB().QueryRow(`SELECT interests FROM whatsapp_audience WHERE contact_id = ?`, a).Scan(&interests)
	if interests != "" {
		t.Fatalf("interests after removing them: %q", interests)
	}
	step("the consent row deleted by hand", `DELETE FROM consent_current WHERE contact_id = ?`, fmt.Sprintf("%d", a), b)

	// A hand edit of the projection itself is what verify must catch.
	err = st.Update(ctx, func(tx *Tx) error {
		_, err := tx.Exec(`UPDATE whatsapp_audience SET country = 'XX' WHERE contact_id = ?`, a)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || !strings.Contains(res.Problem, fmt.Sprintf("contact %d", a)) {
		t.Fatalf("verify after a hand edit of whatsapp_audience: %+v", res)
	}
}
