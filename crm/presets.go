package crm

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Fields an import column can map to (besides "attr.NAME" and "ignore").
const (
	FieldEmail        = "email"
	FieldFirstName    = "first_name"
	FieldLastName     = "last_name"
	FieldFullName     = "name"
	FieldPhone        = "phone"
	FieldPhoneAlt     = "phone_alt" // used when phone is empty (e.g. Salesforce Phone after MobilePhone)
	FieldCountry      = "country"
	FieldLanguage     = "language"
	FieldTags         = "tags"
	FieldExternalID   = "external_id"
	FieldStatus       = "status"        // subscribed, unsubscribed, cleaned, blocklisted, complained, never
	FieldEmailConsent = "email_consent" // yes/no, true/false, SUBSCRIBED/UNSUBSCRIBED/NEVER_SUBSCRIBED
	FieldOptOut       = "email_optout"  // true means unsubscribed (HubSpot, Salesforce)
	FieldBlocklisted  = "blocklisted"   // true means blocklisted (Brevo)
	FieldConfirmation = "email_confirmation"
	FieldSuppressions = "email_suppressions" // Klaviyo's suppression list column
	FieldConsentTime  = "consent_time"
	FieldOptinTime    = "optin_time"
	FieldOptinIP      = "optin_ip"
	FieldConfirmTime  = "confirm_time"
	FieldConfirmIP    = "confirm_ip"
	FieldUnsubTime    = "unsub_time"
	FieldCleanTime    = "clean_time"
	FieldMarketing    = "marketing_status" // HubSpot marketing contact status
	FieldIgnore       = "ignore"
)

var knownFields = []string{FieldEmail, FieldFirstName, FieldLastName, FieldFullName, FieldPhone, FieldPhoneAlt,
	FieldCountry, FieldLanguage, FieldTags, FieldExternalID, FieldStatus, FieldEmailConsent, FieldOptOut,
	FieldBlocklisted, FieldConfirmation, FieldSuppressions, FieldConsentTime, FieldOptinTime, FieldOptinIP,
	FieldConfirmTime, FieldConfirmIP, FieldUnsubTime, FieldCleanTime, FieldMarketing, FieldIgnore}

// Preset describes one CRM's export: which header names mean which field.
// Presets are data: a new CRM is a new entry. Headers are matched by their
// key (lower case, letters and digits only), never by position.
type Preset struct {
	Name string
	// Columns maps a field to the header spellings that carry it, in
	// order of preference.
	Columns map[string][]string
	// Ignore lists system columns that are not worth keeping as attributes.
	Ignore []string
	// Detect reports whether a header is this CRM's export; keys holds
	// the header's keys (headerKey), raw the header as written.
	Detect func(keys map[string]bool, raw []string) bool
}

// Preset names.
const (
	PresetAuto       = "auto"
	PresetMailchimp  = "mailchimp"
	PresetHubSpot    = "hubspot"
	PresetKlaviyo    = "klaviyo"
	PresetBrevo      = "brevo"
	PresetSalesforce = "salesforce"
	PresetGeneric    = "generic"
)

// PresetNames lists the presets --preset accepts.
var PresetNames = []string{PresetAuto, PresetMailchimp, PresetHubSpot, PresetKlaviyo, PresetBrevo, PresetSalesforce, PresetGeneric}

func presets() []Preset {
	return []Preset{
		{
			Name: PresetMailchimp,
			Columns: map[string][]string{
				FieldEmail:       {"Email Address", "Email"},
				FieldFirstName:   {"First Name", "FNAME"},
				FieldLastName:    {"Last Name", "LNAME"},
				FieldPhone:       {"Phone Number", "Phone", "PHONE", "Mobile", "WhatsApp"},
				FieldCountry:     {"CC"},
				FieldLanguage:    {"Language"},
				FieldTags:        {"TAGS"},
				FieldExternalID:  {"EUID"},
				FieldOptinTime:   {"OPTIN_TIME"},
				FieldOptinIP:     {"OPTIN_IP"},
				FieldConfirmTime: {"CONFIRM_TIME"},
				FieldConfirmIP:   {"CONFIRM_IP"},
				FieldUnsubTime:   {"UNSUB_TIME"},
				FieldCleanTime:   {"CLEAN_TIME"},
				FieldConsentTime: {"LAST_CHANGED"},
			},
			Ignore: []string{"MEMBER_RATING", "LATITUDE", "LONGITUDE", "GMTOFF", "DSTOFF", "TIMEZONE", "REGION",
				"LEID", "NOTES", "UNSUB_CAMPAIGN_TITLE", "UNSUB_CAMPAIGN_ID", "UNSUB_REASON", "UNSUB_REASON_OTHER",
				"CLEAN_CAMPAIGN_TITLE", "CLEAN_CAMPAIGN_ID"},
			Detect: func(k map[string]bool, _ []string) bool {
				return k["emailaddress"] && (k["memberrating"] || k["optintime"] || k["leid"] || k["euid"])
			},
		},
		{
			Name: PresetHubSpot,
			Columns: map[string][]string{
				FieldEmail:        {"Email"},
				FieldFirstName:    {"First Name"},
				FieldLastName:     {"Last Name"},
				FieldPhone:        {"Mobile Phone Number", "Phone Number", "WhatsApp Phone Number"},
				FieldCountry:      {"Country/Region Code", "Country/Region", "Country"},
				FieldLanguage:     {"Preferred language"},
				FieldExternalID:   {"Record ID"},
				FieldOptOut:       {"Unsubscribed from all email"},
				FieldConfirmation: {"Marketing email confirmation", "Marketing email confirmation status"},
				FieldMarketing:    {"Marketing contact status"},
				FieldConsentTime:  {"Create Date"},
			},
			Detect: func(k map[string]bool, _ []string) bool {
				return k["recordid"] && k["email"]
			},
		},
		{
			Name: PresetKlaviyo,
			Columns: map[string][]string{
				FieldEmail:        {"Email"},
				FieldFirstName:    {"First Name"},
				FieldLastName:     {"Last Name"},
				FieldPhone:        {"Phone Number"},
				FieldCountry:      {"Country"},
				FieldLanguage:     {"Language", "Locale"},
				FieldExternalID:   {"Klaviyo ID", "Profile ID", "Id"},
				FieldEmailConsent: {"Email Marketing Consent"},
				FieldConsentTime:  {"Email Marketing Consent Timestamp"},
				FieldSuppressions: {"Email Suppressions"},
			},
			Detect: func(k map[string]bool, _ []string) bool { return k["emailmarketingconsent"] },
		},
		{
			Name: PresetBrevo,
			Columns: map[string][]string{
				FieldEmail:       {"EMAIL"},
				FieldFirstName:   {"FIRSTNAME", "PRENOM", "VORNAME"},
				FieldLastName:    {"LASTNAME", "NOM", "NACHNAME"},
				FieldPhone:       {"WHATSAPP"},
				FieldPhoneAlt:    {"SMS"},
				FieldCountry:     {"COUNTRY"},
				FieldLanguage:    {"LANGUAGE"},
				FieldExternalID:  {"CONTACT ID", "ID"},
				FieldBlocklisted: {"BLOCKLISTED", "BLACKLISTED", "EMAIL_BLACKLISTED", "EMAIL BLACKLISTED", "EMAIL_BLOCKLISTED"},
				FieldConsentTime: {"ADDED_TIME", "DATE_CREATION", "CREATED_AT"},
			},
			// Brevo writes its attribute names in capitals: EMAIL;FIRSTNAME;SMS.
			Detect: func(k map[string]bool, raw []string) bool {
				return slices.Contains(raw, "EMAIL") &&
					(k["sms"] || k["whatsapp"] || k["blacklisted"] || k["blocklisted"] || k["emailblacklisted"])
			},
		},
		{
			Name: PresetSalesforce,
			Columns: map[string][]string{
				FieldEmail:       {"Email"},
				FieldFirstName:   {"FirstName"},
				FieldLastName:    {"LastName"},
				FieldPhone:       {"MobilePhone"},
				FieldPhoneAlt:    {"Phone"},
				FieldCountry:     {"MailingCountryCode", "MailingCountry"},
				FieldExternalID:  {"Id"},
				FieldOptOut:      {"HasOptedOutOfEmail"},
				FieldConsentTime: {"CreatedDate"},
			},
			Detect: func(k map[string]bool, _ []string) bool {
				return k["hasoptedoutofemail"] || (k["firstname"] && k["lastname"] && k["email"] && k["id"])
			},
		},
		{
			Name: PresetGeneric,
			Columns: map[string][]string{
				FieldEmail:        {"email", "e-mail", "email address", "mail", "emailaddress"},
				FieldFirstName:    {"first name", "firstname", "given name", "vorname"},
				FieldLastName:     {"last name", "lastname", "surname", "family name", "nachname"},
				FieldFullName:     {"name", "full name"},
				FieldPhone:        {"whatsapp", "mobile", "mobile phone", "phone", "phone number", "telephone"},
				FieldCountry:      {"country", "country code", "land", "pays", "pais"},
				FieldLanguage:     {"language", "lang", "locale"},
				FieldTags:         {"tags", "tag"},
				FieldExternalID:   {"id", "external id", "customer id"},
				FieldStatus:       {"status"},
				FieldEmailConsent: {"email consent", "consent", "opted in", "optin", "subscribed", "marketing consent"},
				FieldConsentTime:  {"consent time", "opted in at", "optin time", "subscribed at"},
			},
			Detect: func(k map[string]bool, _ []string) bool { return true },
		},
	}
}

// headerKey is how header names are compared: case, spaces and punctuation
// do not matter ("Email Address", "EMAIL_ADDRESS" and "email address" agree).
func headerKey(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// columnMapping says, per column of a file, which field it fills.
type columnMapping struct {
	preset string
	fields []string // per column: a field, "attr.NAME" or FieldIgnore
	index  map[string]int
}

func (m *columnMapping) col(field string) int {
	if i, ok := m.index[field]; ok {
		return i
	}
	return -1
}

// choosePreset picks the preset for a header: the named one, or for auto the
// first whose Detect matches.
func choosePreset(name string, header []string) (Preset, error) {
	keys := map[string]bool{}
	for _, h := range header {
		keys[headerKey(h)] = true
	}
	all := presets()
	if name == "" || name == PresetAuto {
		for _, p := range all {
			if p.Detect(keys, header) {
				return p, nil
			}
		}
	}
	for _, p := range all {
		if p.Name == name {
			return p, nil
		}
	}
	return Preset{}, fmt.Errorf("unknown preset %q (use one of %s)", name, strings.Join(PresetNames, ", "))
}

// ParseMap parses --map 'Header=field,Other Header=attr.name'.
func ParseMap(spec string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(spec) == "" {
		return out, nil
	}
	for _, part := range strings.Split(spec, ",") {
		h, f, ok := strings.Cut(part, "=")
		h, f = strings.TrimSpace(h), strings.TrimSpace(f)
		if !ok || h == "" || f == "" {
			return nil, fmt.Errorf("--map entry %q is not Header=field", part)
		}
		if !strings.HasPrefix(f, "attr.") && !slices.Contains(knownFields, f) {
			return nil, fmt.Errorf("--map entry %q: unknown field %q (fields: %s, or attr.NAME)", part, f, strings.Join(knownFields, ", "))
		}
		out[headerKey(h)] = f
	}
	return out, nil
}

// mapColumns assigns each column of header a field: --map entries first,
// then the preset's spellings (the first spelling found wins a field),
// the preset's ignored system columns, and everything else as an attribute.
func mapColumns(p Preset, header []string, overrides map[string]string) (*columnMapping, error) {
	m := &columnMapping{preset: p.Name, fields: make([]string, len(header)), index: map[string]int{}}
	keys := make([]string, len(header))
	for i, h := range header {
		keys[i] = headerKey(h)
	}
	assigned := map[string]bool{}
	for i, k := range keys {
		if f, ok := overrides[k]; ok {
			m.fields[i] = f
			assigned[f] = true
		}
	}
	for _, field := range knownFields {
		if assigned[field] {
			continue
		}
		for _, spelling := range p.Columns[field] {
			sk := headerKey(spelling)
			i := slices.Index(keys, sk)
			if i >= 0 && m.fields[i] == "" {
				m.fields[i] = field
				break
			}
		}
	}
	ignore := map[string]bool{}
	for _, h := range p.Ignore {
		ignore[headerKey(h)] = true
	}
	for i, h := range header {
		if m.fields[i] != "" {
			continue
		}
		if ignore[keys[i]] || keys[i] == "" {
			m.fields[i] = FieldIgnore
			continue
		}
		m.fields[i] = "attr." + strings.TrimSpace(h)
	}
	for i, f := range m.fields {
		if f == FieldIgnore || strings.HasPrefix(f, "attr.") {
			continue
		}
		if _, dup := m.index[f]; dup {
			return nil, fmt.Errorf("two columns map to %s (%q and %q); fix --map", f, header[m.index[f]], header[i])
		}
		m.index[f] = i
	}
	if m.col(FieldEmail) < 0 {
		return nil, fmt.Errorf("no email column found in the header (%s preset); name it with --map 'Your Header=email'", p.Name)
	}
	return m, nil
}
