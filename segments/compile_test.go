package segments

import (
	"strings"
	"testing"
)

// TestInterestAlternatives checks that interest terms ORed together (one
// probe with an IN list) select exactly what the same terms written
// without OR select, case-insensitively and mixed with other terms.
func TestInterestAlternatives(t *testing.T) {
	st := goldenStore(t) // Anna offers+recipes DE, Ben offers AT, Chloé events US, Dev none IN
	for _, c := range []struct {
		rule, same string
		want       int64
	}{
		{"interest:offers OR interest:recipes", "NOT (NOT interest:offers AND NOT interest:recipes)", 2},
		{"interest:RECIPES OR interest:Events", "NOT (NOT interest:recipes AND NOT interest:events)", 2},
		{"interest:offers OR interest:events OR country:IN", "NOT (NOT interest:offers AND NOT interest:events AND NOT country:IN)", 4},
		{"(interest:recipes OR interest:events) AND country:US", "NOT (NOT interest:recipes AND NOT interest:events) AND country:US", 1},
		{"NOT (interest:offers OR interest:recipes)", "NOT interest:offers AND NOT interest:recipes", 2},
		{"interest:none OR interest:other", "NOT (NOT interest:none AND NOT interest:other)", 0},
	} {
		w := MustParse(c.rule).compile(testNow)
		if strings.Count(w.sql, "contact_interests") != 1 {
			t.Errorf("rule %q: want one interests probe, compiled to %s", c.rule, w.sql)
		}
		if got, same := mustCount(t, st, c.rule), mustCount(t, st, c.same); got != c.want || same != c.want {
			t.Errorf("rule %q: %d rows, %q: %d rows, want %d", c.rule, got, c.same, same, c.want)
		}
	}
}
