package web

import (
	"fmt"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite"
)

// SeedSentInvitations adds n contacts, each with a phone, granted email
// consent and a sent invitation of campaign valid until expires, and
// returns their tokens. Benchmarks of this package and of web_test share
// it.
func SeedSentInvitations(tx *crm.Tx, campaign int64, n int, expires string) ([]string, error) {
	tokens := make([]string, n)
	for i := range tokens {
		id, _, err := tx.UpsertContact(crm.ContactInput{Email: fmt.Sprintf("p%d@example.com", i), Phone: "+4915123456678", Country: "DE"})
		if err != nil {
			return nil, err
		}
		if err := tx.AppendEvent(&crm.Event{ContactID: id, Channel: "email", Action: "granted", Method: "import:bench"}); err != nil {
			return nil, err
		}
		token, hash := invite.NewToken()
		tokens[i] = token
		if _, err := tx.Exec(`INSERT INTO invitations (campaign_id, contact_id, token_hash, status, expires_at, created_at)
			VALUES (?, ?, ?, 'sent', ?, ?)`, campaign, id, hash, expires, crm.FormatTime(tx.Now)); err != nil {
			return nil, err
		}
	}
	return tokens, nil
}
