package crm

import (
	"encoding/csv"
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

	// Filled by the writer.
	outcome    string
	events     int
	suppressed int
}

// importedConsent is what the export says about email consent.
type importedConsent struct {
	status   string
	at       time.Time
	method   string
	evidence map[string]string
}

// normalizer turns raw CSV records of one file into importRows. It is
// read-only after construction, so workers share it.
type normalizer struct {
	file          string
	header        []string
	mapping       *columnMapping
	defaultRegion string
	fileStatus    string
}

func (n *normalizer) normalize(rr rawRow) importRow {
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
	r.consent = n.consent(get, rr.line)
	return r
}

// normalizePhone returns the E.164 form of raw ("" when libphonenumber does
// not consider it valid) and the country, filled from the number when the
// row had none.
func normalizePhone(raw, region, country string) (string, string) {
	num, err := phonenumbers.Parse(raw, region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", country
	}
	if country == "" {
		country = phonenumbers.GetRegionCodeForNumber(num)
	}
	return phonenumbers.Format(num, phonenumbers.E164), country
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
		r := csv.NewReader(strings.NewReader(v))
		r.LazyQuotes = true
		r.TrimLeadingSpace = true
		rec, err := r.Read()
		if err == nil {
			parts = rec
		}
	}
	if parts == nil {
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

// consent reads what the row says about email consent, with its evidence.
func (n *normalizer) consent(get func(string) string, line int) importedConsent {
	ic := importedConsent{method: "import:" + n.mapping.preset, evidence: map[string]string{
		"file": n.file, "line": strconv.Itoa(line), "preset": n.mapping.preset,
	}}
	for _, f := range []string{FieldOptinTime, FieldOptinIP, FieldConfirmTime, FieldConfirmIP, FieldUnsubTime,
		FieldCleanTime, FieldConsentTime, FieldStatus, FieldEmailConsent, FieldOptOut, FieldBlocklisted,
		FieldConfirmation, FieldSuppressions, FieldMarketing} {
		if v := get(f); v != "" {
			ic.evidence[f] = v
		}
	}
	ic.status = n.status(get)
	if ic.status != "" {
		ic.evidence["status"] = ic.status
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
	return ic
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

// applyImportRow writes one normalised row: the contact, then its email
// consent under the opt-outs-win rule.
func (tx *Tx) applyImportRow(r *importRow) error {
	if r.reject != "" {
		return nil
	}
	id, outcome, err := tx.UpsertContact(r.contact)
	if err == ErrErased {
		r.reject = "this address was erased (right to erasure); it is kept only on the suppression list and is not imported again"
		return nil
	}
	if err != nil {
		return err
	}
	r.outcome = outcome
	return tx.applyImportedConsent(id, r)
}

// applyImportedConsent records the export's email consent. Opt-outs win: a
// withdrawn consent or a suppression is never undone by a "subscribed"
// row, in whichever order files come; and nothing is recorded twice, so a
// re-import adds no events.
func (tx *Tx) applyImportedConsent(id int64, r *importRow) error {
	ic := r.consent
	suppress := func(reason string) error {
		added, err := tx.SuppressEmail(r.contact.Email, reason, ic.method)
		if added {
			r.suppressed++
		}
		return err
	}
	event := func(action string) error {
		r.events++
		return tx.AppendEvent(&Event{ContactID: id, Channel: ChannelEmail, Action: action, At: ic.at,
			Method: ic.method, Evidence: ic.evidence})
	}
	cur, err := tx.CurrentConsent(id, ChannelEmail)
	if err != nil {
		return err
	}
	switch ic.status {
	case StatusSubscribed:
		if cur.Action == ActionGranted || cur.Action == ActionWithdrawn {
			return nil
		}
		suppressed, err := tx.emailSuppressed(r.contact.Email)
		if err != nil || suppressed {
			return err
		}
		return event(ActionGranted)
	case StatusUnsubscribed, StatusBlocklisted, StatusComplained:
		reason := map[string]string{StatusUnsubscribed: ReasonUnsubscribed, StatusBlocklisted: ReasonBlocklisted,
			StatusComplained: ReasonComplained}[ic.status]
		if err := suppress(reason); err != nil {
			return err
		}
		if cur.Action == ActionWithdrawn {
			return nil
		}
		return event(ActionWithdrawn)
	case StatusCleaned:
		return suppress(ReasonBounced)
	}
	return nil
}

// emailSuppressed reports whether an address is on the suppression list
// for email.
func (tx *Tx) emailSuppressed(email string) (bool, error) {
	var n int
	err := tx.row(`SELECT count(*) FROM suppressions WHERE email_hash = ? AND channel IN ('all', 'email')`,
		tx.store.HashEmail(email)).Scan(&n)
	return n > 0, err
}
