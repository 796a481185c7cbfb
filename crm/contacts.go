package crm

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Contact is a person in the store. Email is empty once erased.
type Contact struct {
	ID         int64             `json:"id"`
	Email      string            `json:"email"`
	FirstName  string            `json:"first_name,omitempty"`
	LastName   string            `json:"last_name,omitempty"`
	Phone      string            `json:"phone"` // E.164, "" when none valid
	PhoneRaw   string            `json:"phone_raw,omitempty"`
	Country    string            `json:"country,omitempty"`
	Language   string            `json:"language,omitempty"`
	Tags       []string          `json:"tags,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Source     string            `json:"source,omitempty"`
	ExternalID string            `json:"external_id,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	Erased     bool              `json:"erased,omitempty"`
}

// ErrNotFound is returned when a contact (or another record) does not exist.
var ErrNotFound = errors.New("not found")

// ErrErased is returned when an input names a contact that was erased.
var ErrErased = errors.New("contact was erased (right to erasure) and is kept only as a suppression hash")

const contactColumns = `id, coalesce(email, ''), first_name, last_name, phone_e164, phone_raw, country, language,
	tags, attributes, source, external_id, created_at, updated_at, erased_at IS NOT NULL`

func scanContact(r scanner) (Contact, error) {
	var c Contact
	var tags, attrs, created, updated string
	if err := r.Scan(&c.ID, &c.Email, &c.FirstName, &c.LastName, &c.Phone, &c.PhoneRaw, &c.Country, &c.Language,
		&tags, &attrs, &c.Source, &c.ExternalID, &created, &updated, &c.Erased); err != nil {
		return c, err
	}
	if tags != "" && tags != "[]" {
		if err := json.Unmarshal([]byte(tags), &c.Tags); err != nil {
			return c, fmt.Errorf("contact %d: bad tags: %w", c.ID, err)
		}
	}
	if attrs != "" && attrs != "{}" {
		if err := json.Unmarshal([]byte(attrs), &c.Attributes); err != nil {
			return c, fmt.Errorf("contact %d: bad attributes: %w", c.ID, err)
		}
	}
	c.CreatedAt, _ = ParseTime(created)
	c.UpdatedAt, _ = ParseTime(updated)
	return c, nil
}

// scanContactAndHash scans contactColumns followed by email_hash.
func scanContactAndHash(r scanner) (Contact, string, error) {
	var h string
	c, err := scanContact(hashScanner{r, &h})
	return c, h, err
}

type hashScanner struct {
	r scanner
	h *string
}

func (s hashScanner) Scan(dest ...any) error { return s.r.Scan(append(dest, s.h)...) }

// ContactByEmail finds a contact by address (normalised here). An erased
// contact is found too (by its hash), with Erased set.
func (s *Store) ContactByEmail(ctx context.Context, email string) (Contact, error) {
	norm, err := NormalizeEmail(email)
	if err != nil {
		return Contact{}, err
	}
	c, err := scanContact(s.read.QueryRowContext(ctx, `SELECT `+contactColumns+` FROM contacts WHERE email_hash = ?`, s.HashEmail(norm)))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("contact %s: %w", email, ErrNotFound)
	}
	return c, err
}

// ContactByID finds a contact by id.
func (s *Store) ContactByID(ctx context.Context, id int64) (Contact, error) {
	c, err := scanContact(s.read.QueryRowContext(ctx, `SELECT `+contactColumns+` FROM contacts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("contact %d: %w", id, ErrNotFound)
	}
	return c, err
}

// ContactByID finds a contact by id inside a write transaction.
func (tx *Tx) ContactByID(id int64) (Contact, error) {
	c, err := scanContact(tx.QueryRow(`SELECT `+contactColumns+` FROM contacts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("contact %d: %w", id, ErrNotFound)
	}
	return c, err
}

// ContactInput is what an import (or a page) knows of a contact. Empty
// fields leave stored values alone; tags and attributes are merged.
type ContactInput struct {
	Email      string // normalised
	FirstName  string
	LastName   string
	Phone      string // E.164 or ""
	PhoneRaw   string
	Country    string
	Language   string
	Tags       []string
	Attributes map[string]string
	Source     string
	ExternalID string
}

// Upsert outcomes.
const (
	Created   = "created"
	Updated   = "updated"
	Unchanged = "unchanged"
)

// UpsertContact creates or merges a contact keyed by its email and returns
// its id and whether it was created, updated or unchanged. It returns
// ErrErased for an erased contact and changes nothing then.
func (tx *Tx) UpsertContact(in ContactInput) (int64, string, error) {
	hash := tx.store.HashEmail(in.Email)
	old, err := scanContact(tx.row(`SELECT `+contactColumns+` FROM contacts WHERE email_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		c, outcome, err := tx.upsertKnown(in, hash, nil)
		return c.ID, outcome, err
	}
	if err != nil {
		return 0, "", err
	}
	c, outcome, err := tx.upsertKnown(in, hash, &old)
	return c.ID, outcome, err
}

// upsertKnown merges in into old (nil for a new contact), writes the
// result when it differs, and returns the contact as stored. The caller has
// already looked old up (the importer does so for a whole batch at once).
func (tx *Tx) upsertKnown(in ContactInput, hash string, old *Contact) (Contact, string, error) {
	if old == nil {
		c := Contact{Email: in.Email}
		mergeInput(&c, in)
		id, err := tx.insertContact(&c, hash)
		c.ID = id
		return c, Created, err
	}
	if old.Erased {
		return *old, "", ErrErased
	}
	merged := *old
	merged.Tags = slices.Clone(old.Tags)
	merged.Attributes = maps.Clone(old.Attributes)
	mergeInput(&merged, in)
	if sameContact(*old, merged) {
		return merged, Unchanged, nil
	}
	tags, attrs := encodeTagsAttrs(merged)
	if err := tx.flushBulk(); err != nil { // the row may still be gathered
		return merged, "", err
	}
	_, err := tx.exec(`UPDATE contacts SET first_name = ?, last_name = ?, phone_e164 = ?, phone_raw = ?, phone_hash = ?,
		country = ?, language = ?, tags = ?, attributes = ?, source = ?, external_id = ?, updated_at = ? WHERE id = ?`,
		merged.FirstName, merged.LastName, merged.Phone, merged.PhoneRaw, tx.store.HashPhone(merged.Phone),
		merged.Country, merged.Language, tags, attrs, merged.Source, merged.ExternalID, FormatTime(tx.Now), old.ID)
	if err != nil {
		return merged, "", fmt.Errorf("update contact: %w", err)
	}
	return merged, Updated, nil
}

func (tx *Tx) insertContact(c *Contact, hash string) (int64, error) {
	tags, attrs := encodeTagsAttrs(*c)
	now := FormatTime(tx.Now)
	const insert = `INSERT INTO contacts (id, email, email_hash, first_name, last_name, phone_e164, phone_raw, phone_hash,
		country, language, tags, attributes, source, external_id, created_at, updated_at)`
	if tx.bulkMode {
		// The one writer connection owns the id sequence for the batch.
		if tx.nextContactID == 0 {
			if err := tx.QueryRow(`SELECT coalesce(max(id), 0) + 1 FROM contacts`).Scan(&tx.nextContactID); err != nil {
				return 0, err
			}
		}
		id := tx.nextContactID
		tx.nextContactID++
		err := tx.bulkAdd(tx.bulk(insert, "", 16, rankContacts), id, c.Email, hash, c.FirstName, c.LastName, c.Phone, c.PhoneRaw,
			tx.store.HashPhone(c.Phone), c.Country, c.Language, tags, attrs, c.Source, c.ExternalID, now, now)
		return id, err
	}
	res, err := tx.exec(insert+` VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Email, hash, c.FirstName, c.LastName, c.Phone, c.PhoneRaw, tx.store.HashPhone(c.Phone), c.Country,
		c.Language, tags, attrs, c.Source, c.ExternalID, now, now)
	if err != nil {
		return 0, fmt.Errorf("insert contact: %w", err)
	}
	return res.LastInsertId()
}

func mergeInput(c *Contact, in ContactInput) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&c.FirstName, in.FirstName)
	set(&c.LastName, in.LastName)
	if in.Phone != "" {
		c.Phone = in.Phone
	}
	set(&c.PhoneRaw, in.PhoneRaw)
	set(&c.Country, in.Country)
	set(&c.Language, in.Language)
	set(&c.Source, in.Source)
	set(&c.ExternalID, in.ExternalID)
	for _, t := range in.Tags {
		if t != "" && !slices.Contains(c.Tags, t) {
			c.Tags = append(c.Tags, t)
		}
	}
	for k, v := range in.Attributes {
		if v == "" {
			continue
		}
		if c.Attributes == nil {
			c.Attributes = map[string]string{}
		}
		c.Attributes[k] = v
	}
}

func sameContact(a, b Contact) bool {
	return a.FirstName == b.FirstName && a.LastName == b.LastName && a.Phone == b.Phone && a.PhoneRaw == b.PhoneRaw &&
		a.Country == b.Country && a.Language == b.Language && a.Source == b.Source && a.ExternalID == b.ExternalID &&
		slices.Equal(a.Tags, b.Tags) && maps.Equal(a.Attributes, b.Attributes)
}

func encodeTagsAttrs(c Contact) (string, string) {
	tags, attrs := "[]", "{}"
	if len(c.Tags) > 0 {
		b, _ := json.Marshal(c.Tags)
		tags = string(b)
	}
	if len(c.Attributes) > 0 {
		b, _ := json.Marshal(c.Attributes)
		attrs = string(b)
	}
	return tags, attrs
}

// SetPhone stores a new E.164 number (and the raw text) for a contact, as
// given on the confirmation page.
func (tx *Tx) SetPhone(contactID int64, e164, raw string) error {
	_, err := tx.exec(`UPDATE contacts SET phone_e164 = ?, phone_raw = ?, phone_hash = ?, updated_at = ? WHERE id = ?`,
		e164, raw, tx.store.HashPhone(e164), FormatTime(tx.Now), contactID)
	return err
}

// SetInterests replaces a contact's interests.
func (tx *Tx) SetInterests(contactID int64, interests []string) error {
	if _, err := tx.exec(`DELETE FROM contact_interests WHERE contact_id = ?`, contactID); err != nil {
		return err
	}
	for _, in := range interests {
		if _, err := tx.exec(`INSERT OR IGNORE INTO contact_interests (contact_id, interest, set_at) VALUES (?, ?, ?)`,
			contactID, in, FormatTime(tx.Now)); err != nil {
			return err
		}
	}
	return nil
}

// Interests returns a contact's interests, sorted.
func (s *Store) Interests(ctx context.Context, contactID int64) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT interest FROM contact_interests WHERE contact_id = ? ORDER BY interest`, contactID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Statement is an exact consent wording.
type Statement struct {
	Channel  string `json:"channel"`
	Version  string `json:"version"`
	Language string `json:"language"`
	Text     string `json:"text"`
	SHA256   string `json:"sha256"`
}

// StatementHash is the SHA-256 (hex) of a statement's exact text.
func StatementHash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// ErrStatementChanged is returned when a version is saved again with other
// wording: the wording of a version is evidence and never changes.
var ErrStatementChanged = errors.New("a consent statement with this version and language already exists with different wording; give the new wording a new version")

// SaveStatement stores a statement once per channel, version and language
// and returns it with its hash. Saving the same text again is harmless.
func (tx *Tx) SaveStatement(st Statement) (Statement, error) {
	st.SHA256 = StatementHash(st.Text)
	var existing string
	err := tx.row(`SELECT sha256 FROM statements WHERE channel = ? AND version = ? AND language = ?`,
		st.Channel, st.Version, st.Language).Scan(&existing)
	switch {
	case err == nil && existing == st.SHA256:
		return st, nil
	case err == nil:
		return st, fmt.Errorf("statement %s/%s: %w", st.Version, st.Language, ErrStatementChanged)
	case !errors.Is(err, sql.ErrNoRows):
		return st, err
	}
	_, err = tx.exec(`INSERT INTO statements (channel, version, language, text, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		st.Channel, st.Version, st.Language, st.Text, st.SHA256, FormatTime(tx.Now))
	return st, err
}

// StatementFor returns the stored statement of a version in a language,
// falling back to any language of that version.
func (s *Store) StatementFor(ctx context.Context, channel, version, language string) (Statement, error) {
	st := Statement{Channel: channel, Version: version}
	err := s.read.QueryRowContext(ctx, `SELECT language, text, sha256 FROM statements
		WHERE channel = ? AND version = ? ORDER BY language = ? DESC, language = 'en' DESC, id LIMIT 1`,
		channel, version, language).Scan(&st.Language, &st.Text, &st.SHA256)
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("consent statement %s: %w", version, ErrNotFound)
	}
	return st, err
}

// Statements lists every stored statement (for the proof pack).
func (s *Store) Statements(ctx context.Context) ([]Statement, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT channel, version, language, text, sha256 FROM statements ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Statement
	for rows.Next() {
		var st Statement
		if err := rows.Scan(&st.Channel, &st.Version, &st.Language, &st.Text, &st.SHA256); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// Consent returns the current state of every channel of a contact.
func (s *Store) Consent(ctx context.Context, contactID int64) (map[string]CurrentState, error) {
	out := map[string]CurrentState{}
	for _, ch := range Channels {
		cs, err := currentConsent(readQueryer{ctx, s.read}, contactID, ch)
		if err != nil {
			return nil, err
		}
		out[ch] = cs
	}
	return out, nil
}

type readQueryer struct {
	ctx context.Context
	db  *sql.DB
}

func (r readQueryer) row(q string, args ...any) rowScanner {
	return r.db.QueryRowContext(r.ctx, q, args...)
}

// normalizeTag trims a tag; CRMs pad and quote them.
func normalizeTag(t string) string {
	return strings.TrimSpace(strings.Trim(strings.TrimSpace(t), `"`))
}
