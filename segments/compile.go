package segments

import (
	"strings"
	"time"

	"github.com/repermit/repermit/crm"
)

// baseFrom is the base condition every evaluation starts from: the table
// whatsapp_audience, one row per person who may be in a segment (current
// WhatsApp consent confirmed, a valid E.164 number, not erased, not
// suppressed), with the contact and consent fields rules test and exports
// write. Triggers keep it equal to its definition, the view
// whatsapp_audience_rows (crm/migrations/0008_whatsapp_audience.sql), and
// consent verify checks it. The rule's condition is ANDed after it;
// nothing a rule says can widen it. Aliases: o the audience row, c the
// contact row for the few fields the table does not carry (email,
// external id, attributes), joined only when needed.
const baseFrom = `
FROM whatsapp_audience o`

const contactJoin = `
JOIN contacts c ON c.id = o.contact_id`

// where is a compiled rule: a SQL condition over the aliases of baseFrom
// and its parameters. Every value of the rule is a parameter; the SQL text
// depends only on the rule's shape.
type where struct {
	sql     string
	args    []any
	contact bool // the condition reads c (the contact row)
}

// compile turns the rule into a condition evaluated at now (confirmed:<90d
// is relative to the store's clock).
func (r *Rule) compile(now time.Time) where {
	if r == nil || r.root == nil {
		return where{sql: "1"}
	}
	c := &compiler{now: now.UTC()}
	c.node(r.root)
	return where{sql: c.b.String(), args: c.args, contact: c.contact}
}

type compiler struct {
	b       strings.Builder
	args    []any
	contact bool
	now     time.Time
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

func (c *compiler) node(n node) {
	switch n := n.(type) {
	case *orNode:
		c.list(n.terms, " OR ")
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
		c.interest(n.value)
	case "country":
		c.equalNoCase("o.country", n.value)
	case "source":
		c.equalNoCase("o.source", n.value)
	case "language":
		// language:de also matches the regional tags de-AT and de_AT that
		// CRMs export. LIKE ignores ASCII case.
		c.b.WriteString("(o.language = ")
		c.arg(n.value)
		c.b.WriteString(" COLLATE NOCASE")
		if n.value != "" {
			esc := likeEscape(n.value)
			c.b.WriteString(` OR o.language LIKE `)
			c.arg(esc + "-%")
			c.b.WriteString(` ESCAPE '\' OR o.language LIKE `)
			c.arg(esc + `\_%`)
			c.b.WriteString(` ESCAPE '\'`)
		}
		c.b.WriteByte(')')
	case "tag":
		c.listItem("o.tag_keys", n.value)
	case "campaign":
		c.equalNoCase("o.campaign", n.value)
	case "attr":
		// The attribute name is a parameter too: json_each instead of a
		// JSON path built from user text.
		c.contact = true
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

// interest compiles interest:value as a search of the audience row's
// interest_keys (its interests folded to lower case between char(31)
// separators; see crm/migrations/0008_whatsapp_audience.sql) for the
// whole item, which ignores ASCII case as COLLATE NOCASE does. A string
// search in the row already read costs about half a probe of
// contact_interests per opt-in evaluated.
func (c *compiler) interest(v string) {
	c.listItem("o.interest_keys", v)
}

// listItem compiles a search of a keys column (interest_keys, tag_keys:
// items folded to lower case between char(31) separators) for the whole
// item v, ignoring ASCII case.
func (c *compiler) listItem(keys, v string) {
	if strings.Contains(v, unitSep) {
		c.b.WriteString("0") // no item holds the separator
		return
	}
	c.b.WriteString("instr(" + keys + ", ")
	c.arg(unitSep + asciiLower(v) + unitSep)
	c.b.WriteString(") > 0")
}

// asciiLower folds ASCII letters only, as SQLite's lower() and NOCASE do.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
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
