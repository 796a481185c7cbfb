package segments

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that the parser never panics, that an error names a
// position inside the rule, that the canonical form of a valid rule parses
// back to the same rule, and that the SQL of a rule never depends on its
// values (user text never becomes SQL).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"interest:offers AND (country:DE OR country:AT) AND NOT tag:vip AND confirmed:<90d",
		`tag:"summer \"sale\"" OR attr.city:Berlin`,
		"confirmed:>=2025-01-31 and not (language:de or source:import:mailchimp)",
		"((", `"`, "a:", "NOT", "interest:a OR", "campaign:x)", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) = %v, not a *ParseError", s, err)
			}
			if max := utf8.RuneCountInString(s) + 1; pe.Pos < 1 || (pe.Pos > max && len(s) <= maxRuleBytes) {
				t.Fatalf("Parse(%q): position %d outside 1..%d", s, pe.Pos, max)
			}
			return
		}
		canon := r.String()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", canon, s, err)
		}
		if !reflect.DeepEqual(again.root, r.root) || again.String() != canon {
			t.Fatalf("canonical %q of %q parses to a different rule %q", canon, s, again.String())
		}
		w := r.compile(testNow)
		if strings.Count(w.sql, "?") != len(w.args) {
			t.Fatalf("%q: %d placeholders, %d args", s, strings.Count(w.sql, "?"), len(w.args))
		}
		if r.root != nil {
			blank(r.root)
			if w2 := r.compile(testNow); w2.sql != w.sql {
				t.Fatalf("%q: the SQL depends on the values:\n%s\n%s", s, w.sql, w2.sql)
			}
		}
	})
}

// blank replaces every value and attribute name of a tree.
func blank(n node) {
	switch n := n.(type) {
	case *andNode:
		for _, t := range n.terms {
			blank(t)
		}
	case *orNode:
		for _, t := range n.terms {
			blank(t)
		}
	case *notNode:
		blank(n.x)
	case *matchNode:
		n.value, n.attr = "x", "y"
	}
}
