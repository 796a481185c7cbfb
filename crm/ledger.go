package crm

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Channels and actions of the consent ledger.
const (
	ChannelEmail    = "email"
	ChannelWhatsApp = "whatsapp"
	ChannelSMS      = "sms"

	ActionGranted   = "granted"
	ActionConfirmed = "confirmed"
	ActionDeclined  = "declined"
	ActionWithdrawn = "withdrawn"
	ActionExpired   = "expired"
	// StateNone is the current state of a channel with no events.
	StateNone = "none"
)

// Channels lists the channels in the order reports show them.
var Channels = []string{ChannelEmail, ChannelWhatsApp, ChannelSMS}

// Event is one entry of the consent ledger.
type Event struct {
	ID               int64             `json:"id"`
	ContactID        int64             `json:"contact_id"`
	Channel          string            `json:"channel"`
	Action           string            `json:"action"`
	At               time.Time         `json:"at"`          // when it happened (e.g. the export's opt-in time)
	RecordedAt       time.Time         `json:"recorded_at"` // when repermit recorded it
	Method           string            `json:"method"`      // e.g. import:mailchimp, invite:confirm-page
	IP               string            `json:"ip,omitempty"`
	UserAgent        string            `json:"user_agent,omitempty"`
	Campaign         string            `json:"campaign,omitempty"`
	InvitationID     int64             `json:"invitation_id,omitempty"`
	Evidence         map[string]string `json:"evidence,omitempty"`
	StatementVersion string            `json:"statement_version,omitempty"`
	StatementSHA256  string            `json:"statement_sha256,omitempty"`
	Digest           string            `json:"digest"`
	PrevHash         string            `json:"prev_hash"`
	Hash             string            `json:"hash"`
	Redacted         bool              `json:"redacted,omitempty"`

	// encodedEvidence, when set, is Evidence already encoded by
	// evidenceJSON (the importer's workers do it off the writer's path).
	encodedEvidence json.RawMessage
	// canonical, when set, is the event's canonical form but for what
	// AppendEvent decides (PrepareDigest; the confirmation page does it
	// off the writer's path).
	canonical *preparedCanonical
}

// genesisHash is the prev_hash of the first event.
var genesisHash = strings.Repeat("0", 64)

type chainHead struct {
	id    int64
	hash  string
	dirty bool
}

func (tx *Tx) loadHead() error {
	if tx.head != nil {
		return nil
	}
	h := &chainHead{hash: genesisHash}
	// Through the statement cache: the group commit loads the head once
	// per batch, and parsing the query each time was ~8 µs of the writer's
	// time per confirmation (batches of ~12).
	err := tx.row(`SELECT id, hash FROM consent_events ORDER BY id DESC LIMIT 1`).Scan(&h.id, &h.hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	tx.head = h
	return nil
}

func (tx *Tx) flushHead() error {
	if tx.head == nil || !tx.head.dirty {
		return nil
	}
	return tx.SetMeta("chain_head", strconv.FormatInt(tx.head.id, 10)+":"+tx.head.hash)
}

// canonical is the content an event's digest covers, in a fixed order.
func canonical(e *Event) []byte { return canonicalWith(e, evidenceJSON(e.Evidence)) }

// canonicalWith is canonical with the evidence already encoded.
func canonicalWith(e *Event, evidence json.RawMessage) []byte {
	type content struct {
		ID               int64           `json:"id"`
		ContactID        int64           `json:"contact_id"`
		Channel          string          `json:"channel"`
		Action           string          `json:"action"`
		At               string          `json:"at"`
		RecordedAt       string          `json:"recorded_at"`
		Method           string          `json:"method"`
		IP               string          `json:"ip"`
		UserAgent        string          `json:"user_agent"`
		Campaign         string          `json:"campaign"`
		InvitationID     int64           `json:"invitation_id"`
		Evidence         json.RawMessage `json:"evidence"` // encoding/json sorts map keys
		StatementVersion string          `json:"statement_version"`
		StatementSHA256  string          `json:"statement_sha256"`
	}
	b, _ := json.Marshal(content{e.ID, e.ContactID, e.Channel, e.Action, FormatTime(e.At), FormatTime(e.RecordedAt),
		e.Method, e.IP, e.UserAgent, e.Campaign, e.InvitationID, evidence, e.StatementVersion, e.StatementSHA256})
	return b
}

// evidenceJSON is the stored and hashed form of an event's evidence: a
// JSON object with sorted keys ({} when empty).
func evidenceJSON(ev map[string]string) json.RawMessage {
	if len(ev) == 0 {
		return json.RawMessage("{}")
	}
	b, _ := json.Marshal(ev) // encoding/json sorts map keys
	return b
}

func digestOf(e *Event) string {
	sum := sha256.Sum256(canonical(e))
	return hex.EncodeToString(sum[:])
}

func chainHash(prev, digest string) string {
	sum := sha256.Sum256([]byte(prev + "\n" + digest))
	return hex.EncodeToString(sum[:])
}

func validAction(a string) bool {
	switch a {
	case ActionGranted, ActionConfirmed, ActionDeclined, ActionWithdrawn, ActionExpired:
		return true
	}
	return false
}

// AppendEvent appends e to the ledger, filling ID, RecordedAt, Digest,
// PrevHash and Hash, and updates the current state of its channel. A zero At
// means "now".
func (tx *Tx) AppendEvent(e *Event) error {
	if e.ContactID == 0 || e.Method == "" {
		return errors.New("consent event needs a contact and a method")
	}
	switch e.Channel {
	case ChannelEmail, ChannelWhatsApp, ChannelSMS:
	default:
		return fmt.Errorf("unknown consent channel %q", e.Channel)
	}
	if !validAction(e.Action) {
		return fmt.Errorf("unknown consent action %q", e.Action)
	}
	if err := tx.loadHead(); err != nil {
		return err
	}
	if e.At.IsZero() {
		e.At = tx.Now
	}
	e.At = e.At.UTC()
	e.RecordedAt = tx.Now
	e.ID = tx.head.id + 1
	e.PrevHash = tx.head.hash
	// Both times are usually tx.Now, formatted once per transaction time.
	recorded, at := tx.NowText(), tx.NowText()
	if !e.At.Equal(tx.Now) {
		at = FormatTime(e.At)
	}
	ev := e.encodedEvidence
	if ev == nil {
		ev = evidenceJSON(e.Evidence)
	}
	var sum [sha256.Size]byte
	if e.canonical != nil {
		sum = sha256.Sum256(e.canonical.build(e, at, recorded))
	} else {
		sum = sha256.Sum256(canonicalWith(e, ev))
	}
	e.Digest = hex.EncodeToString(sum[:])
	e.Hash = chainHash(e.PrevHash, e.Digest)
	evidence := string(ev)
	vals := []any{e.ID, e.ContactID, e.Channel, e.Action, at, recorded, e.Method, e.IP,
		e.UserAgent, e.Campaign, e.InvitationID, evidence, e.StatementVersion, e.StatementSHA256, e.Digest,
		e.PrevHash, e.Hash}
	const insertEvent = `INSERT INTO consent_events (id, contact_id, channel, action, at, recorded_at, method, ip,
		user_agent, campaign, invitation_id, evidence, statement_version, statement_sha256, digest, prev_hash, hash)`
	const insertCurrent = `INSERT INTO consent_current (contact_id, channel, action, event_id, at)`
	const onConflict = `ON CONFLICT (contact_id, channel) DO UPDATE SET action = excluded.action, event_id = excluded.event_id, at = excluded.at`
	if tx.bulkMode {
		if err := tx.bulkAdd(tx.bulk(insertEvent, "", len(vals), rankEvents), vals...); err != nil {
			return fmt.Errorf("append consent event: %w", err)
		}
		if err := tx.bulkAdd(tx.bulk(insertCurrent, onConflict, 5, rankCurrent), e.ContactID, e.Channel, e.Action, e.ID, at); err != nil {
			return fmt.Errorf("update current consent: %w", err)
		}
	} else {
		if _, err := tx.exec(insertEvent+` VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, vals...); err != nil {
			return fmt.Errorf("append consent event: %w", err)
		}
		if _, err := tx.exec(insertCurrent+` VALUES (?, ?, ?, ?, ?) `+onConflict,
			e.ContactID, e.Channel, e.Action, e.ID, at); err != nil {
			return fmt.Errorf("update current consent: %w", err)
		}
	}
	tx.head.id, tx.head.hash, tx.head.dirty = e.ID, e.Hash, true
	return nil
}

// CurrentState is a channel's current consent: the newest event's action.
type CurrentState struct {
	Action  string    `json:"state"`
	EventID int64     `json:"event_id,omitempty"`
	At      time.Time `json:"at,omitempty"`
}

// CurrentConsent returns the current state of one channel of a contact
// (Action StateNone when there is no event).
func (tx *Tx) CurrentConsent(contactID int64, channel string) (CurrentState, error) {
	return currentConsent(tx, contactID, channel)
}

type queryer interface {
	row(query string, args ...any) rowScanner
}

func currentConsent(q queryer, contactID int64, channel string) (CurrentState, error) {
	var cs CurrentState
	var at string
	err := q.row(`SELECT action, event_id, at FROM consent_current WHERE contact_id = ? AND channel = ?`,
		contactID, channel).Scan(&cs.Action, &cs.EventID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return CurrentState{Action: StateNone}, nil
	}
	if err != nil {
		return cs, err
	}
	cs.At, err = ParseTime(at)
	return cs, err
}

// VerifyResult is the outcome of a chain check.
type VerifyResult struct {
	Events  int64  `json:"events"`
	OK      bool   `json:"ok"`
	Head    string `json:"head,omitempty"`
	BadID   int64  `json:"bad_event_id,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// Verify walks the whole ledger and checks that every event's digest matches
// its content (redacted events excepted: erasure removed their personal
// evidence but kept the digest), that each links to the one before, that the
// ids run without gaps, that the stored chain head matches the newest event,
// that the current-state projection agrees with the ledger, and that the
// WhatsApp audience segments read agrees with its definition. It names the
// first bad event.
func (s *Store) Verify(ctx context.Context) (VerifyResult, error) {
	var res VerifyResult
	rows, err := s.read.QueryContext(ctx, `SELECT id, contact_id, channel, action, at, recorded_at, method, ip,
		user_agent, campaign, invitation_id, evidence, statement_version, statement_sha256, digest, prev_hash, hash, redacted
		FROM consent_events ORDER BY id`)
	if err != nil {
		return res, err
	}
	defer rows.Close()
	prev, want := genesisHash, int64(1)
	fail := func(id int64, format string, args ...any) {
		if res.Problem == "" {
			res.BadID, res.Problem = id, fmt.Sprintf(format, args...)
		}
	}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return res, err
		}
		res.Events++
		if res.Problem != "" {
			continue
		}
		switch {
		case e.ID != want:
			fail(want, "event %d is missing (found %d next): events were deleted or reordered", want, e.ID)
		case e.PrevHash != prev:
			fail(e.ID, "event %d does not link to the event before it: an event before it was changed, deleted or reordered", e.ID)
		case !e.Redacted && digestOf(&e) != e.Digest:
			fail(e.ID, "event %d was edited: its content does not match its digest", e.ID)
		case chainHash(e.PrevHash, e.Digest) != e.Hash:
			fail(e.ID, "event %d has a wrong hash: it was edited", e.ID)
		}
		prev, want = e.Hash, e.ID+1
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	res.Head = prev
	if res.Problem == "" {
		var head string
		err := s.read.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'chain_head'`).Scan(&head)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return res, err
		}
		if res.Events > 0 || head != "" {
			if wantHead := strconv.FormatInt(res.Events, 10) + ":" + prev; head != wantHead {
				fail(res.Events+1, "the newest events were deleted: the ledger ends at event %d but the recorded chain head is %q", res.Events, head)
			}
		}
	}
	if res.Problem == "" {
		var id int64
		err := s.read.QueryRowContext(ctx, `SELECT cc.event_id FROM consent_current cc
			WHERE cc.event_id <> (SELECT max(e.id) FROM consent_events e WHERE e.contact_id = cc.contact_id AND e.channel = cc.channel)
			   OR cc.action <> (SELECT e.action FROM consent_events e WHERE e.id = cc.event_id)
			LIMIT 1`).Scan(&id)
		if err == nil {
			fail(id, "the current consent state disagrees with the ledger at event %d", id)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return res, err
		}
	}
	if res.Problem == "" {
		id, err := verifyAudience(ctx, s.read)
		if err != nil {
			return res, err
		}
		if id != 0 {
			res.Problem = fmt.Sprintf("the WhatsApp audience that segments read disagrees with the ledger, contacts and suppressions at contact %d: the table whatsapp_audience was changed by hand", id)
		}
	}
	res.OK = res.Problem == ""
	return res, nil
}

type scanner interface{ Scan(dest ...any) error }

const eventColumns = `id, contact_id, channel, action, at, recorded_at, method, ip, user_agent, campaign,
	invitation_id, evidence, statement_version, statement_sha256, digest, prev_hash, hash, redacted`

func scanEvent(r scanner) (Event, error) {
	var e Event
	var at, rec, evidence string
	if err := r.Scan(&e.ID, &e.ContactID, &e.Channel, &e.Action, &at, &rec, &e.Method, &e.IP, &e.UserAgent,
		&e.Campaign, &e.InvitationID, &evidence, &e.StatementVersion, &e.StatementSHA256, &e.Digest, &e.PrevHash,
		&e.Hash, &e.Redacted); err != nil {
		return e, err
	}
	var err error
	if e.At, err = ParseTime(at); err != nil {
		return e, fmt.Errorf("event %d: bad time %q", e.ID, at)
	}
	if e.RecordedAt, err = ParseTime(rec); err != nil {
		return e, fmt.Errorf("event %d: bad time %q", e.ID, rec)
	}
	if evidence != "" && evidence != "{}" {
		if err := json.Unmarshal([]byte(evidence), &e.Evidence); err != nil {
			return e, fmt.Errorf("event %d: bad evidence: %w", e.ID, err)
		}
	}
	return e, nil
}

// Events returns the ledger of one contact, oldest first.
func (s *Store) Events(ctx context.Context, contactID int64) ([]Event, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+eventColumns+` FROM consent_events WHERE contact_id = ? ORDER BY id`, contactID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// EachEvent calls fn for every event of the ledger in order (all contacts
// when contactID is 0), streaming.
func (s *Store) EachEvent(ctx context.Context, contactID int64, fn func(Event) error) error {
	q := `SELECT ` + eventColumns + ` FROM consent_events`
	var args []any
	if contactID != 0 {
		q += ` WHERE contact_id = ?`
		args = append(args, contactID)
	}
	rows, err := s.read.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// redactEvents removes the personal evidence of a contact's events. The
// digest stays, so the chain still verifies.
func (tx *Tx) redactEvents(contactID int64) error {
	_, err := tx.exec(`UPDATE consent_events SET ip = '', user_agent = '', evidence = '{}', redacted = 1
		WHERE contact_id = ? AND redacted = 0`, contactID)
	return err
}
