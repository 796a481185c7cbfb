package segments

import (
	"fmt"
	"strings"
)

// Column is one column of an export: the header written and the field it
// holds. Field is a field name (see Fields), attr.NAME for an imported
// attribute, or "=TEXT" for a constant.
type Column struct {
	Header string
	Field  string
}

// Preset is an export format a WhatsApp provider imports. Presets are data:
// a new provider is a few lines in Presets.
type Preset struct {
	Name        string
	Description string
	Columns     []Column
	// Attributes appends one column per attribute key found in the
	// segment (sorted), after Columns.
	Attributes bool
}

// DefaultColumns are the columns of the csv and jsonl formats.
func DefaultColumns() []string {
	return []string{"phone_e164", "first_name", "last_name", "language", "country", "interests", "tags",
		"opted_in_at", "consent_statement_sha256", "consent_event_id"}
}

// Presets lists the provider formats.
func Presets() []Preset {
	return []Preset{
		{
			Name:        "interakt",
			Description: "Interakt contact import: name, country code and number apart, WhatsApp Opted TRUE, then attributes",
			Columns: []Column{
				{"Name", "full_name"},
				{"Country Code", "country_code"},
				{"Phone Number", "national_number"},
				{"Email", "email"},
				{"WhatsApp Opted", "=TRUE"},
			},
			Attributes: true,
		},
		{
			Name:        "twilio",
			Description: "Twilio: the WhatsApp address whatsapp:+E164 the Messages API takes",
			Columns: []Column{
				{"to", "whatsapp"},
				{"first_name", "first_name"},
				{"last_name", "last_name"},
				{"language", "language"},
				{"country", "country"},
				{"interests", "interests"},
			},
		},
		{
			Name:        "digits",
			Description: "country code and number as digits without '+' (Gupshup and others)",
			Columns: []Column{
				{"phone", "phone_digits"},
				{"country_code", "country_code"},
				{"national_number", "national_number"},
				{"first_name", "first_name"},
				{"last_name", "last_name"},
				{"language", "language"},
				{"country", "country"},
				{"interests", "interests"},
			},
		},
	}
}

// Formats lists every --format value.
func Formats() []string {
	out := []string{"csv", "jsonl"}
	for _, p := range Presets() {
		out = append(out, p.Name)
	}
	return out
}

func presetByName(name string) (Preset, bool) {
	for _, p := range Presets() {
		if p.Name == name {
			return p, true
		}
	}
	return Preset{}, false
}

// valueKind says how an exporter writes a value.
type valueKind int

const (
	kindText  valueKind = iota
	kindInt             // a number in JSON
	kindList            // a list (unit-separated from SQL): '|'-joined in CSV, an array in JSON
	kindJSON            // a JSON object from the store, embedded as is in JSON
	kindConst           // Column.Field "=TEXT"
	kindPhone           // derived from phone_e164 by a phoneForm
	kindCSV             // several CSV fields already joined (see plan.addPlainRun)
)

// phoneForm is a way of writing an E.164 number.
type phoneForm int

const (
	phoneWhatsApp phoneForm = iota + 1 // whatsapp:+4915112345678
	phoneDigits                        // 4915112345678
	phoneCC                            // 49
	phoneNational                      // 15112345678
)

// fieldSpec is where a field comes from: a SQL expression over the aliases
// of baseFrom (with its parameters), or a form of the phone number.
type fieldSpec struct {
	sql     string
	args    []any
	kind    valueKind
	contact bool // reads c (the contact row; whatsapp_audience has the rest)
	phone   phoneForm
}

// unitSep separates list items in SQL results; no interest or tag holds it.
const unitSep = "\x1f"

// FieldNames lists the fields --columns accepts (besides attr.NAME).
func FieldNames() []string {
	return []string{"phone_e164", "first_name", "last_name", "full_name", "email", "language", "country", "source",
		"external_id", "interests", "tags", "attributes", "opted_in_at", "consent_statement_sha256",
		"consent_statement_version", "consent_event_id", "campaign", "contact_id", "whatsapp", "phone_digits",
		"country_code", "national_number"}
}

// field resolves a field name.
func field(name string) (fieldSpec, error) {
	switch name {
	case "phone_e164", "first_name", "last_name", "language", "country", "source", "campaign", "opted_in_at":
		return fieldSpec{sql: "o." + name}, nil
	case "external_id":
		return fieldSpec{sql: "c.external_id", contact: true}, nil
	case "full_name":
		return fieldSpec{sql: "trim(o.first_name || ' ' || o.last_name)"}, nil
	case "email":
		return fieldSpec{sql: "coalesce(c.email, '')", contact: true}, nil
	case "interests":
		// Kept in order, char(31)-separated, by the triggers that maintain
		// whatsapp_audience.
		return fieldSpec{sql: "o.interests", kind: kindList}, nil
	case "tags":
		// Kept as a list by the triggers, as interests (migration 0009).
		return fieldSpec{sql: "o.tag_list", kind: kindList}, nil
	case "attributes":
		return fieldSpec{sql: "c.attributes", kind: kindJSON, contact: true}, nil
	case "consent_statement_sha256":
		return fieldSpec{sql: "o.statement_sha256"}, nil
	case "consent_statement_version":
		return fieldSpec{sql: "o.statement_version"}, nil
	case "consent_event_id":
		return fieldSpec{sql: "o.consent_event_id", kind: kindInt}, nil
	case "contact_id":
		return fieldSpec{sql: "o.contact_id", kind: kindInt}, nil
	case "whatsapp":
		return fieldSpec{kind: kindPhone, phone: phoneWhatsApp}, nil
	case "phone_digits":
		return fieldSpec{kind: kindPhone, phone: phoneDigits}, nil
	case "country_code":
		return fieldSpec{kind: kindPhone, phone: phoneCC}, nil
	case "national_number":
		return fieldSpec{kind: kindPhone, phone: phoneNational}, nil
	}
	if strings.HasPrefix(name, "=") {
		return fieldSpec{kind: kindConst}, nil
	}
	if key, ok := strings.CutPrefix(name, "attr."); ok && key != "" {
		return fieldSpec{sql: "coalesce((SELECT a.value FROM json_each(c.attributes) a WHERE a.key = ?), '')", args: []any{key}, contact: true}, nil
	}
	return fieldSpec{}, fmt.Errorf("unknown column %q: use %s or attr.NAME", name, strings.Join(FieldNames(), ", "))
}
