package crm

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ProofFormat names the layout of the proof pack; docs/proof-pack.md
// describes it and how to check it without repermit.
const ProofFormat = "repermit-proof-pack/v1"

// ReceiptVersion is the Kantara Initiative Consent Receipt version the
// receipts follow.
const ReceiptVersion = "KI-CR-v1.1.0"

// Controller is the business that collected the consent, as the proof pack
// and the receipts name it. The caller fills it from its configuration.
type Controller struct {
	Name       string `json:"name"`
	Address    string `json:"address,omitempty"`
	Country    string `json:"country,omitempty"` // ISO 3166 code of the address, when known
	Email      string `json:"email,omitempty"`
	Phone      string `json:"phone,omitempty"` // e.g. the business's WhatsApp number
	URL        string `json:"url,omitempty"`
	PrivacyURL string `json:"privacy_url,omitempty"`
	// Jurisdiction is where the consent is governed, e.g. "EU", "DE", "CA".
	Jurisdiction string `json:"jurisdiction,omitempty"`
}

// ProofOptions chooses what the proof pack holds.
type ProofOptions struct {
	// ContactID limits the pack to one person's events (0: the whole ledger).
	ContactID  int64
	Controller Controller
}

// ProofSummary says what a proof pack or receipt export holds.
type ProofSummary struct {
	Events     int64  `json:"events"`
	Contacts   int64  `json:"contacts"`
	Statements int    `json:"statements"`
	Receipts   int64  `json:"receipts"`
	HeadID     int64  `json:"head_event_id"`
	Head       string `json:"head_hash"`
}

// proofEvent is an event as the pack shows it: the stored fields plus the
// exact bytes its digest covers, so that an auditor hashes those bytes
// rather than re-creating Go's JSON encoding. Redacted events (after an
// erasure) have no canonical text: their personal evidence is gone, their
// digest stays and still links the chain.
type proofEvent struct {
	Event
	Canonical string `json:"canonical,omitempty"`
}

// chainLink is one event reduced to what the chain needs: no personal data.
type chainLink struct {
	ID       int64  `json:"id"`
	PrevHash string `json:"prev_hash"`
	Digest   string `json:"digest"`
	Hash     string `json:"hash"`
}

type proofContact struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email,omitempty"`
	FirstName string    `json:"first_name,omitempty"`
	LastName  string    `json:"last_name,omitempty"`
	Phone     string    `json:"phone,omitempty"`
	Language  string    `json:"language,omitempty"`
	Source    string    `json:"source,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Erased    bool      `json:"erased,omitempty"`
}

// errStopEach ends an EachEvent walk at the snapshot's head.
var errStopEach = errors.New("stop")

// head reads the newest event: the pack covers the ledger up to it, even
// when events are appended while it is written.
func (s *Store) head(ctx context.Context) (int64, string, error) {
	var id int64
	h := genesisHash
	err := s.read.QueryRowContext(ctx, `SELECT id, hash FROM consent_events ORDER BY id DESC LIMIT 1`).Scan(&id, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, genesisHash, nil
	}
	return id, h, err
}

// WriteProofPack writes the proof pack as one JSON object, streaming: the
// controller, every consent statement with its SHA-256, the contacts
// concerned, every event (of one contact, or all) with its evidence and the
// exact canonical text of its digest, and the chain head. For one contact it
// also lists the chain links (ids and hashes only) from that contact's first
// event to the head, so that an auditor can recompute the path from the
// person's events to the head without seeing anyone else's data.
// docs/proof-pack.md says how to check it.
func (s *Store) WriteProofPack(ctx context.Context, out io.Writer, opt ProofOptions) (ProofSummary, error) {
	var sum ProofSummary
	headID, headHash, err := s.head(ctx)
	if err != nil {
		return sum, err
	}
	sum.HeadID, sum.Head = headID, headHash
	w := bufio.NewWriterSize(out, 64<<10)
	field := func(name string, v any, last bool) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %q: %s", name, b)
		if !last {
			w.WriteString(",\n")
		} else {
			w.WriteString("\n")
		}
		return nil
	}
	// list streams a JSON array of one item per call of each's callback.
	list := func(name string, each func(emit func(v any) error) error) error {
		fmt.Fprintf(w, "  %q: [", name)
		n := 0
		err := each(func(v any) error {
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			if n > 0 {
				w.WriteString(",")
			}
			w.WriteString("\n    ")
			w.Write(b)
			n++
			return nil
		})
		if err != nil {
			return err
		}
		if n > 0 {
			w.WriteString("\n  ")
		}
		w.WriteString("],\n")
		return nil
	}

	w.WriteString("{\n")
	scope := map[string]any{"whole_ledger": true}
	if opt.ContactID != 0 {
		scope = map[string]any{"contact_id": opt.ContactID}
	}
	field("format", ProofFormat, false)
	field("generated_at", FormatTime(s.Now()), false)
	field("controller", opt.Controller, false)
	field("scope", scope, false)
	field("how_to_check", "digest = sha256(utf8(canonical)); hash = sha256(prev_hash + \"\\n\" + digest); "+
		"the first event's prev_hash is "+genesisHash+"; each prev_hash is the hash of the event before; "+
		"statement sha256 = sha256(utf8(text)). See docs/proof-pack.md.", false)

	stmts, err := s.Statements(ctx)
	if err != nil {
		return sum, err
	}
	sum.Statements = len(stmts)
	if err := list("statements", func(emit func(any) error) error {
		for _, st := range stmts {
			if err := emit(st); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return sum, err
	}

	if err := list("contacts", func(emit func(any) error) error {
		n, err := s.eachProofContact(ctx, opt.ContactID, headID, emit)
		sum.Contacts = n
		return err
	}); err != nil {
		return sum, err
	}

	firstID := int64(0)
	if err := list("events", func(emit func(any) error) error {
		err := s.EachEvent(ctx, opt.ContactID, func(e Event) error {
			if e.ID > headID {
				return errStopEach
			}
			if firstID == 0 {
				firstID = e.ID
			}
			pe := proofEvent{Event: e}
			if !e.Redacted {
				pe.Canonical = string(canonical(&e))
			}
			sum.Events++
			return emit(pe)
		})
		if errors.Is(err, errStopEach) {
			return nil
		}
		return err
	}); err != nil {
		return sum, err
	}

	if opt.ContactID != 0 && firstID != 0 {
		if err := list("chain", func(emit func(any) error) error {
			return s.eachLink(ctx, firstID, headID, func(l chainLink) error { return emit(l) })
		}); err != nil {
			return sum, err
		}
	}
	field("chain_head", map[string]any{"event_id": headID, "hash": headHash}, true)
	w.WriteString("}\n")
	return sum, w.Flush()
}

func (s *Store) eachProofContact(ctx context.Context, contactID, headID int64, emit func(any) error) (int64, error) {
	q := `SELECT id, coalesce(email, ''), first_name, last_name, phone_e164, language, source, created_at,
		erased_at IS NOT NULL FROM contacts`
	var args []any
	if contactID != 0 {
		q += ` WHERE id = ?`
		args = append(args, contactID)
	} else {
		// Only people the ledger up to the head speaks of.
		q += ` WHERE id IN (SELECT contact_id FROM consent_events WHERE id <= ?)`
		args = append(args, headID)
	}
	rows, err := s.read.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var c proofContact
		var created string
		if err := rows.Scan(&c.ID, &c.Email, &c.FirstName, &c.LastName, &c.Phone, &c.Language, &c.Source, &created,
			&c.Erased); err != nil {
			return n, err
		}
		c.CreatedAt, _ = ParseTime(created)
		if err := emit(c); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

func (s *Store) eachLink(ctx context.Context, from, to int64, fn func(chainLink) error) error {
	rows, err := s.read.QueryContext(ctx, `SELECT id, prev_hash, digest, hash FROM consent_events
		WHERE id >= ? AND id <= ? ORDER BY id`, from, to)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var l chainLink
		if err := rows.Scan(&l.ID, &l.PrevHash, &l.Digest, &l.Hash); err != nil {
			return err
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Receipt is a consent receipt in the structure of the Kantara Initiative
// Consent Receipt Specification v1.1 (the fields ISO/IEC 27560 consent
// records carry too). RepermitEvidence is an extension that ties the
// receipt to its ledger event, so the receipt can be checked against the
// proof pack.
type Receipt struct {
	Version          string              `json:"version"`
	Jurisdiction     string              `json:"jurisdiction"`
	ConsentTimestamp int64               `json:"consentTimestamp"` // seconds since 1970, UTC
	CollectionMethod string              `json:"collectionMethod"`
	ConsentReceiptID string              `json:"consentReceiptID"`
	Language         string              `json:"language"`
	PIIPrincipalID   string              `json:"piiPrincipalId"`
	PIIControllers   []ReceiptController `json:"piiControllers"`
	PolicyURL        string              `json:"policyUrl"`
	Services         []ReceiptService    `json:"services"`
	Sensitive        bool                `json:"sensitive"`
	SPICat           []string            `json:"spiCat"`
	RepermitEvidence ReceiptEvidence     `json:"repermitEvidence"`
}

// ReceiptController is a piiControllers entry.
type ReceiptController struct {
	PIIController    string         `json:"piiController"`
	OnBehalf         bool           `json:"onBehalf"`
	Contact          string         `json:"contact"`
	Address          ReceiptAddress `json:"address"`
	Email            string         `json:"email"`
	Phone            string         `json:"phone"`
	PIIControllerURL string         `json:"piiControllerUrl,omitempty"`
}

// ReceiptAddress is the controller's postal address.
type ReceiptAddress struct {
	StreetAddress  string `json:"streetAddress"`
	AddressCountry string `json:"addressCountry,omitempty"`
}

// ReceiptService is a services entry: what the consent is for.
type ReceiptService struct {
	Service  string           `json:"service"`
	Purposes []ReceiptPurpose `json:"purposes"`
}

// ReceiptPurpose is one purpose of a service.
type ReceiptPurpose struct {
	Purpose              string   `json:"purpose"`
	PurposeCategory      []string `json:"purposeCategory"`
	ConsentType          string   `json:"consentType"`
	PIICategory          []string `json:"piiCategory"`
	PrimaryPurpose       bool     `json:"primaryPurpose"`
	Termination          string   `json:"termination"`
	ThirdPartyDisclosure bool     `json:"thirdPartyDisclosure"`
	ThirdPartyName       string   `json:"thirdPartyName,omitempty"`
}

// ReceiptEvidence ties a receipt to the ledger.
type ReceiptEvidence struct {
	EventID          int64  `json:"eventId"`
	EventHash        string `json:"eventHash"`
	Channel          string `json:"channel"`
	Method           string `json:"method"`
	Phone            string `json:"phone,omitempty"`
	Campaign         string `json:"campaign,omitempty"`
	StatementVersion string `json:"statementVersion,omitempty"`
	StatementSHA256  string `json:"statementSha256,omitempty"`
	StatementText    string `json:"statementText,omitempty"`
}

// ReceiptOptions are the plain values a receipt needs besides the ledger.
type ReceiptOptions struct {
	Controller Controller
	// InterestLabels maps an interest to its label per language (as in the
	// config); an interest without a label is shown by its name.
	InterestLabels map[string]map[string]string
	// RefreshMonths is after how long consent is asked again (0: not said).
	RefreshMonths int
}

// ErrNoReceipt is returned for an event that is not a WhatsApp
// confirmation, or whose person was erased: only those get a receipt.
var ErrNoReceipt = errors.New("only a WhatsApp confirmation of a contact who was not erased has a consent receipt")

// ReceiptFor builds the consent receipt of one event: a WhatsApp
// confirmation. The confirmation page calls it with the event it just
// recorded to offer the person their own receipt; the same event always
// gives the same receipt (its ID derives from the event's hash).
func (s *Store) ReceiptFor(ctx context.Context, eventID int64, opt ReceiptOptions) (Receipt, error) {
	e, err := scanEvent(s.read.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM consent_events WHERE id = ?`, eventID))
	if errors.Is(err, sql.ErrNoRows) {
		return Receipt{}, fmt.Errorf("consent event %d: %w", eventID, ErrNotFound)
	}
	if err != nil {
		return Receipt{}, err
	}
	c, err := s.ContactByID(ctx, e.ContactID)
	if err != nil {
		return Receipt{}, err
	}
	var stmt Statement
	if e.StatementSHA256 != "" {
		stmt, err = s.statementByHash(ctx, e.StatementSHA256)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Receipt{}, err
		}
	}
	return BuildReceipt(e, c, stmt, opt)
}

func (s *Store) statementByHash(ctx context.Context, sha string) (Statement, error) {
	st := Statement{SHA256: sha}
	err := s.read.QueryRowContext(ctx, `SELECT channel, version, language, text FROM statements WHERE sha256 = ? ORDER BY id LIMIT 1`,
		sha).Scan(&st.Channel, &st.Version, &st.Language, &st.Text)
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("statement %s: %w", sha, ErrNotFound)
	}
	return st, err
}

// BuildReceipt makes the receipt of a WhatsApp confirmation e of contact c,
// shown statement stmt (zero when unknown). It does no I/O.
func BuildReceipt(e Event, c Contact, stmt Statement, opt ReceiptOptions) (Receipt, error) {
	if e.Channel != ChannelWhatsApp || e.Action != ActionConfirmed || c.Erased || c.Email == "" {
		return Receipt{}, ErrNoReceipt
	}
	ctl := opt.Controller
	lang := stmt.Language
	if lang == "" {
		lang = e.Evidence["statement_language"]
	}
	if lang == "" {
		lang = e.Evidence["page_language"]
	}
	if lang == "" {
		lang = c.Language
	}
	if lang == "" {
		lang = "en"
	}
	jur := ctl.Jurisdiction
	if jur == "" {
		jur = ctl.Country
	}
	policy := ctl.PrivacyURL
	if policy == "" {
		policy = ctl.URL
	}
	termination := "Until withdrawn: reply STOP on WhatsApp, or use the link in any message or invitation."
	if opt.RefreshMonths > 0 {
		termination += fmt.Sprintf(" Asked again after %d months; without a new confirmation it expires then.", opt.RefreshMonths)
	}
	carrier := "WhatsApp (Meta Platforms), which carries the messages"
	var interests []string
	for _, in := range strings.Split(e.Evidence["interests"], ",") {
		if in = strings.TrimSpace(in); in != "" {
			interests = append(interests, in)
		}
	}
	purpose := func(text string, primary bool, category string) ReceiptPurpose {
		return ReceiptPurpose{
			Purpose:              text,
			PurposeCategory:      []string{category},
			ConsentType:          "EXPLICIT",
			PIICategory:          []string{"2 - Contact"},
			PrimaryPurpose:       primary,
			Termination:          termination,
			ThirdPartyDisclosure: true,
			ThirdPartyName:       carrier,
		}
	}
	purposes := []ReceiptPurpose{purpose("Messages from "+ctl.Name+" on WhatsApp to the number the person gave or confirmed", true, "6 - Marketing")}
	for _, in := range interests {
		label := in
		if l := opt.InterestLabels[in][lang]; l != "" {
			label = l
		} else if l := opt.InterestLabels[in]["en"]; l != "" {
			label = l
		}
		purposes = append(purposes, purpose("WhatsApp messages about: "+label, false, "5 - Personalised Experience"))
	}
	r := Receipt{
		Version:          ReceiptVersion,
		Jurisdiction:     jur,
		ConsentTimestamp: e.At.Unix(),
		CollectionMethod: collectionMethod(e.Method),
		ConsentReceiptID: receiptID(e.Hash),
		Language:         lang,
		PIIPrincipalID:   c.Email,
		PIIControllers: []ReceiptController{{
			PIIController:    ctl.Name,
			Contact:          ctl.Name,
			Address:          ReceiptAddress{StreetAddress: ctl.Address, AddressCountry: ctl.Country},
			Email:            ctl.Email,
			Phone:            ctl.Phone,
			PIIControllerURL: ctl.URL,
		}},
		PolicyURL: policy,
		Services:  []ReceiptService{{Service: "WhatsApp messages from " + ctl.Name, Purposes: purposes}},
		Sensitive: false,
		SPICat:    []string{},
		RepermitEvidence: ReceiptEvidence{
			EventID: e.ID, EventHash: e.Hash, Channel: e.Channel, Method: e.Method, Phone: c.Phone,
			Campaign: e.Campaign, StatementVersion: e.StatementVersion, StatementSHA256: e.StatementSHA256,
			StatementText: stmt.Text,
		},
	}
	return r, nil
}

// collectionMethod says in words how a method collects consent.
func collectionMethod(method string) string {
	switch method {
	case "invite:confirm-page":
		return "Email invitation to the person's address on file; on the linked web page the person read the statement " +
			"and pressed Confirm (an HTTP POST; opening the link alone records nothing)"
	case "preference-page":
		return "Preference page linked from a message; the person changed their choice and submitted the form"
	}
	if strings.HasPrefix(method, "import:") {
		return "Imported from the CRM export " + strings.TrimPrefix(method, "import:")
	}
	return method
}

// receiptID is a UUID (RFC 9562 version 8, derived) from the event hash:
// stable, so the person and an auditor see the same ID every time.
func receiptID(eventHash string) string {
	sum := sha256.Sum256([]byte("repermit consent receipt\n" + eventHash))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// WriteReceipts writes the receipt of every WhatsApp confirmation (of one
// contact, or all) as JSON Lines: one receipt per line, streaming. Erased
// contacts get none (their events stay in the proof pack, redacted).
func (s *Store) WriteReceipts(ctx context.Context, out io.Writer, contactID int64, opt ReceiptOptions) (ProofSummary, error) {
	var sum ProofSummary
	headID, headHash, err := s.head(ctx)
	if err != nil {
		return sum, err
	}
	sum.HeadID, sum.Head = headID, headHash
	stmts := map[string]Statement{}
	all, err := s.Statements(ctx)
	if err != nil {
		return sum, err
	}
	for _, st := range all {
		if _, ok := stmts[st.SHA256]; !ok {
			stmts[st.SHA256] = st
		}
	}
	sum.Statements = len(all)
	w := bufio.NewWriterSize(out, 64<<10)
	enc := json.NewEncoder(w)
	// Contacts are looked up per confirmation; one person rarely confirms
	// twice, so a small cache of the last one is enough.
	var last Contact
	err = s.EachEvent(ctx, contactID, func(e Event) error {
		if e.ID > headID {
			return errStopEach
		}
		sum.Events++
		if e.Channel != ChannelWhatsApp || e.Action != ActionConfirmed {
			return nil
		}
		if last.ID != e.ContactID {
			c, err := s.ContactByID(ctx, e.ContactID)
			if err != nil {
				return err
			}
			last = c
		}
		r, err := BuildReceipt(e, last, stmts[e.StatementSHA256], opt)
		if errors.Is(err, ErrNoReceipt) {
			return nil
		}
		if err != nil {
			return err
		}
		sum.Receipts++
		return enc.Encode(r)
	})
	if err != nil && !errors.Is(err, errStopEach) {
		return sum, err
	}
	return sum, w.Flush()
}
