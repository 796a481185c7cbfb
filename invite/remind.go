package invite

import (
	"context"

	"github.com/repermit/repermit/crm"
)

// RemindResult is the summary of campaign remind.
type RemindResult struct {
	Due     int `json:"due"`
	Sent    int `json:"sent"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// Remind sends the campaign's reminders that are due: to invitations sent
// at least the policy's delay ago (since the invitation or the previous
// reminder), fewer than the policy's count reminded, not answered
// (confirmed, declined, unsubscribed), not expired, and whose contact is
// still eligible (invite_eligible is checked again when the reminder is
// claimed: whoever opted out since gets nothing). A reminder carries the
// invitation's own token, so all its links stay the same.
func Remind(ctx context.Context, st *crm.Store, o SendOptions) (RemindResult, error) {
	var out RemindResult
	if err := o.defaults(); err != nil {
		return out, err
	}
	c, err := LoadCampaign(ctx, st, o.Campaign)
	if err != nil {
		return out, err
	}
	r, err := NewRenderer(&c, o.Identity)
	if err != nil {
		return out, err
	}
	unlock, err := lockSender(st)
	if err != nil {
		return out, err
	}
	defer unlock()
	defer limitCache(ctx, st)()
	if err := recoverInFlight(ctx, st); err != nil {
		return out, err
	}
	if _, err := Expire(ctx, st, c.Name); err != nil {
		return out, err
	}
	if c.ReminderCount > 0 {
		err = st.Update(ctx, func(tx *crm.Tx) error {
			due := crm.FormatTime(tx.Now.Add(-c.ReminderAfter))
			_, err := tx.Exec(`UPDATE invitations SET reminder_status = 'queued'
				WHERE campaign_id = ? AND status = 'sent' AND response = '' AND expired_at = '' AND reminder_status = ''
				  AND expires_at > ? AND reminders_sent < ?
				  AND max(sent_at, last_reminder_at) <= ?
				  AND EXISTS (SELECT 1 FROM invite_eligible e WHERE e.contact_id = invitations.contact_id AND e.refresh_campaign_id IS ?)`,
				c.ID, crm.FormatTime(tx.Now), c.ReminderCount, due, c.audience())
			return err
		})
		if err != nil {
			return out, err
		}
	}
	// A reminder queued by an earlier run (one that stopped or was
	// interrupted) whose contact has answered, expired or is no longer
	// eligible will never be claimed: clear it, or it would count as due
	// on every run. Should the contact become eligible again, the policy
	// above queues it anew.
	err = st.Update(ctx, func(tx *crm.Tx) error {
		_, err := tx.Exec(`UPDATE invitations SET reminder_status = ''
			WHERE campaign_id = ? AND reminder_status = 'queued'
			  AND (response <> '' OR expired_at <> '' OR status <> 'sent'
			       OR NOT EXISTS (SELECT 1 FROM invite_eligible e WHERE e.contact_id = invitations.contact_id AND e.refresh_campaign_id IS ?))`,
			c.ID, c.audience())
		return err
	})
	if err != nil {
		return out, err
	}
	if out.Due, err = countQueued(ctx, st, c.ID, true); err != nil {
		return out, err
	}
	total := out.Due
	if o.Limit > 0 {
		total = min(total, o.Limit)
	}
	var res SendResult
	err = runPipeline(ctx, st, &c, r, o, true, nil, total, &res)
	out.Sent, out.Failed, out.Skipped = res.Sent, res.Failed, res.Skipped
	return out, err
}
