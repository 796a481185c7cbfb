package crm

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Email statuses an export can give a row.
const (
	StatusSubscribed   = "subscribed"
	StatusUnsubscribed = "unsubscribed"
	StatusCleaned      = "cleaned"
	StatusBlocklisted  = "blocklisted"
	StatusComplained   = "complained"
	StatusNever        = "never"
)

// importRow is a normalised row on its way to the writer.
type importRow struct {
	line    int
	fields  []string // the original row, for the rejects file
	reject  string   // why the row is rejected ("" when it is fine)
	contact ContactInput
	consent importedConsent
	// emailHash is computed by the worker (an HMAC per row is worth
	// moving off the writer), and so is the contact the row creates
	// when its email is new (see import_write.go).
	emailHash string
	prepared  preparedContact

	// Filled by the writer.
	outcome    string
	events     int
	suppressed int
}

// importedConsent is what the export says about email consent.
type importedConsent struct {
	status string
	at     time.Time
	method string
	// tail is the event's canonical JSON from "method" on and
	// evidenceText the evidence as stored (evidenceJSON's bytes, a part
	// of tail), both encoded by the worker.
	evidenceText string
	tail         string
}

// normalizer turns raw CSV records of one file into importRows. It is
// read-only after construction, so workers share it.
type normalizer struct {
	file          string
	header        []string
	mapping       *columnMapping
	defaultRegion string
	fileStatus    string
	salt          []byte // the store's, for each worker's keyedHasher
}

// normalize turns one record into an importRow; h is the calling worker's.
func (n *normalizer) normalize(rr rawRow, h *keyedHasher) importRow {
	r := importRow{line: rr.line, fields: rr.fields}
	if len(rr.fields) == 2 && rr.fields[0] == "!csv" {
		r.fields = nil
		r.reject = "malformed CSV: " + rr.fields[1]
		return r
	}
	rec := rr.fields
	// The csv reader reuses nothing here, but keep our own copy of the row
	// for the rejects file.
	if len(rec) > len(n.header) {
		for _, extra := range rec[len(n.header):] {
			if strings.TrimSpace(extra) != "" {
				r.reject = fmt.Sprintf("row has %d fields but the header has %d (an unquoted delimiter inside a value?)", len(rec), len(n.header))
				return r
			}
		}
	}
	get := func(field string) string {
		i := n.mapping.col(field)
		if i < 0 || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	for _, f := range rec {
		if !utf8.ValidString(f) {
			r.reject = "not valid UTF-8 text: run the import again with --encoding windows-1252 (or latin1)"
			return r
		}
	}
	rawEmail := get(FieldEmail)
	email, err := NormalizeEmail(rawEmail)
	if err != nil {
		r.reject = "invalid email: " + err.Error()
		if rawEmail == "" {
			r.reject = "no email address"
		}
		return r
	}
	c := ContactInput{
		Email:      email,
		FirstName:  get(FieldFirstName),
		LastName:   get(FieldLastName),
		ExternalID: get(FieldExternalID),
		Source:     n.mapping.preset,
		Language:   normalizeLanguage(get(FieldLanguage)),
	}
	if c.FirstName == "" && c.LastName == "" {
		if full := get(FieldFullName); full != "" {
			c.FirstName, c.LastName, _ = strings.Cut(full, " ")
			c.LastName = strings.TrimSpace(c.LastName)
		}
	}
	country := get(FieldCountry)
	if len(country) == 2 {
		c.Country = strings.ToUpper(country)
	} else if country != "" {
		c.Attributes = map[string]string{"country": country}
	}
	c.PhoneRaw = get(FieldPhone)
	if c.PhoneRaw == "" {
		c.PhoneRaw = get(FieldPhoneAlt)
	}
	if c.PhoneRaw != "" {
		region := c.Country
		if region == "" {
			region = n.defaultRegion
		}
		c.Phone, c.Country = normalizePhone(c.PhoneRaw, region, c.Country)
	}
	c.Tags = parseTags(get(FieldTags))
	for i, f := range n.mapping.fields {
		if name, ok := strings.CutPrefix(f, "attr."); ok && i < len(rec) {
			if v := strings.TrimSpace(rec[i]); v != "" {
				if c.Attributes == nil {
					c.Attributes = map[string]string{}
				}
				c.Attributes[name] = v
			}
		}
	}
	r.contact = c
	r.emailHash = h.email(email)
	r.prepared = prepareContact(c, h)
	r.consent = n.consent(get, rr.line)
	return r
}

// normalizePhone returns the E.164 form of raw ("" when libphonenumber does
// not consider it valid) and the country, filled from the number when the
// row had none.
func normalizePhone(raw, region, country string) (string, string) {
	num, err := phonenumbers.Parse(raw, region)
	if err != nil {
		return "", country
	}
	numRegion, ok := validNumberRegion(num, region)
	if !ok {
		return "", country
	}
	if country == "" {
		country = numRegion
	}
	return phonenumbers.Format(num, phonenumbers.E164), country
}

// validNumberRegion is phonenumbers.IsValidNumber with the region it
// found (GetRegionCodeForNumber), computed once. IsValidNumber checks the
// number against the patterns of each region of its country code until one
// fits, then checks that region's patterns again; for a country code that
// several regions share (+1, +44, +7, …) the number is usually written in
// the row's own region, which is the code's main region, the first that
// GetRegionCodeForNumber tries (and main regions have no leading-digits
// rule, so that try is the full pattern check). Checking that region first
// answers the same at half the cost: the validity check of a UK or US
// number written in its own region went from ~14 to ~6.5 µs. A number of
// another region of the code (a Guernsey mobile with region GB) pays one
// check more, ~19 -> ~26 µs; such rows are rare.
func validNumberRegion(num *phonenumbers.PhoneNumber, region string) (string, bool) {
	cc := int(num.GetCountryCode())
	if region != "" && phonenumbers.GetRegionCodeForCountryCode(cc) == region {
		if phonenumbers.IsValidNumberForRegion(num, region) {
			return region, true
		}
		if len(phonenumbers.GetRegionCodesForCountryCode(cc)) == 1 {
			return region, false // the only region said no: IsValidNumber's answer too
		}
	}
	r := phonenumbers.GetRegionCodeForNumber(num)
	return r, phonenumbers.IsValidNumberForRegion(num, r)
}

// NormalizePhone is the E.164 form of a number typed by a person or found in
// a file, with region as the default country ("" when not valid).
func NormalizePhone(raw, region string) string {
	p, _ := normalizePhone(raw, strings.ToUpper(region), "")
	return p
}

func normalizeLanguage(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.IndexAny(s, "-_"); i > 0 {
		s = s[:i]
	}
	if len(s) < 2 || len(s) > 3 {
		return ""
	}
	return s
}

// parseTags splits a tags cell. Mailchimp quotes each tag inside the
// quoted field ("Tag A","Tag B"); others separate with , ; or |.
func parseTags(v string) []string {
	if v == "" {
		return nil
	}
	var parts []string
	if strings.Contains(v, `"`) {
		parts = splitQuoted(v)
	} else {
		parts = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' || r == '|' })
	}
	var out []string
	for _, p := range parts {
		if t := normalizeTag(p); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// splitQuoted splits `"Tag A","Tag ""B""",Tag C` on commas outside quotes
// and unquotes each part (a csv.Reader per cell would allocate a 4 KiB
// buffer for every row).
func splitQuoted(v string) []string {
	var parts []string
	var b strings.Builder
	inQuotes := false
	for i := 0; i < len(v); i++ {
		ch := v[i]
		switch {
		case ch == '"' && inQuotes && i+1 < len(v) && v[i+1] == '"':
			b.WriteByte('"')
			i++
		case ch == '"':
			inQuotes = !inQuotes
		case ch == ',' && !inQuotes:
			parts = append(parts, b.String())
			b.Reset()
		default:
			b.WriteByte(ch)
		}
	}
	return append(parts, b.String())
}

// consent reads what the row says about email consent, with its evidence.
func (n *normalizer) consent(get func(string) string, line int) importedConsent {
	ic := importedConsent{method: "import:" + n.mapping.preset}
	// The evidence, as key/value pairs with unique keys (the map that
	// evidenceJSON encodes, without the map).
	evidence := make([][2]string, 0, 16)
	evidence = append(evidence, [2]string{"file", n.file}, [2]string{"line", strconv.Itoa(line)},
		[2]string{"preset", n.mapping.preset})
	for _, f := range []string{FieldOptinTime, FieldOptinIP, FieldConfirmTime, FieldConfirmIP, FieldUnsubTime,
		FieldCleanTime, FieldConsentTime, FieldStatus, FieldEmailConsent, FieldOptOut, FieldBlocklisted,
		FieldConfirmation, FieldSuppressions, FieldMarketing} {
		if v := get(f); v != "" {
			evidence = append(evidence, [2]string{f, v})
		}
	}
	ic.status = n.status(get)
	if ic.status != "" {
		evidence = setPair(evidence, "status", ic.status)
	}
	var times []string
	switch ic.status {
	case StatusSubscribed:
		times = []string{FieldConfirmTime, FieldOptinTime, FieldConsentTime}
	case StatusUnsubscribed, StatusBlocklisted, StatusComplained:
		times = []string{FieldUnsubTime, FieldConsentTime}
	case StatusCleaned:
		times = []string{FieldCleanTime}
	}
	for _, f := range times {
		if t, ok := parseExportTime(get(f)); ok {
			ic.at = t
			break
		}
	}
	ic.tail, ic.evidenceText = eventTail(ic.method, encodeEvidence(evidence))
	return ic
}

// setPair sets key to v in kv, replacing an existing pair.
func setPair(kv [][2]string, key, v string) [][2]string {
	for i := range kv {
		if kv[i][0] == key {
			kv[i][1] = v
			return kv
		}
	}
	return append(kv, [2]string{key, v})
}

// status decides the row's email status from the columns its CRM uses.
func (n *normalizer) status(get func(string) string) string {
	if v := get(FieldStatus); v != "" {
		if s := parseStatusWord(v); s != "" {
			return s
		}
	}
	if n.fileStatus != "" {
		return n.fileStatus
	}
	if v := strings.ToUpper(get(FieldSuppressions)); v != "" && v != "[]" {
		switch {
		case strings.Contains(v, "SPAM") || strings.Contains(v, "COMPLAINT"):
			return StatusComplained
		case strings.Contains(v, "BOUNCE") || strings.Contains(v, "INVALID"):
			return StatusCleaned
		default:
			return StatusUnsubscribed
		}
	}
	if n.mapping.col(FieldBlocklisted) >= 0 {
		if truthy(get(FieldBlocklisted)) {
			return StatusBlocklisted
		}
		return StatusSubscribed
	}
	if n.mapping.col(FieldOptOut) >= 0 {
		if truthy(get(FieldOptOut)) {
			return StatusUnsubscribed
		}
		if m := strings.ToLower(get(FieldMarketing)); strings.Contains(m, "non-marketing") || strings.Contains(m, "non marketing") {
			return StatusNever
		}
		if n.mapping.col(FieldConfirmation) >= 0 {
			// HubSpot: consent is a confirmed marketing email subscription.
			if c := strings.ToLower(get(FieldConfirmation)); truthy(c) || strings.HasPrefix(c, "confirmed") {
				return StatusSubscribed
			}
			return StatusNever
		}
		if v := get(FieldOptOut); v == "" {
			return StatusNever
		}
		return StatusSubscribed
	}
	if v := get(FieldEmailConsent); v != "" {
		if s := parseStatusWord(v); s != "" {
			return s
		}
		if truthy(v) {
			return StatusSubscribed
		}
		return StatusNever
	}
	return ""
}

func parseStatusWord(v string) string {
	switch strings.ToLower(strings.ReplaceAll(strings.TrimSpace(v), " ", "_")) {
	case "subscribed", "active", "opted_in", "optin", "opt-in", "granted":
		return StatusSubscribed
	case "unsubscribed", "opted_out", "optout", "opt-out", "withdrawn":
		return StatusUnsubscribed
	case "cleaned", "bounced", "hard_bounce", "hardbounce":
		return StatusCleaned
	case "blocklisted", "blacklisted":
		return StatusBlocklisted
	case "complained", "spam", "spam_complaint":
		return StatusComplained
	case "never_subscribed", "nonsubscribed", "non_subscribed", "never", "pending", "transactional":
		return StatusNever
	}
	return ""
}

func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "y", "1", "x", "ja", "oui", "si", "subscribed", "opted in":
		return true
	}
	return false
}

var exportTimeLayouts = []string{
	"2006-01-02 15:04:05",
	time.RFC3339Nano,
	"2006-01-02T15:04:05.000Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04",
	"2006-01-02",
	"01/02/2006 15:04",
	"01/02/2006",
	"02.01.2006 15:04",
	"02.01.2006",
}

// parseExportTime reads the time formats CRMs export. Times without a zone
// are taken as UTC (the raw text stays in the evidence).
func parseExportTime(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	for _, l := range exportTimeLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// importState is what a batch needs to know of the rows already stored:
// looked up once per batch (a few IN queries) instead of once per row, and
// kept current as the batch writes.
type importState struct {
	contacts   map[string]*Contact // by email hash
	current    map[int64]string    // email consent action by contact id
	suppressed map[string]bool     // email hashes suppressed for email
	// The transaction's time and what carries it (setNow), and scratch
	// space for canonical event JSON.
	now, contactTuple, eventTuple string
	tuples                        map[[2]string]string // by importState.tuple
	buf                           []byte
}

// applyImportBatch writes normalised rows in file order: each contact, then
// its email consent under the opt-outs-win rule.
func (tx *Tx) applyImportBatch(rows []importRow, fresh *freshContacts) error {
	if err := fresh.check(tx); err != nil {
		return err
	}
	st, err := tx.loadImportState(rows, fresh)
	if err != nil {
		return err
	}
	st.setNow(FormatTime(tx.Now))
	// Everything the batch reads back is in st, so new rows can be
	// gathered and written many per statement.
	tx.bulkMode = true
	defer func() { tx.bulkMode = false }()
	for i := range rows {
		r := &rows[i]
		if r.reject != "" {
			continue
		}
		var c Contact
		var outcome string
		if old := st.contacts[r.emailHash]; old == nil {
			c, outcome = r.prepared.contact, Created
			c.ID, err = tx.insertPreparedContact(&r.prepared, r.emailHash, st)
			fresh.created(r.emailHash, c.ID)
		} else {
			c, outcome, err = tx.upsertKnown(r.contact, r.emailHash, old)
		}
		if err == ErrErased {
			r.reject = "this address was erased (right to erasure); it is kept only on the suppression list and is not imported again"
			continue
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", r.line, err)
		}
		st.contacts[r.emailHash] = &c
		r.outcome = outcome
		if err := tx.applyImportedConsent(c.ID, r, st); err != nil {
			return fmt.Errorf("line %d: %w", r.line, err)
		}
		if i%bulkRows == bulkRows-1 {
			// Whole rows only, so that events never precede their contact.
			if err := tx.flushBulk(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (tx *Tx) loadImportState(rows []importRow, fresh *freshContacts) (*importState, error) {
	st := &importState{contacts: map[string]*Contact{}, current: map[int64]string{}, suppressed: map[string]bool{}}
	var hashes, lookup []any
	seen := map[string]bool{}
	for i := range rows {
		if h := rows[i].emailHash; rows[i].reject == "" && !seen[h] {
			seen[h] = true
			hashes = append(hashes, h)
			if fresh.mayExist(h) {
				lookup = append(lookup, h)
			}
		}
	}
	var ids []any
	err := inChunks(lookup, func(part []any, marks string) error {
		rs, err := tx.Query(`SELECT `+contactColumns+`, email_hash FROM contacts WHERE email_hash IN (`+marks+`)`, part...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var c Contact
			var h string
			if c, h, err = scanContactAndHash(rs); err != nil {
				return err
			}
			st.contacts[h] = &c
			ids = append(ids, c.ID)
		}
		return rs.Err()
	})
	if err != nil {
		return nil, err
	}
	err = inChunks(ids, func(part []any, marks string) error {
		rs, err := tx.Query(`SELECT contact_id, action FROM consent_current WHERE channel = 'email' AND contact_id IN (`+marks+`)`, part...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var id int64
			var action string
			if err := rs.Scan(&id, &action); err != nil {
				return err
			}
			st.current[id] = action
		}
		return rs.Err()
	})
	if err != nil {
		return nil, err
	}
	// A store without email suppressions (every first import) needs no
	// lookup: one probe instead of an IN query per 500 rows (~0.6 µs per
	// row in a 100,000-row profile).
	var anySuppressed bool
	if err := tx.row(`SELECT EXISTS (SELECT 1 FROM suppressions WHERE email_hash <> '' AND channel IN ('all', 'email'))`).Scan(&anySuppressed); err != nil {
		return nil, err
	}
	if !anySuppressed {
		return st, nil
	}
	err = inChunks(hashes, func(part []any, marks string) error {
		rs, err := tx.Query(`SELECT email_hash FROM suppressions WHERE channel IN ('all', 'email') AND email_hash IN (`+marks+`)`, part...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var h string
			if err := rs.Scan(&h); err != nil {
				return err
			}
			st.suppressed[h] = true
		}
		return rs.Err()
	})
	return st, err
}

// inChunks calls fn for slices of at most 500 values with the matching
// "?,?,…" placeholder list (SQLite limits bound parameters per statement).
func inChunks(vals []any, fn func(part []any, marks string) error) error {
	const size = 500
	for len(vals) > 0 {
		n := min(size, len(vals))
		if err := fn(vals[:n], strings.TrimSuffix(strings.Repeat("?,", n), ",")); err != nil {
			return err
		}
		vals = vals[n:]
	}
	return nil
}

// applyImportedConsent records the export's email consent. Opt-outs win: a
// withdrawn consent or a suppression is never undone by a "subscribed"
// row, in whichever order files come; and nothing is recorded twice, so a
// re-import adds no events.
func (tx *Tx) applyImportedConsent(id int64, r *importRow, st *importState) error {
	ic := r.consent
	suppress := func(reason string) error {
		added, err := tx.SuppressEmail(r.contact.Email, reason, ic.method)
		if added {
			r.suppressed++
		}
		if ch, _ := SuppressionChannel(reason); ch == ChannelEmail || ch == "all" {
			st.suppressed[r.emailHash] = true
		}
		return err
	}
	event := func(action string) error {
		r.events++
		st.current[id] = action
		return tx.appendImportedEvent(id, action, &ic, st)
	}
	cur := st.current[id]
	switch ic.status {
	case StatusSubscribed:
		if cur == ActionGranted || cur == ActionWithdrawn || st.suppressed[r.emailHash] {
			return nil
		}
		return event(ActionGranted)
	case StatusUnsubscribed, StatusBlocklisted, StatusComplained:
		reason := map[string]string{StatusUnsubscribed: ReasonUnsubscribed, StatusBlocklisted: ReasonBlocklisted,
			StatusComplained: ReasonComplained}[ic.status]
		if err := suppress(reason); err != nil {
			return err
		}
		if cur == ActionWithdrawn {
			return nil
		}
		return event(ActionWithdrawn)
	case StatusCleaned:
		return suppress(ReasonBounced)
	}
	return nil
}
