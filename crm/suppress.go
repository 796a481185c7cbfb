package crm

import (
	"context"
	"fmt"
	"time"
)

// Suppression reasons.
const (
	ReasonUnsubscribed = "unsubscribed"
	ReasonBounced      = "bounced"
	ReasonComplained   = "complained"
	ReasonBlocklisted  = "blocklisted"
	ReasonErased       = "erased"
	ReasonStop         = "whatsapp-stop"
)

// SuppressionChannel says which channels a reason stops: an email
// unsubscribe or bounce stops email only; a complaint or an erasure stops
// everything; a WhatsApp STOP stops WhatsApp.
func SuppressionChannel(reason string) (string, error) {
	switch reason {
	case ReasonUnsubscribed, ReasonBounced, ReasonBlocklisted:
		return ChannelEmail, nil
	case ReasonComplained, ReasonErased:
		return "all", nil
	case ReasonStop:
		return ChannelWhatsApp, nil
	}
	return "", fmt.Errorf("unknown suppression reason %q (use unsubscribed, bounced or complained)", reason)
}

// Suppression is one entry of the suppression list.
type Suppression struct {
	Channel string    `json:"channel"`
	Reason  string    `json:"reason"`
	Source  string    `json:"source,omitempty"`
	At      time.Time `json:"at"`
}

// SuppressEmail adds a normalised address to the suppression list. It
// reports whether the entry is new (suppressing twice is harmless). When
// the contact exists and the reason is an opt-out by the person, its email
// consent is withdrawn in the ledger too.
func (tx *Tx) SuppressEmail(email, reason, source string) (bool, error) {
	return tx.suppress(tx.store.HashEmail(email), "", reason, source)
}

// SuppressPhone adds an E.164 number to the suppression list.
func (tx *Tx) SuppressPhone(e164, reason, source string) (bool, error) {
	return tx.suppress("", tx.store.HashPhone(e164), reason, source)
}

func (tx *Tx) suppress(emailHash, phoneHash, reason, source string) (bool, error) {
	ch, err := SuppressionChannel(reason)
	if err != nil {
		return false, err
	}
	res, err := tx.exec(`INSERT OR IGNORE INTO suppressions (email_hash, phone_hash, channel, reason, source, at)
		VALUES (?, ?, ?, ?, ?, ?)`, emailHash, phoneHash, ch, reason, source, FormatTime(tx.Now))
	if err != nil {
		return false, fmt.Errorf("suppress: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// Suppressions lists the entries that apply to a contact (by its email and
// phone hashes).
func (s *Store) Suppressions(ctx context.Context, c Contact) ([]Suppression, error) {
	emailHash := ""
	if err := s.read.QueryRowContext(ctx, `SELECT email_hash FROM contacts WHERE id = ?`, c.ID).Scan(&emailHash); err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx, `SELECT channel, reason, source, at FROM suppressions
		WHERE email_hash = ? OR (phone_hash <> '' AND phone_hash = ?) ORDER BY id`, emailHash, s.HashPhone(c.Phone))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Suppression
	for rows.Next() {
		var sp Suppression
		var at string
		if err := rows.Scan(&sp.Channel, &sp.Reason, &sp.Source, &at); err != nil {
			return nil, err
		}
		sp.At, _ = ParseTime(at)
		out = append(out, sp)
	}
	return out, rows.Err()
}

// Suppress is the suppress command: it suppresses a list of addresses for a
// reason and, for people who exist as contacts, withdraws their email
// consent when the reason is their own opt-out (unsubscribe, complaint).
// It returns how many entries were new.
func (s *Store) Suppress(ctx context.Context, emails []string, reason, source string) (int, error) {
	if _, err := SuppressionChannel(reason); err != nil {
		return 0, err
	}
	added := 0
	err := s.Update(ctx, func(tx *Tx) error {
		for _, raw := range emails {
			email, err := NormalizeEmail(raw)
			if err != nil {
				return fmt.Errorf("%q: %w", raw, err)
			}
			isNew, err := tx.SuppressEmail(email, reason, source)
			if err != nil {
				return err
			}
			if isNew {
				added++
			}
			if reason != ReasonUnsubscribed && reason != ReasonComplained {
				continue
			}
			var id int64
			err = tx.row(`SELECT id FROM contacts WHERE email_hash = ? AND erased_at IS NULL`, tx.store.HashEmail(email)).Scan(&id)
			if err != nil {
				continue // not a contact: the suppression entry is enough
			}
			if err := tx.withdrawEmail(id, source); err != nil {
				return err
			}
		}
		return nil
	})
	return added, err
}

// withdrawEmail records email consent withdrawn unless it already is.
func (tx *Tx) withdrawEmail(contactID int64, method string) error {
	cur, err := tx.CurrentConsent(contactID, ChannelEmail)
	if err != nil {
		return err
	}
	if cur.Action == ActionWithdrawn {
		return nil
	}
	return tx.AppendEvent(&Event{ContactID: contactID, Channel: ChannelEmail, Action: ActionWithdrawn, Method: method})
}

// Forget erases a contact's personal data: email, names, phone, attributes,
// tags and the personal evidence of its consent events are removed; salted
// hashes of the email and phone stay on the suppression list so that a later
// import cannot bring the person back; the ledger keeps verifying.
func (s *Store) Forget(ctx context.Context, email string) error {
	norm, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	return s.Update(ctx, func(tx *Tx) error {
		var id int64
		var phone string
		var erased bool
		err := tx.QueryRow(`SELECT id, phone_e164, erased_at IS NOT NULL FROM contacts WHERE email_hash = ?`,
			tx.store.HashEmail(norm)).Scan(&id, &phone, &erased)
		if err != nil {
			return fmt.Errorf("contact %s: %w", email, ErrNotFound)
		}
		if erased {
			return nil
		}
		if _, err := tx.SuppressEmail(norm, ReasonErased, "contacts-forget"); err != nil {
			return err
		}
		if phone != "" {
			if _, err := tx.SuppressPhone(phone, ReasonErased, "contacts-forget"); err != nil {
				return err
			}
		}
		if err := tx.redactEvents(id); err != nil {
			return err
		}
		if _, err := tx.exec(`DELETE FROM contact_interests WHERE contact_id = ?`, id); err != nil {
			return err
		}
		_, err = tx.exec(`UPDATE contacts SET email = NULL, first_name = '', last_name = '', phone_e164 = '', phone_raw = '',
			country = '', language = '', tags = '[]', attributes = '{}', external_id = '', updated_at = ?, erased_at = ?
			WHERE id = ?`, FormatTime(tx.Now), FormatTime(tx.Now), id)
		if err != nil {
			return err
		}
		// Visit logs hold user agents of the person's pages.
		_, err = tx.exec(`UPDATE visits SET user_agent = '' WHERE invitation_id IN
			(SELECT id FROM invitations WHERE contact_id = ?)`, id)
		return err
	})
}
