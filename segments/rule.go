package segments

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on a rule keep evaluation cheap and bound the SQL a rule becomes
// (SQLite refuses expressions nested deeper than 1000 and more than 32766
// parameters); no real segment comes near them.
const (
	maxRuleBytes = 4096
	maxDepth     = 64
	maxTerms     = 256
)

// Fields a rule may test. attr.<name> is listed apart because its name is
// free.
var fieldNames = []string{"interest", "country", "language", "tag", "source", "campaign", "confirmed"}

// Rule is a parsed segment rule. The zero Rule (from an empty text) selects
// every confirmed WhatsApp opt-in.
type Rule struct {
	text string
	root node // nil: no condition beyond the base one
}

// Text returns the rule as it was written.
func (r *Rule) Text() string { return r.text }

// String returns the rule in canonical form (keywords upper-case, fields
// lower-case, minimal parentheses and quotes); parsing it again gives the
// same rule.
func (r *Rule) String() string {
	if r.root == nil {
		return ""
	}
	var b strings.Builder
	r.root.format(&b, 0)
	return b.String()
}

// node is an element of a rule's syntax tree.
type node interface {
	// format writes the node; prec is the binding strength of the
	// surrounding operator (0 none, 1 OR, 2 AND, 3 NOT) so that parentheses
	// are written only where needed.
	format(b *strings.Builder, prec int)
}

type orNode struct{ terms []node }
type andNode struct{ terms []node }
type notNode struct{ x node }

// matchNode is field:value; attr holds the attribute name for attr.<name>.
type matchNode struct {
	field, attr, value string
}

// confirmedNode is confirmed:<op><age or date>. Exactly one of age and day
// is set; op is one of "<", "<=", ">", ">=" or "" (a whole day).
type confirmedNode struct {
	op   string
	age  time.Duration
	day  time.Time
	text string // the age or date as written, for String
}

func (n *orNode) format(b *strings.Builder, prec int) {
	formatList(b, n.terms, " OR ", prec > 1, 1)
}

func (n *andNode) format(b *strings.Builder, prec int) {
	formatList(b, n.terms, " AND ", prec > 2, 2)
}

func formatList(b *strings.Builder, terms []node, sep string, paren bool, prec int) {
	if paren {
		b.WriteByte('(')
	}
	for i, t := range terms {
		if i > 0 {
			b.WriteString(sep)
		}
		t.format(b, prec)
	}
	if paren {
		b.WriteByte(')')
	}
}

func (n *notNode) format(b *strings.Builder, prec int) {
	b.WriteString("NOT ")
	n.x.format(b, 3)
}

func (n *matchNode) format(b *strings.Builder, prec int) {
	b.WriteString(n.field)
	if n.field == "attr" {
		b.WriteByte('.')
		b.WriteString(n.attr)
	}
	b.WriteByte(':')
	b.WriteString(quoteValue(n.value))
}

func (n *confirmedNode) format(b *strings.Builder, prec int) {
	b.WriteString("confirmed:")
	b.WriteString(n.op)
	b.WriteString(n.text)
}

// quoteValue writes v bare when the lexer would read it back unchanged,
// quoted otherwise.
func quoteValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\r\n\f\v()\"\\") {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range v {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// ParseError is a rule that does not parse. Pos is the 1-based character
// position of the problem; Expected says what would have been valid there.
type ParseError struct {
	Rule     string
	Pos      int
	Expected string
	Found    string
	Hint     string
}

func (e *ParseError) Error() string {
	msg := fmt.Sprintf("rule: at position %d: expected %s, found %s", e.Pos, e.Expected, e.Found)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Parse parses a rule. An empty rule selects every confirmed opt-in.
func Parse(text string) (*Rule, error) {
	if len(text) > maxRuleBytes {
		return nil, &ParseError{Rule: text, Pos: utf8.RuneCountInString(text[:maxRuleBytes]) + 1,
			Expected: fmt.Sprintf("a rule of at most %d bytes", maxRuleBytes), Found: "a longer rule",
			Hint: "split it into several segments"}
	}
	if !utf8.ValidString(text) {
		off := 0
		for off < len(text) {
			r, size := utf8.DecodeRuneInString(text[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		return nil, &ParseError{Rule: text, Pos: utf8.RuneCountInString(text[:off]) + 1,
			Expected: "UTF-8 text", Found: "an invalid byte"}
	}
	p := &parser{src: text}
	r := &Rule{text: text}
	if p.peek().kind == tokEOF {
		return r, nil
	}
	root, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errorAt(t, "AND, OR or the end of the rule", "")
	}
	r.root = root
	return r, nil
}

// MustParse is Parse for rules known to be valid (tests, presets); it
// panics on an error.
func MustParse(text string) *Rule {
	r, err := Parse(text)
	if err != nil {
		panic(err)
	}
	return r
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokLParen
	tokRParen
	tokWord  // a bare word: keyword or field name
	tokQuote // a '"' where a field was expected
	tokColon // a ':' where a field was expected
)

type token struct {
	kind tokKind
	text string
	off  int // byte offset
}

// parser is a recursive-descent parser with an on-demand lexer: the
// parser asks for a field name or a value, and the lexer scans in that
// mode, so that values may hold ':' (source:import:mailchimp) and keywords
// (tag:and).
type parser struct {
	src   string
	off   int
	terms int
	tok   *token // one token of look-ahead in normal mode
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func (p *parser) skipSpace() {
	for p.off < len(p.src) && isSpace(p.src[p.off]) {
		p.off++
	}
}

// peek returns the next token in normal mode without consuming it.
func (p *parser) peek() token {
	if p.tok != nil {
		return *p.tok
	}
	p.skipSpace()
	t := token{off: p.off}
	if p.off >= len(p.src) {
		t.kind = tokEOF
		p.tok = &t
		return t
	}
	switch p.src[p.off] {
	case '(':
		t.kind, t.text = tokLParen, "("
	case ')':
		t.kind, t.text = tokRParen, ")"
	case '"':
		t.kind, t.text = tokQuote, `"`
	case ':':
		t.kind, t.text = tokColon, ":"
	default:
		end := p.off
		for end < len(p.src) && !isSpace(p.src[end]) && !strings.ContainsRune(`()":`, rune(p.src[end])) {
			end++
		}
		t.kind, t.text = tokWord, p.src[p.off:end]
	}
	p.tok = &t
	return t
}

func (p *parser) next() token {
	t := p.peek()
	p.tok = nil
	p.off = t.off + len(t.text)
	return t
}

func isKeyword(t token, kw string) bool {
	return t.kind == tokWord && strings.EqualFold(t.text, kw)
}

func (p *parser) pos(off int) int { return utf8.RuneCountInString(p.src[:off]) + 1 }

func (p *parser) errorAt(t token, expected, hint string) *ParseError {
	found := "end of rule"
	if t.kind != tokEOF {
		found = strconv.Quote(t.text)
	}
	return &ParseError{Rule: p.src, Pos: p.pos(t.off), Expected: expected, Found: found, Hint: hint}
}

func (p *parser) parseOr(depth int) (node, error) {
	first, err := p.parseAnd(depth)
	if err != nil {
		return nil, err
	}
	terms := []node{first}
	for isKeyword(p.peek(), "OR") {
		p.next()
		t, err := p.parseAnd(depth)
		if err != nil {
			return nil, err
		}
		terms = append(terms, t)
	}
	if len(terms) == 1 {
		return first, nil
	}
	return &orNode{terms: flatten[*orNode](terms, func(n *orNode) []node { return n.terms })}, nil
}

func (p *parser) parseAnd(depth int) (node, error) {
	first, err := p.parseUnary(depth)
	if err != nil {
		return nil, err
	}
	terms := []node{first}
	for isKeyword(p.peek(), "AND") {
		p.next()
		t, err := p.parseUnary(depth)
		if err != nil {
			return nil, err
		}
		terms = append(terms, t)
	}
	if len(terms) == 1 {
		return first, nil
	}
	return &andNode{terms: flatten[*andNode](terms, func(n *andNode) []node { return n.terms })}, nil
}

// flatten merges nested lists of the same operator ((a AND b) AND c is
// a AND b AND c) so that String is canonical.
func flatten[T node](terms []node, children func(T) []node) []node {
	out := make([]node, 0, len(terms))
	for _, t := range terms {
		if n, ok := t.(T); ok {
			out = append(out, children(n)...)
		} else {
			out = append(out, t)
		}
	}
	return out
}

const conditionExpected = "a condition such as interest:offers, NOT or \"(\""

func (p *parser) parseUnary(depth int) (node, error) {
	if depth >= maxDepth {
		return nil, p.errorAt(p.peek(), "a simpler rule", fmt.Sprintf("at most %d levels of NOT and parentheses", maxDepth))
	}
	t := p.peek()
	switch {
	case isKeyword(t, "NOT"):
		p.next()
		x, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		if n, ok := x.(*notNode); ok {
			return n.x, nil // NOT NOT x is x
		}
		return &notNode{x: x}, nil
	case t.kind == tokLParen:
		p.next()
		x, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.peek(); c.kind != tokRParen {
			return nil, p.errorAt(c, `AND, OR or ")"`, fmt.Sprintf("to close the \"(\" at position %d", p.pos(t.off)))
		}
		p.next()
		return x, nil
	case t.kind == tokWord && !isKeyword(t, "AND") && !isKeyword(t, "OR"):
		return p.parseCondition()
	}
	return nil, p.errorAt(t, conditionExpected, "")
}

// parseCondition parses field:value after peek returned the field word.
func (p *parser) parseCondition() (node, error) {
	p.terms++
	t := p.next()
	if p.terms > maxTerms {
		return nil, p.errorAt(t, "a shorter rule", fmt.Sprintf("at most %d conditions", maxTerms))
	}
	field, attr := strings.ToLower(t.text), ""
	if strings.HasPrefix(field, "attr.") {
		field, attr = "attr", t.text[len("attr."):]
		if attr == "" {
			return nil, &ParseError{Rule: p.src, Pos: p.pos(t.off + len(t.text)), Expected: "an attribute name after \"attr.\"",
				Found: describeAt(p.src, t.off+len(t.text)), Hint: "e.g. attr.city:Berlin"}
		}
	} else if !validField(field) {
		hint := ""
		if s := suggest(field); s != "" {
			hint = "did you mean " + s + "?"
		}
		return nil, &ParseError{Rule: p.src, Pos: p.pos(t.off), Found: strconv.Quote(t.text), Hint: hint,
			Expected: "a field: " + strings.Join(fieldNames, ", ") + " or attr.NAME"}
	}
	if p.off >= len(p.src) || p.src[p.off] != ':' {
		return nil, &ParseError{Rule: p.src, Pos: p.pos(p.off), Expected: fmt.Sprintf("\":\" after %q", t.text),
			Found: describeAt(p.src, p.off), Hint: "write field:value with no space, e.g. " + field + ":" + exampleValue(field)}
	}
	p.off++
	if field == "confirmed" {
		return p.parseConfirmed()
	}
	v, err := p.value(t.text)
	if err != nil {
		return nil, err
	}
	return &matchNode{field: field, attr: attr, value: v}, nil
}

func validField(f string) bool {
	for _, n := range fieldNames {
		if f == n {
			return true
		}
	}
	return false
}

func exampleValue(field string) string {
	switch field {
	case "country":
		return "DE"
	case "language":
		return "de"
	case "confirmed":
		return "<90d"
	case "tag":
		return "vip"
	}
	return "offers"
}

// describeAt names what is at byte offset off, for "found ...".
func describeAt(src string, off int) string {
	if off >= len(src) {
		return "end of rule"
	}
	r, _ := utf8.DecodeRuneInString(src[off:])
	if isSpace(src[off]) {
		return "a space"
	}
	return strconv.Quote(string(r))
}

// value scans a value right after a field's colon: a quoted string with
// \" and \\ escapes, or a bare run of characters up to a space or
// parenthesis.
func (p *parser) value(field string) (string, error) {
	start := p.off
	if start < len(p.src) && p.src[start] == '"' {
		var b strings.Builder
		for i := start + 1; i < len(p.src); i++ {
			c := p.src[i]
			switch c {
			case '\\':
				if i+1 < len(p.src) && (p.src[i+1] == '"' || p.src[i+1] == '\\') {
					b.WriteByte(p.src[i+1])
					i++
					continue
				}
				return "", &ParseError{Rule: p.src, Pos: p.pos(i), Expected: `\" or \\ after a backslash`,
					Found: describeAt(p.src, i+1), Hint: "inside quotes only \\\" and \\\\ are escapes"}
			case '"':
				p.off = i + 1
				if p.off < len(p.src) && !isSpace(p.src[p.off]) && p.src[p.off] != ')' && p.src[p.off] != '(' {
					return "", &ParseError{Rule: p.src, Pos: p.pos(p.off), Expected: "a space, \")\" or the end of the rule after the closing quote",
						Found: describeAt(p.src, p.off)}
				}
				return b.String(), nil
			default:
				b.WriteByte(c)
			}
		}
		return "", &ParseError{Rule: p.src, Pos: p.pos(len(p.src)), Expected: `a closing quote`, Found: "end of rule",
			Hint: fmt.Sprintf("the quote at position %d is never closed", p.pos(start))}
	}
	end := start
	for end < len(p.src) && !isSpace(p.src[end]) && p.src[end] != '(' && p.src[end] != ')' {
		if p.src[end] == '"' {
			return "", &ParseError{Rule: p.src, Pos: p.pos(end), Expected: "a space, \")\" or the end of the value",
				Found: `"\""`, Hint: "quote the whole value, e.g. " + field + `:"a b"`}
		}
		end++
	}
	if end == start {
		return "", &ParseError{Rule: p.src, Pos: p.pos(start), Expected: fmt.Sprintf("a value after %q", field+":"),
			Found: describeAt(p.src, start), Hint: `write "" for an empty value`}
	}
	p.off = end
	return p.src[start:end], nil
}

// Units of confirmed:<age>. A month is ambiguous (and m reads as minutes),
// so ages are in hours, days, weeks or years of 365 days.
var ageUnits = map[byte]time.Duration{
	'h': time.Hour,
	'd': 24 * time.Hour,
	'w': 7 * 24 * time.Hour,
	'y': 365 * 24 * time.Hour,
}

const maxAgeHours = 100 * 365 * 24

func (p *parser) parseConfirmed() (node, error) {
	start := p.off
	op := ""
	for _, o := range []string{"<=", ">=", "<", ">"} {
		if strings.HasPrefix(p.src[p.off:], o) {
			op = o
			p.off += len(o)
			break
		}
	}
	vstart := p.off
	v, err := p.value("confirmed")
	if err != nil {
		return nil, err
	}
	bad := func(hint string) error {
		return &ParseError{Rule: p.src, Pos: p.pos(vstart), Expected: "an age such as 90d (h, d, w or y) or a date such as 2025-01-31",
			Found: strconv.Quote(v), Hint: hint}
	}
	if d, err := time.Parse("2006-01-02", v); err == nil {
		return &confirmedNode{op: op, day: d, text: v}, nil
	}
	if len(v) < 2 {
		return nil, bad("")
	}
	unit, ok := ageUnits[v[len(v)-1]]
	if !ok {
		return nil, bad("")
	}
	n, err := strconv.Atoi(v[:len(v)-1])
	if err != nil || n < 0 || v[0] == '+' || v[0] == '-' {
		return nil, bad("")
	}
	if n > maxAgeHours || int64(n)*int64(unit/time.Hour) > maxAgeHours {
		return nil, bad("at most 100 years")
	}
	if op == "" {
		return nil, &ParseError{Rule: p.src, Pos: p.pos(start), Expected: "<, <=, > or >= before an age",
			Found: strconv.Quote(v), Hint: "confirmed:<90d is confirmed in the last 90 days, confirmed:>1y over a year ago"}
	}
	return &confirmedNode{op: op, age: time.Duration(n) * unit, text: v}, nil
}

// suggest returns the field closest to a misspelt one, or "".
func suggest(f string) string {
	best, bestD := "", 3
	for _, n := range append(fieldNames, "attr") {
		if d := editDistance(f, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "attr" {
		return "attr.NAME"
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
