package web

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite"
)

// invitation is what a page needs to know about the token's invitation,
// its campaign and its contact.
type invitation struct {
	ID, CampaignID, ContactID int64
	ExpiresAt                 time.Time
	Response                  string // "", confirmed, declined, unsubscribed
	RespondedAt               time.Time
	Campaign                  string
	Settings                  invite.Settings
	StatementVersion          string
	FirstName, Phone, Country string
	Language                  string
	Erased                    bool
	// Blocked: suppressed for everything or for WhatsApp (a complaint, an
	// erasure): no WhatsApp confirmation may be recorded.
	Blocked bool
	// PhoneBlocked: the stored number said STOP (or was erased); a new
	// number is needed.
	PhoneBlocked bool
	WhatsApp     string // current WhatsApp consent (crm.Action… or crm.StateNone)
	// HasInterests: the contact has chosen interests (the confirmation's
	// writer skips replacing none).
	HasInterests bool
}

// errUnknownToken: no invitation has this token.
var errUnknownToken = errors.New("unknown token")

// validToken rejects what cannot be a token before it reaches the
// database; real tokens are 32 URL-safe characters.
func validToken(t string) bool {
	if len(t) < 16 || len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ { // bytes: any byte of a multi-byte rune fails too
		if r := t[i]; !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// loadInvitationSQL reads an invitation with what its pages need in one
// round trip. The two EXISTS are the suppressions that stop WhatsApp: by
// the contact's email (complaint, erasure) and by its stored number (STOP).
// "channel <> 'email'" means all or whatsapp (the table's CHECK allows only
// those three); SQLite runs it without the temporary table an IN list
// costs on every execution.
//
// The token is bound as CAST(? AS TEXT), not a bare ?: in a join, SQLite
// (3.54) compares a bare parameter with the partial indexes' conditions
// (phone_hash is not empty), and a statement that did so is re-prepared on every
// new binding. The plan is the same; the cast keeps the statement
// prepared, and one load fell from ~80 to ~18 µs of CPU.
const loadInvitationSQL = `SELECT i.id, i.campaign_id, i.contact_id, i.expires_at, i.response, i.responded_at,
	c.name, c.settings, c.statement_version,
	k.first_name, k.phone_e164, k.country, k.language, k.erased_at IS NOT NULL,
	EXISTS (SELECT 1 FROM suppressions s WHERE s.email_hash = k.email_hash AND s.channel <> 'email'),
	EXISTS (SELECT 1 FROM suppressions s WHERE s.phone_hash <> '' AND s.phone_hash = k.phone_hash AND s.channel <> 'email'),
	coalesce((SELECT cc.action FROM consent_current cc WHERE cc.contact_id = k.id AND cc.channel = 'whatsapp'), 'none'),
	EXISTS (SELECT 1 FROM contact_interests ci WHERE ci.contact_id = k.id)
FROM invitations i
JOIN campaigns c ON c.id = i.campaign_id
JOIN contacts k ON k.id = i.contact_id
WHERE i.token_hash = CAST(? AS TEXT)`

// load reads the invitation of a token from the read pool.
func (s *Server) load(ctx context.Context, token string) (*invitation, error) {
	if !validToken(token) {
		return nil, errUnknownToken
	}
	var inv invitation
	var expires, responded, settings string
	dest := []any{
		&inv.ID, &inv.CampaignID, &inv.ContactID, &expires, &inv.Response, &responded,
		&inv.Campaign, &settings, &inv.StatementVersion,
		&inv.FirstName, &inv.Phone, &inv.Country, &inv.Language, &inv.Erased,
		&inv.Blocked, &inv.PhoneBlocked, &inv.WhatsApp, &inv.HasInterests}
	var err error
	if s.lookup != nil {
		err = s.lookup.QueryRow(ctx, invite.HashToken(token), func(cols []driver.Value) error {
			return scanColumns(cols, dest)
		})
	} else {
		err = s.st.DB().QueryRowContext(ctx, loadInvitationSQL, invite.HashToken(token)).Scan(dest...)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errUnknownToken
	}
	if err != nil {
		return nil, fmt.Errorf("load invitation: %w", err)
	}
	if inv.ExpiresAt, err = s.parseExpiry(expires); err != nil {
		return nil, fmt.Errorf("invitation %d: bad expiry: %w", inv.ID, err)
	}
	inv.RespondedAt, _ = crm.ParseTime(responded)
	if settings != "" {
		if inv.Settings, err = s.campaignSettings(inv.CampaignID, settings); err != nil {
			return nil, fmt.Errorf("campaign %d: settings are not valid JSON: %w", inv.CampaignID, err)
		}
	}
	return &inv, nil
}

// scanColumns stores a row's driver values in dest, as database/sql's Scan
// would for the types load uses (*int64, *string, *bool): the same values,
// and an error where Scan reports one (NULL into a string, a mismatch).
func scanColumns(cols []driver.Value, dest []any) error {
	if len(cols) != len(dest) {
		return fmt.Errorf("%d columns, %d destinations", len(cols), len(dest))
	}
	for i, c := range cols {
		ok := false
		switch d := dest[i].(type) {
		case *int64:
			var v int64
			v, ok = c.(int64)
			*d = v
		case *string:
			switch v := c.(type) {
			case string:
				*d, ok = v, true
			case []byte:
				*d, ok = string(v), true
			}
		case *bool:
			switch v := c.(type) {
			case int64:
				*d, ok = v == 1, v == 0 || v == 1
			case bool:
				*d, ok = v, true
			}
		}
		if !ok {
			return fmt.Errorf("column %d: cannot store %T in %T", i, c, dest[i])
		}
	}
	return nil
}

// parsedTime is a stored time and its value.
type parsedTime struct {
	text string
	t    time.Time
}

// parseExpiry parses an invitation's expiry. The invitations of a send
// share one expiry, so the last one parsed is kept: comparing the text is
// cheaper than time.Parse on every page (~1 µs of a confirmation's CPU).
func (s *Server) parseExpiry(text string) (time.Time, error) {
	if p := s.lastExpiry.Load(); p != nil && p.text == text {
		return p.t, nil
	}
	t, err := crm.ParseTime(text)
	if err == nil {
		s.lastExpiry.Store(&parsedTime{text: text, t: t})
	}
	return t, err
}

// parsedSettings is a campaign's settings JSON and what it decodes to.
type parsedSettings struct {
	raw    string
	parsed invite.Settings
}

// maxCachedSettings bounds the campaigns whose settings are kept decoded.
const maxCachedSettings = 1024

// campaignSettings decodes a campaign's settings once per campaign and
// text (a changed text is decoded again): every page needs them, and
// decoding them on each request was ~3% of the confirmation server's CPU.
// The result is shared between requests: read it, never change it.
func (s *Server) campaignSettings(id int64, raw string) (invite.Settings, error) {
	s.mu.Lock()
	c, ok := s.settings[id]
	s.mu.Unlock()
	if ok && c.raw == raw {
		return c.parsed, nil
	}
	var st invite.Settings
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return st, err
	}
	s.mu.Lock()
	if len(s.settings) >= maxCachedSettings {
		clear(s.settings)
	}
	s.settings[id] = parsedSettings{raw: raw, parsed: st}
	s.mu.Unlock()
	return st, nil
}

// statementKey is a cached statement's version and language.
type statementKey struct{ version, lang string }

// statement returns the WhatsApp statement of a version in a language.
// Statements never change once stored (crm.ErrStatementChanged), so they
// are cached: every page shows one.
func (s *Server) statement(ctx context.Context, version, lang string) (crm.Statement, error) {
	key := statementKey{version, lang} // a struct key: no string built per page
	s.mu.Lock()
	st, ok := s.statements[key]
	s.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := s.st.StatementFor(ctx, crm.ChannelWhatsApp, version, lang)
	if err != nil {
		return st, err
	}
	s.mu.Lock()
	s.statements[key] = st
	s.mu.Unlock()
	return st, nil
}

// expired reports whether the invitation can no longer be answered at now.
func (inv *invitation) expired(now time.Time) bool {
	return !inv.ExpiresAt.IsZero() && !now.Before(inv.ExpiresAt)
}

// offered filters what a form sent down to the interests the campaign (or
// the contact's current choice, on /p) offers, without duplicates, in the
// order offered.
func offered(sent []string, options []invite.Interest) []string {
	var out []string
	for _, o := range options {
		if slices.Contains(sent, o.Name) && !slices.Contains(out, o.Name) {
			out = append(out, o.Name)
		}
	}
	return out
}

// recordVisit logs a GET or HEAD of a page: a row in visits and the
// invitation's counters. It records nothing else: a visit is never consent.
// An erased contact's visits are not logged (the user agent is personal).
func (s *Server) recordVisit(r *http.Request, inv *invitation, page string) {
	if inv.Erased {
		return
	}
	ua := clip(r.UserAgent(), 512)
	err := s.write(r.Context(), func(tx *crm.Tx) error {
		now := crm.FormatTime(tx.Now)
		if _, err := tx.ExecCached(`INSERT INTO visits (invitation_id, page, method, at, user_agent) VALUES (?, ?, ?, ?, ?)`,
			inv.ID, page, r.Method, now, ua); err != nil {
			return err
		}
		_, err := tx.ExecCached(`UPDATE invitations SET visits = visits + 1,
			first_visit_at = CASE WHEN first_visit_at = '' THEN ? ELSE first_visit_at END WHERE id = ?`, now, inv.ID)
		return err
	})
	if err != nil && r.Context().Err() == nil {
		// The page still shows: a lost visit log must not stop a person.
		s.log.Error("record visit", "invitation", inv.ID, "err", err)
	}
}

// clip cuts s to at most n bytes (on a rune boundary).
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// parsePostBody is ParseForm for a url-encoded POST without a query
// string (every form of these pages): the same values and errors, in one
// map that serves as both PostForm and Form, where ParseForm builds a
// second map and copies each value into it (~2 µs of a confirmation).
// The body is read within the server's MaxBytesReader (at most 10 MiB,
// ParseForm's own cap).
func parsePostBody(r *http.Request) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		r.PostForm, r.Form = url.Values{}, url.Values{}
		return err
	}
	vs, err := url.ParseQuery(string(b))
	r.PostForm, r.Form = vs, vs
	return err
}

// parseForm reads a url-encoded or multipart body (RFC 8058 allows both for
// one-click unsubscribes). It returns the status to answer when it fails:
// 413 for a body over the limit, 400 otherwise.
func parseForm(r *http.Request, limit int64) (int, error) {
	var err error
	// The forms post url-encoded bodies; only another type needs parsing
	// (mime.ParseMediaType allocates a map on every call).
	mt := r.Header.Get("Content-Type")
	if mt != "application/x-www-form-urlencoded" {
		mt, _, _ = mime.ParseMediaType(mt)
	}
	switch {
	case mt == "multipart/form-data":
		err = r.ParseMultipartForm(limit)
	case mt == "application/x-www-form-urlencoded" && r.URL.RawQuery == "" && r.Form == nil &&
		r.Body != nil && limit <= 10<<20 && r.Method == http.MethodPost:
		err = parsePostBody(r)
	default:
		err = r.ParseForm()
	}
	if err == nil {
		return 0, nil
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, err
	}
	return http.StatusBadRequest, err
}
