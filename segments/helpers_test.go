package segments

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
)

// testNow is the store clock of the tests.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// mustOpen opens a fresh store file under tb.TempDir() with its clock at
// testNow.
func mustOpen(tb testing.TB) *crm.Store {
	tb.Helper()
	st, err := crm.Open(context.Background(), filepath.Join(tb.TempDir(), "repermit.db"))
	if err != nil {
		tb.Fatal(err)
	}
	st.Now = func() time.Time { return testNow }
	tb.Cleanup(func() { st.Close() })
	return st
}

// person is a contact of a test ledger.
type person struct {
	crm.ContactInput
	Interests []string
}

// addPerson stores a contact with its interests and an email consent
// granted by import, and returns its id.
func addPerson(tb testing.TB, st *crm.Store, p person) int64 {
	tb.Helper()
	var id int64
	err := st.Update(context.Background(), func(tx *crm.Tx) error {
		var err error
		if id, _, err = tx.UpsertContact(p.ContactInput); err != nil {
			return err
		}
		if err := tx.AppendEvent(&crm.Event{ContactID: id, Channel: crm.ChannelEmail, Action: crm.ActionGranted,
			Method: "import:test", At: testNow.AddDate(-2, 0, 0)}); err != nil {
			return err
		}
		if len(p.Interests) > 0 {
			return tx.SetInterests(id, p.Interests)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// whatsapp appends a WhatsApp consent event as the confirmation page would.
func whatsapp(tb testing.TB, st *crm.Store, id int64, action string, at time.Time, campaign string) int64 {
	tb.Helper()
	e := &crm.Event{ContactID: id, Channel: crm.ChannelWhatsApp, Action: action, At: at, Method: "invite:confirm-page",
		Campaign: campaign, StatementVersion: "whatsapp-v1", StatementSHA256: crm.StatementHash("I agree to WhatsApp messages."),
		IP: "192.0.2.1", UserAgent: "test"}
	if err := st.Update(context.Background(), func(tx *crm.Tx) error { return tx.AppendEvent(e) }); err != nil {
		tb.Fatal(err)
	}
	return e.ID
}

func mustCount(tb testing.TB, st *crm.Store, rule string) int64 {
	tb.Helper()
	n, err := Count(context.Background(), st, MustParse(rule))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
