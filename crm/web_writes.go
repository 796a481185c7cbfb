package crm

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

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

// preparedCanonical is an event's canonical form (canonicalWith) cut
// around what AppendEvent fills in: {"id":<id> mid ,"at":"<at>",
// "recorded_at":"<recorded>", tail. Times are formatted by FormatTime and
// ids are integers, so neither needs JSON escaping and the joined bytes
// are exactly what canonicalWith would produce.
type preparedCanonical struct {
	mid, tail []byte
}

// PrepareDigest encodes, before the event is queued for the one writer,
// everything its digest covers except the id and the times that
// AppendEvent assigns. Encoding the canonical form through encoding/json
// (reflection over fourteen fields) was ~8 us of the confirmation
// writer's time per event; joining the prepared parts costs well under
// one. The event's fields must not change afterwards (AppendEvent sets
// only ID, At when zero, RecordedAt and the hashes). It also encodes the
// evidence (EncodeEvidence).
func (e *Event) PrepareDigest() {
	if e.encodedEvidence == nil {
		e.EncodeEvidence()
	}
	probe := *e
	probe.ID, probe.At, probe.RecordedAt = 0, time.Time{}, time.Time{}
	b := canonicalWith(&probe, probe.encodedEvidence)
	const head = `{"id":0`
	zero := FormatTime(time.Time{})
	marker := `,"at":"` + zero + `","recorded_at":"` + zero + `",`
	i := bytes.Index(b, []byte(marker))
	if !bytes.HasPrefix(b, []byte(head)) || i < 0 {
		return // not the expected shape: AppendEvent encodes it itself
	}
	e.canonical = &preparedCanonical{
		mid:  bytes.Clone(b[len(head):i]),
		tail: bytes.Clone(b[i+len(marker):]),
	}
}

// build is the canonical form of e with its id and times.
func (p *preparedCanonical) build(e *Event) []byte {
	b := make([]byte, 0, len(p.mid)+len(p.tail)+96)
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, e.ID, 10)
	b = append(b, p.mid...)
	b = append(b, `,"at":"`...)
	b = e.At.UTC().AppendFormat(b, TimeLayout)
	b = append(b, `","recorded_at":"`...)
	b = e.RecordedAt.UTC().AppendFormat(b, TimeLayout)
	b = append(b, `",`...)
	return append(b, p.tail...)
}
