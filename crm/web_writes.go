package crm

import (
	"slices"
	"strconv"
	"strings"
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
	now := tx.NowText()
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

// NowText is FormatTime(tx.Now), formatted once per value of Now: a
// confirmation writes the time five times (its answer, its interests, its
// event's two times and the current state), and formatting it each time
// was ~7 µs of the group commit writer's CPU per confirmation.
func (tx *Tx) NowText() string {
	if tx.nowText == "" || !tx.nowTextOf.Equal(tx.Now) {
		tx.nowTextOf, tx.nowText = tx.Now, FormatTime(tx.Now)
	}
	return tx.nowText
}

// EncodeEvidence encodes e.Evidence now, as AppendEvent would, so that a
// caller can do it before it queues for the one writer (the confirmation
// page does, off the writer's path). Evidence must not change afterwards.
func (e *Event) EncodeEvidence() { e.encodedEvidence = appendEvidence(nil, e.Evidence) }

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
// AppendEvent assigns. The event's fields must not change afterwards
// (AppendEvent sets only ID, At when zero, RecordedAt and the hashes). It
// also encodes the evidence (EncodeEvidence).
//
// It writes canonicalWith's fields in canonicalWith's order itself
// instead of through encoding/json, whose reflection over the fourteen
// fields (and the evidence map) cost ~19 µs of the confirmation handler's
// CPU. Strings go through appendJSONString (import_write.go), which writes
// the same bytes as encoding/json (TestPreparedDigestIsTheCanonicalForm).
func (e *Event) PrepareDigest() {
	if e.encodedEvidence == nil {
		e.EncodeEvidence()
	}
	mid := make([]byte, 0, 64)
	mid = append(mid, `,"contact_id":`...)
	mid = strconv.AppendInt(mid, e.ContactID, 10)
	mid = append(mid, `,"channel":`...)
	mid = appendJSONString(mid, e.Channel)
	mid = append(mid, `,"action":`...)
	mid = appendJSONString(mid, e.Action)
	tail := make([]byte, 0, 256+len(e.UserAgent)+len(e.encodedEvidence))
	tail = append(tail, `"method":`...)
	tail = appendJSONString(tail, e.Method)
	tail = append(tail, `,"ip":`...)
	tail = appendJSONString(tail, e.IP)
	tail = append(tail, `,"user_agent":`...)
	tail = appendJSONString(tail, e.UserAgent)
	tail = append(tail, `,"campaign":`...)
	tail = appendJSONString(tail, e.Campaign)
	tail = append(tail, `,"invitation_id":`...)
	tail = strconv.AppendInt(tail, e.InvitationID, 10)
	tail = append(tail, `,"evidence":`...)
	// encoding/json compacts (and HTML-escapes) a RawMessage; the
	// evidence comes from json.Marshal or appendEvidence, both already so.
	tail = append(tail, e.encodedEvidence...)
	tail = append(tail, `,"statement_version":`...)
	tail = appendJSONString(tail, e.StatementVersion)
	tail = append(tail, `,"statement_sha256":`...)
	tail = appendJSONString(tail, e.StatementSHA256)
	tail = append(tail, '}')
	e.canonical = &preparedCanonical{mid: mid, tail: tail}
}

// appendEvidence appends evidenceJSON(ev): an object with sorted keys, {}
// when empty.
func appendEvidence(b []byte, ev map[string]string) []byte {
	if len(ev) == 0 {
		return append(b, "{}"...)
	}
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, ev[k])
	}
	return append(b, '}')
}

// build is the canonical form of e with its id and its times, at and
// recorded (formatted by FormatTime).
func (p *preparedCanonical) build(e *Event, at, recorded string) []byte {
	b := make([]byte, 0, len(p.mid)+len(p.tail)+96)
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, e.ID, 10)
	b = append(b, p.mid...)
	b = append(b, `,"at":"`...)
	b = append(b, at...)
	b = append(b, `","recorded_at":"`...)
	b = append(b, recorded...)
	b = append(b, `",`...)
	return append(b, p.tail...)
}
