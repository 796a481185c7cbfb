package segments

import (
	"strings"
	"time"

	"github.com/repermit/repermit/crm"
)

// baseFrom is the base condition every evaluation starts from: the view
// whatsapp_optins (the one definition of who may be in a segment: current
// WhatsApp consent confirmed, a valid E.164 number, not erased, not
// suppressed; see crm/migrations/0007_segments_speed.sql), joined to the
// contact row for the fields a rule tests. The rule's condition is ANDed
// after it; nothing a rule says can widen it. Aliases: o the opt-in, c the
// contact, e the WhatsApp consent event (joined only when needed).
const baseFrom = `
FROM whatsapp_optins o
JOIN contacts c ON c.id = o.contact_id`

const eventJoin = `
JOIN consent_events e ON e.id = o.consent_event_id`

// where is a compiled rule: a SQL condition over the aliases of baseFrom
// and its parameters. Every value of the rule is a parameter; the SQL text
// depends only on the rule's shape.
type where struct {
	sql   string
	args  []any
	event bool // the condition reads e (the consent event)
}

// compile turns the rule into a condition evaluated at now (confirmed:<90d
// is relative to the store's clock).
func (r *Rule) compile(now time.Time) where {
	if r == nil || r.root == nil {
		return where{sql: "1"}
	}
	c := &compiler{now: now.UTC()}
	c.node(r.root)
	return where{sql: c.b.String(), args: c.args, event: c.event}
}

type compiler struct {
	b     strings.Builder
	args  []any
	event bool
	now   time.Time
}

func (c *compiler) arg(v any) {
	c.b.WriteByte('?')
	c.args = append(c.args, v)
}

func (c *compiler) list(terms []node, op string) {
	c.b.WriteByte('(')
	for i, t := range terms {
		if i > 0 {
			c.b.WriteString(op)
		}
		c.node(t)
	}
	c.b.WriteByte(')')
}

// or compiles a disjunction. Interest terms in it become one probe of the
// contact's interests with an IN list instead of one EXISTS each: the
// interests of an opt-in are read once, whatever the number of
// alternatives (interest:a OR interest:b is a common rule, and each probe
// costs a b-tree seek per opt-in evaluated).
func (c *compiler) or(terms []node) {
	var interests []string
	var rest []node
	for _, t := range terms {
		if m, ok := t.(*matchNode); ok && m.field == "interest" {
			interests = append(interests, m.value)
			continue
		}
		rest = append(rest, t)
	}
	if len(interests) < 2 {
		c.list(terms, " OR ")
		return
	}
	c.b.WriteString("(EXISTS (SELECT 1 FROM contact_interests ci WHERE ci.contact_id = o.contact_id AND ci.interest COLLATE NOCASE IN (")
	for i, v := range interests {
		if i > 0 {
			c.b.WriteString(", ")
		}
		c.arg(v)
	}
	c.b.WriteString(")" + probeEarly + ")")
	for _, t := range rest {
		c.b.WriteString(" OR ")
		c.node(t)
	}
	c.b.WriteByte(')')
}

// probeEarly ends an interests probe. LIMIT 1 changes nothing in an
// EXISTS but keeps SQLite (3.46 and later) from turning the EXISTS into a
// join, which its planner places after the contact and consent event
// lookups. As a subquery on o.contact_id it runs right after the consent
// row is read, before any contact lookup: a cheap probe of a small table
// that spares the contact lookups and base checks of every opt-in without
// the interest (10-15% of an export's time in BenchmarkExport1M).
const probeEarly = " LIMIT 1"

func (c *compiler) node(n node) {
	switch n := n.(type) {
	case *orNode:
		c.or(n.terms)
	case *andNode:
		c.list(n.terms, " AND ")
	case *notNode:
		// Every column and subquery a condition reads is NOT NULL or an
		// EXISTS, so NOT is plain negation (no three-valued surprises).
		c.b.WriteString("NOT (")
		c.node(n.x)
		c.b.WriteByte(')')
	case *matchNode:
		c.match(n)
	case *confirmedNode:
		c.confirmed(n)
	}
}

// match compiles field:value. Comparisons ignore ASCII case (COLLATE
// NOCASE): people write de, DE and De for the same thing.
func (c *compiler) match(n *matchNode) {
	switch n.field {
	case "interest":
		c.b.WriteString("EXISTS (SELECT 1 FROM contact_interests ci WHERE ci.contact_id = o.contact_id AND ci.interest = ")
		c.arg(n.value)
		c.b.WriteString(" COLLATE NOCASE" + probeEarly + ")")
	case "country":
		c.equalNoCase("c.country", n.value)
	case "source":
		c.equalNoCase("c.source", n.value)
	case "language":
		// language:de also matches the regional tags de-AT and de_AT that
		// CRMs export. LIKE ignores ASCII case.
		c.b.WriteString("(c.language = ")
		c.arg(n.value)
		c.b.WriteString(" COLLATE NOCASE")
		if n.value != "" {
			esc := likeEscape(n.value)
			c.b.WriteString(` OR c.language LIKE `)
			c.arg(esc + "-%")
			c.b.WriteString(` ESCAPE '\' OR c.language LIKE `)
			c.arg(esc + `\_%`)
			c.b.WriteString(` ESCAPE '\'`)
		}
		c.b.WriteByte(')')
	case "tag":
		c.b.WriteString("EXISTS (SELECT 1 FROM json_each(c.tags) t WHERE t.value = ")
		c.arg(n.value)
		c.b.WriteString(" COLLATE NOCASE)")
	case "campaign":
		c.event = true
		c.equalNoCase("e.campaign", n.value)
	case "attr":
		// The attribute name is a parameter too: json_each instead of a
		// JSON path built from user text.
		c.b.WriteString("EXISTS (SELECT 1 FROM json_each(c.attributes) a WHERE a.key = ")
		c.arg(n.attr)
		c.b.WriteString(" COLLATE NOCASE AND a.value = ")
		c.arg(n.value)
		c.b.WriteString(" COLLATE NOCASE)")
	default:
		// The parser admits no other field; fail closed.
		c.b.WriteString("0")
	}
}

func likeEscape(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(v)
}

// confirmed compiles the age or date of the WhatsApp confirmation. Times
// are fixed-width UTC text (crm.FormatTime), so text order is time order.
func (c *compiler) confirmed(n *confirmedNode) {
	if n.day.IsZero() {
		// An age: confirmed:<90d means confirmed after now-90d.
		cut := crm.FormatTime(c.now.Add(-n.age))
		op := map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<="}[n.op]
		c.b.WriteString("o.opted_in_at " + op + " ")
		c.arg(cut)
		return
	}
	start, next := crm.FormatTime(n.day), crm.FormatTime(n.day.AddDate(0, 0, 1))
	switch n.op {
	case "<":
		c.b.WriteString("o.opted_in_at < ")
		c.arg(start)
	case "<=":
		c.b.WriteString("o.opted_in_at < ")
		c.arg(next)
	case ">":
		c.b.WriteString("o.opted_in_at >= ")
		c.arg(next)
	case ">=":
		c.b.WriteString("o.opted_in_at >= ")
		c.arg(start)
	default:
		c.b.WriteString("(o.opted_in_at >= ")
		c.arg(start)
		c.b.WriteString(" AND o.opted_in_at < ")
		c.arg(next)
		c.b.WriteByte(')')
	}
}

// equalNoCase writes "col = ? COLLATE NOCASE" with v as the parameter.
func (c *compiler) equalNoCase(col, v string) {
	c.b.WriteString(col + " = ")
	c.arg(v)
	c.b.WriteString(" COLLATE NOCASE")
}
