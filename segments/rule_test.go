package segments

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseCanonical(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"   ", ""},
		{"interest:offers", "interest:offers"},
		{"Interest:offers and Country:DE", "interest:offers AND country:DE"},
		{"interest:offers AND (country:DE OR country:AT) AND NOT tag:vip AND confirmed:<90d",
			"interest:offers AND (country:DE OR country:AT) AND NOT tag:vip AND confirmed:<90d"},
		{"((interest:a))", "interest:a"},
		{"not not tag:x", "tag:x"},
		{"NOT (tag:a AND tag:b)", "NOT (tag:a AND tag:b)"},
		{"tag:a or tag:b and tag:c", "tag:a OR tag:b AND tag:c"},
		{"(tag:a or tag:b) and tag:c", "(tag:a OR tag:b) AND tag:c"},
		{"tag:a and (tag:b and tag:c)", "tag:a AND tag:b AND tag:c"},
		{`tag:"summer sale"`, `tag:"summer sale"`},
		{`tag:"say \"hi\" \\ bye"`, `tag:"say \"hi\" \\ bye"`},
		{`tag:""`, `tag:""`},
		{`source:import:mailchimp`, `source:import:mailchimp`},
		{`tag:and`, `tag:and`},
		{`attr.City:Berlin`, `attr.City:Berlin`},
		{`ATTR.plan:"gold (annual)"`, `attr.plan:"gold (annual)"`},
		{`confirmed:>=1y OR confirmed:<=12h OR confirmed:>2w`, `confirmed:>=1y OR confirmed:<=12h OR confirmed:>2w`},
		{`confirmed:2025-01-31`, `confirmed:2025-01-31`},
		{`confirmed:<2025-01-31`, `confirmed:<2025-01-31`},
		{"campaign:spring-2025\tAND\nlanguage:de", "campaign:spring-2025 AND language:de"},
		{`country:Ö`, `country:Ö`},
	}
	for _, c := range cases {
		r, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := r.String(); got != c.want {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, got, c.want)
		}
		again, err := Parse(r.String())
		if err != nil || !reflect.DeepEqual(again.root, r.root) {
			t.Errorf("canonical form %q does not parse back to the same rule: %v", r.String(), err)
		}
		if r.Text() != c.in {
			t.Errorf("Text() = %q, want the rule as written %q", r.Text(), c.in)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		in       string
		pos      int
		expected string // a substring of Expected
		found    string
		hint     string // a substring of Hint
	}{
		{"interest:", 10, `a value after "interest:"`, "end of rule", `""`},
		{"interest", 9, `":" after "interest"`, "end of rule", "interest:offers"},
		{"interest :offers", 9, `":" after "interest"`, "a space", ""},
		{"contry:DE", 1, "a field: interest, country", `"contry"`, "did you mean country?"},
		{"intrest:x", 1, "a field", `"intrest"`, "did you mean interest?"},
		{"bogus:x", 1, "a field", `"bogus"`, ""},
		{"attr.:x", 6, `an attribute name after "attr."`, `":"`, "attr.city"},
		{"interest:a AND", 15, "a condition", "end of rule", ""},
		{"interest:a OR OR tag:b", 15, "a condition", `"OR"`, ""},
		{"AND tag:b", 1, "a condition", `"AND"`, ""},
		{"(tag:a", 7, `AND, OR or ")"`, "end of rule", `"(" at position 1`},
		{"tag:a)", 6, "AND, OR or the end of the rule", `")"`, ""},
		{"tag:a tag:b", 7, "AND, OR or the end of the rule", `"tag"`, ""},
		{"()", 2, "a condition", `")"`, ""},
		{`tag:"open`, 10, "a closing quote", "end of rule", "position 5"},
		{`tag:"a"b`, 8, "after the closing quote", `"b"`, ""},
		{`tag:a"b`, 6, "end of the value", `"\""`, `tag:"a b"`},
		{`tag:"a\n"`, 7, `\" or \\ after a backslash`, `"n"`, ""},
		{`"tag":x`, 1, "a condition", `"\""`, ""},
		{`:x`, 1, "a condition", `":"`, ""},
		{"confirmed:90d", 11, "<, <=, > or >= before an age", `"90d"`, "confirmed:<90d"},
		{"confirmed:<90m", 12, "an age such as 90d", `"90m"`, ""},
		{"confirmed:<d", 12, "an age such as 90d", `"d"`, ""},
		{"confirmed:<-5d", 12, "an age such as 90d", `"-5d"`, ""},
		{"confirmed:<99999999y", 12, "an age", `"99999999y"`, "100 years"},
		{"confirmed:<2025-02-30", 12, "an age such as 90d", `"2025-02-30"`, ""},
		{"confirmed:", 11, `a value after "confirmed:"`, "end of rule", ""},
		{"tag:ä AND bögus:1", 11, "a field", `"bögus"`, ""},
		{"tag:x AND " + strings.Repeat("(", 70) + "tag:y", 75, "a simpler rule", "", "levels"},
		{"tag:\xff", 5, "UTF-8 text", "an invalid byte", ""},
	}
	for _, c := range cases {
		_, err := Parse(c.in)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) = %v, want a *ParseError", c.in, err)
			continue
		}
		if pe.Pos != c.pos || !strings.Contains(pe.Expected, c.expected) || (c.found != "" && pe.Found != c.found) ||
			!strings.Contains(pe.Hint, c.hint) {
			t.Errorf("Parse(%q):\n got pos %d expected %q found %q hint %q\nwant pos %d expected ~%q found %q hint ~%q",
				c.in, pe.Pos, pe.Expected, pe.Found, pe.Hint, c.pos, c.expected, c.found, c.hint)
		}
		if msg := err.Error(); !strings.Contains(msg, "position") || !strings.Contains(msg, "expected") {
			t.Errorf("Parse(%q) message %q does not name the position and what was expected", c.in, msg)
		}
	}
}

func TestParseLimits(t *testing.T) {
	long := strings.Repeat("tag:a OR ", 300) + "tag:a"
	if _, err := Parse(long); err == nil || !strings.Contains(err.Error(), "conditions") {
		t.Errorf("a rule of 301 conditions: %v, want a limit error", err)
	}
	huge := strings.Repeat("x", maxRuleBytes+1)
	if _, err := Parse(huge); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("a rule over %d bytes: %v, want a limit error", maxRuleBytes, err)
	}
}

// TestCompileKeepsValuesOutOfSQL checks the promise that user text never
// becomes SQL: the SQL of a rule is the same whatever its values are.
func TestCompileKeepsValuesOutOfSQL(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	a := MustParse(`interest:offers AND attr.city:Berlin AND language:de AND campaign:x AND confirmed:<30d`).compile(now)
	b := MustParse(`interest:"'); DROP TABLE contacts; --" AND attr.x';--:"1' OR '1'='1" AND language:"%_\\" AND campaign:"?" AND confirmed:<5y`).compile(now)
	if a.sql != b.sql {
		t.Fatalf("SQL depends on the values:\n%s\n%s", a.sql, b.sql)
	}
	if strings.Count(a.sql, "?") != len(a.args) {
		t.Fatalf("%d placeholders for %d args", strings.Count(a.sql, "?"), len(a.args))
	}
	if !a.contact {
		t.Error("an attribute condition must join the contact row")
	}
}
