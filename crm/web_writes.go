package crm

import "strings"

// SetInterestsOneInsert is SetInterests in two statements whatever the
// number of interests (a DELETE and one multi-row INSERT), for the
// confirmation page's group-commit writer, where every statement is a cgo
// round trip on the one writer connection that bounds throughput. The
// result is the same as SetInterests.
//
// The DELETE runs only when the contact has interests: a first answer has
// none, and SQLite runs that DELETE through a temporary table that costs
// more than the lookup. A caller that already knows, in this transaction,
// that the contact has none says so with none, which saves the lookup too.
func (tx *Tx) SetInterestsOneInsert(contactID int64, interests []string, none bool) error {
	has := 0
	if !none {
		err := tx.row(`SELECT count(*) FROM (SELECT 1 FROM contact_interests WHERE contact_id = ? LIMIT 1)`, contactID).Scan(&has)
		if err != nil {
			return err
		}
	}
	if has > 0 {
		if _, err := tx.exec(`DELETE FROM contact_interests WHERE contact_id = ?`, contactID); err != nil {
			return err
		}
	}
	if len(interests) == 0 {
		return nil
	}
	now := FormatTime(tx.Now)
	var q strings.Builder
	q.WriteString(`INSERT OR IGNORE INTO contact_interests (contact_id, interest, set_at) VALUES `)
	args := make([]any, 0, 3*len(interests))
	for i, in := range interests {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?)")
		args = append(args, contactID, in, now)
	}
	// The statement text depends only on the count, so the transaction's
	// cache holds one statement per count seen.
	_, err := tx.exec(q.String(), args...)
	return err
}

// EncodeEvidence encodes e.Evidence now, as AppendEvent would, so that a
// caller can do it before it queues for the one writer (the confirmation
// page does, off the writer's path). Evidence must not change afterwards.
func (e *Event) EncodeEvidence() { e.encodedEvidence = evidenceJSON(e.Evidence) }
