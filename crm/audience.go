package crm

import (
	"context"
	"database/sql"
	"errors"
)

// verifyAudience checks the projection whatsapp_audience (kept by the
// triggers of migration 0008) against its definition, the view
// whatsapp_audience_rows over the ledger's current state, the contacts and
// the suppression list. A difference means someone wrote to the table by
// hand or a trigger is missing: segments would then export the wrong
// people. It returns the first contact whose row differs, or 0.
func verifyAudience(ctx context.Context, q *sql.DB) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, `
		SELECT contact_id FROM (SELECT * FROM whatsapp_audience EXCEPT SELECT * FROM whatsapp_audience_rows)
		UNION ALL
		SELECT contact_id FROM (SELECT * FROM whatsapp_audience_rows EXCEPT SELECT * FROM whatsapp_audience)
		ORDER BY 1 LIMIT 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}
