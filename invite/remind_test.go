package invite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/repermit/repermit/crm"
)

// A reminder left queued by a run that stopped (the server was down) is
// cleared once its contact opts out: it is neither sent nor counted as due
// on every later run.
func TestQueuedReminderOfContactGoneIneligibleIsCleared(t *testing.T) {
	ctx := context.Background()
	st := mustOpen(t)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	st.Now = func() time.Time { return now }
	seed(t, st, seedContact{Email: "stays@example.org"}, seedContact{Email: "leaves@example.org"})
	testCampaign(t, st, "rem")
	ms := startServer(t)
	opts := SendOptions{Campaign: "rem", Identity: testIdentity(), Transport: smtpTransport(t, ms),
		RetryBase: time.Millisecond, MaxConsecutiveFailures: 2}
	if res, err := Send(ctx, st, opts); err != nil || res.Sent != 2 {
		t.Fatalf("send %+v %v", res, err)
	}

	// Reminders fall due while the server is down: the run stops with both
	// still queued.
	now = now.Add(8 * 24 * time.Hour)
	ms.setFault(func(stage, rcpt string) error {
		if stage == "connect" {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "down"}
		}
		return nil
	})
	if _, err := Remind(ctx, st, opts); !errors.Is(err, ErrTooManyFailures) {
		t.Fatalf("remind with the server down: %v", err)
	}
	reminderStatus := func(email string) string {
		var s string
		st.DB().QueryRow(`SELECT i.reminder_status FROM invitations i JOIN contacts c ON c.id = i.contact_id WHERE c.email = ?`, email).Scan(&s)
		return s
	}
	if reminderStatus("leaves@example.org") != "queued" {
		t.Fatalf("reminder status %q, want queued", reminderStatus("leaves@example.org"))
	}

	// One unsubscribes meanwhile; the server comes back.
	if _, err := st.Suppress(ctx, []string{"leaves@example.org"}, crm.ReasonUnsubscribed, "one-click-unsubscribe"); err != nil {
		t.Fatal(err)
	}
	ms.setFault(nil)
	before := len(ms.messages())
	r, err := Remind(ctx, st, opts)
	if err != nil || r.Due != 1 || r.Sent != 1 || r.Skipped != 0 {
		t.Fatalf("remind %+v %v, want 1 due and sent", r, err)
	}
	if got := ms.messages()[before:]; len(got) != 1 || got[0].To != "stays@example.org" {
		t.Fatalf("reminders went to %v", got)
	}
	if s := reminderStatus("leaves@example.org"); s != "" {
		t.Errorf("the opted-out contact's reminder is still %q", s)
	}
	if r, err := Remind(ctx, st, opts); err != nil || r.Due != 0 {
		t.Fatalf("a later remind: %+v %v, want nothing due", r, err)
	}
}
