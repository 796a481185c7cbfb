package invite

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/repermit/repermit/crm"
)

// FlagRefresh flags for the refresh campaign every contact whose current
// WhatsApp consent is a confirmation older than confirmedBefore and not yet
// flagged. Flagged contacts become eligible for that campaign only (see the
// view invite_eligible) while they stay in segments; their deadline is the
// campaign's invitation expiry from now. It returns how many were flagged.
func FlagRefresh(ctx context.Context, st *crm.Store, campaign string, confirmedBefore time.Time) (int, error) {
	c, err := LoadCampaign(ctx, st, campaign)
	if err != nil {
		return 0, err
	}
	if !c.Settings.Refresh {
		return 0, fmt.Errorf("campaign %q: %w", campaign, ErrNotRefresh)
	}
	var n int64
	err = st.Update(ctx, func(tx *crm.Tx) error {
		// INSERT OR REPLACE: a contact refreshed two years ago is flagged
		// again for this cycle's confirmation.
		res, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO consent_refresh (contact_id, event_id, campaign_id, deadline, created_at)
			SELECT w.contact_id, w.event_id, ?, ?, ?
			FROM consent_current w
			JOIN contacts c ON c.id = w.contact_id AND c.erased_at IS NULL
			WHERE w.channel = 'whatsapp' AND w.action = 'confirmed' AND w.at < ?
			  AND NOT EXISTS (SELECT 1 FROM consent_refresh r WHERE r.contact_id = w.contact_id AND r.event_id = w.event_id)`,
			c.ID, crm.FormatTime(tx.Now.Add(c.Expiry)), crm.FormatTime(tx.Now), crm.FormatTime(confirmedBefore))
		if err != nil {
			return fmt.Errorf("flag consents for refresh: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// CountRefreshDue counts the contacts FlagRefresh would flag for
// confirmedBefore, so that a run creates a refresh campaign only when
// somebody is due.
func CountRefreshDue(ctx context.Context, st *crm.Store, confirmedBefore time.Time) (int, error) {
	var n int
	err := st.DB().QueryRowContext(ctx, `SELECT count(*) FROM consent_current w
		JOIN contacts c ON c.id = w.contact_id AND c.erased_at IS NULL
		WHERE w.channel = 'whatsapp' AND w.action = 'confirmed' AND w.at < ?
		  AND NOT EXISTS (SELECT 1 FROM consent_refresh r WHERE r.contact_id = w.contact_id AND r.event_id = w.event_id)`,
		crm.FormatTime(confirmedBefore)).Scan(&n)
	return n, err
}

// ExpireRefresh records WhatsApp consent `expired` for every flagged contact
// whose deadline has passed without a new confirmation (their current
// WhatsApp state is still the flagged confirmation), so they leave every
// segment. It returns how many consents expired.
func ExpireRefresh(ctx context.Context, st *crm.Store) (int, error) {
	n := 0
	err := st.Update(ctx, func(tx *crm.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT r.contact_id, r.event_id, r.deadline, cp.name
			FROM consent_refresh r
			JOIN consent_current w ON w.contact_id = r.contact_id AND w.channel = 'whatsapp'
			     AND w.event_id = r.event_id AND w.action = 'confirmed'
			JOIN campaigns cp ON cp.id = r.campaign_id
			WHERE r.deadline <= ? ORDER BY r.contact_id`, crm.FormatTime(tx.Now))
		if err != nil {
			return err
		}
		type due struct {
			contact, event  int64
			deadline, cname string
		}
		var all []due
		for rows.Next() {
			var d due
			if err := rows.Scan(&d.contact, &d.event, &d.deadline, &d.cname); err != nil {
				rows.Close()
				return err
			}
			all = append(all, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range all {
			err := tx.AppendEvent(&crm.Event{ContactID: d.contact, Channel: crm.ChannelWhatsApp, Action: crm.ActionExpired,
				Method: "refresh:expired", Campaign: d.cname,
				Evidence: map[string]string{"refreshed_event": strconv.FormatInt(d.event, 10), "deadline": d.deadline}})
			if err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// ErrNotRefresh is returned when a refresh step names an ordinary campaign.
var ErrNotRefresh = errors.New("not a refresh campaign")
