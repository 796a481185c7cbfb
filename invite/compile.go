package invite

import (
	"bytes"
	"fmt"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
	"time"
)

// Why messages are compiled: executing html/template and encoding the
// bodies for every recipient cost ~120 µs a message, more than the SMTP
// exchange itself. All but a handful of bytes of an invitation are the
// same for every recipient of a language, so each language's message is
// rendered once with sentinels in place of the per-recipient values (first
// name, token, expiry date, To, Date, Message-ID), encoded, and cut at the
// sentinels into pieces. Rendering a recipient is then appending the pieces
// and encoding the few values between them.
//
// Splicing is exact only when the templates use those values plainly:
// {{.FirstName}} as a value and {{if .FirstName}} as a condition. A
// template that does anything else with them (compares, formats, passes
// them on) is rendered per recipient as before; so is one that puts the
// first name where html/template escapes differently from HTML text.

// Sentinels stand for per-recipient values while compiling. Letters and
// digits only: every escaper of html/template leaves them unchanged.
const (
	sentTo      = "ZqRPMxTOxMPRqZ"
	sentDate    = "ZqRPMxDATExMPRqZ"
	sentMsgID   = "ZqRPMxMSGIDxMPRqZ"
	sentToken   = "ZqRPMxTOKENxMPRqZ"
	sentName    = "ZqRPMxNAMExMPRqZ"
	sentExpires = "ZqRPMxEXPIRESxMPRqZ"
	sentText    = "ZqRPMxTEXTxMPRqZ"
	sentHTML    = "ZqRPMxHTMLxMPRqZ"
)

// slotKind is what goes between two literal pieces.
type slotKind uint8

const (
	slotNone slotKind = iota
	slotTo
	slotDate
	slotMsgID
	slotHeaderToken
	slotTextToken
	slotTextName
	slotTextExpires
	slotHTMLToken
	slotHTMLName
	slotHTMLExpires
	slotTextBody // the whole text body, rendered per recipient
	slotHTMLBody // the whole HTML body, rendered per recipient
)

// piece is a literal (already encoded) followed by a slot. A literal that
// continues a body line after a value is placed by its first line's length:
// when the value left too little room, a soft break goes first.
type piece struct {
	lit   string
	first int // length of lit's first line (up to its first CRLF)
	end   int // the column after lit when it contains a CRLF, else -1
	slot  slotKind
}

func newPiece(lit string, slot slotKind) piece {
	p := piece{lit: lit, first: len(lit), end: -1, slot: slot}
	if i := strings.Index(lit, "\r\n"); i >= 0 {
		p.first = i
		p.end = len(lit) - strings.LastIndex(lit, "\r\n") - 2
	}
	return p
}

// compiled is one language's message of one kind, for recipients with or
// without a first name.
type compiled struct {
	pieces []piece
	// perRecipient: the bodies are rendered with the templates for every
	// recipient (slotTextBody and slotHTMLBody).
	perRecipient bool
}

// dynamicFields are the template fields that differ per recipient.
var dynamicFields = map[string]bool{"FirstName": true, "ConfirmURL": true, "UnsubscribeURL": true,
	"PreferencesURL": true, "ExpiresOn": true}

// spliceable reports whether a template source uses the per-recipient
// fields only as {{.F}} and {{if .F}}, so that splicing gives what
// executing it would.
func spliceable(src string) bool {
	// Parsed with text/template: html/template has the same syntax and
	// would rewrite the tree with its escapers.
	t, err := texttemplate.New("t").Funcs(funcs).Parse(src)
	if err != nil {
		return false
	}
	for _, d := range t.Templates() {
		if d.Tree != nil && d.Tree.Root != nil && !spliceableNode(d.Tree.Root, true) {
			return false
		}
	}
	return true
}

// plainField reports whether pipe is exactly one per-recipient field.
func plainField(p *parse.PipeNode) bool {
	if p == nil || len(p.Decl) != 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	f, ok := p.Cmds[0].Args[0].(*parse.FieldNode)
	return ok && len(f.Ident) == 1 && dynamicFields[f.Ident[0]]
}

// usesDynamic reports whether a node of a pipeline can reach a
// per-recipient value: the field itself, $ (the whole data), or dot where
// dot is the data.
func usesDynamic(n parse.Node, dotIsData bool) bool {
	switch n := n.(type) {
	case nil:
		return false
	case *parse.PipeNode:
		if n == nil {
			return false
		}
		for _, c := range n.Cmds {
			if usesDynamic(c, dotIsData) {
				return true
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if usesDynamic(a, dotIsData) {
				return true
			}
		}
	case *parse.FieldNode:
		return dotIsData && dynamicFields[n.Ident[0]]
	case *parse.VariableNode:
		return n.Ident[0] == "$"
	case *parse.DotNode:
		return dotIsData
	case *parse.ChainNode:
		return usesDynamic(n.Node, dotIsData)
	}
	return false
}

func spliceableNode(n parse.Node, dotIsData bool) bool {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return true
		}
		for _, c := range n.Nodes {
			if !spliceableNode(c, dotIsData) {
				return false
			}
		}
	case *parse.ActionNode:
		if dotIsData && plainField(n.Pipe) {
			return true
		}
		return !usesDynamic(n.Pipe, dotIsData)
	case *parse.IfNode:
		if !(dotIsData && plainField(n.Pipe)) && usesDynamic(n.Pipe, dotIsData) {
			return false
		}
		return spliceableNode(n.List, dotIsData) && spliceableNode(n.ElseList, dotIsData)
	case *parse.RangeNode:
		return !usesDynamic(n.Pipe, dotIsData) && spliceableNode(n.List, false) && spliceableNode(n.ElseList, dotIsData)
	case *parse.WithNode:
		return !usesDynamic(n.Pipe, dotIsData) && spliceableNode(n.List, false) && spliceableNode(n.ElseList, dotIsData)
	case *parse.TemplateNode:
		// {{template "x" .}} is fine: every defined template is checked.
		if n.Pipe == nil {
			return true
		}
		if len(n.Pipe.Cmds) == 1 && len(n.Pipe.Cmds[0].Args) == 1 {
			if _, ok := n.Pipe.Cmds[0].Args[0].(*parse.DotNode); ok && dotIsData {
				return true
			}
		}
		return !usesDynamic(n.Pipe, dotIsData)
	}
	return true
}

// bodySplit is a rendered body cut at its sentinels: lits[i] comes before
// slots[i]; lits has one more element than slots.
type bodySplit struct {
	lits  []string
	slots []string // sentinels
}

func splitAt(s string, sentinels ...string) bodySplit {
	lits, slots := CutAt(s, sentinels...)
	return bodySplit{lits: lits, slots: slots}
}

// join fills a split with values (for checking a compilation).
func (b bodySplit) join(values map[string]string) string {
	var sb strings.Builder
	for i, s := range b.slots {
		sb.WriteString(b.lits[i])
		sb.WriteString(values[s])
	}
	sb.WriteString(b.lits[len(b.lits)-1])
	return sb.String()
}

// compiler gathers pieces.
type compiler struct {
	pieces []piece
	lit    []byte
}

func (c *compiler) literal(s string) { c.lit = append(c.lit, s...) }

func (c *compiler) slot(k slotKind) {
	c.pieces = append(c.pieces, newPiece(string(c.lit), k))
	c.lit = c.lit[:0]
}

func (c *compiler) done() []piece {
	c.pieces = append(c.pieces, newPiece(string(c.lit), slotNone))
	return c.pieces
}

// body adds an encoded body split at its sentinels, each literal encoded
// from column 0 (appendMessage places it).
func (c *compiler) body(b bodySplit, html bool) {
	kinds := map[string]slotKind{sentToken: slotTextToken, sentName: slotTextName, sentExpires: slotTextExpires}
	if html {
		kinds = map[string]slotKind{sentToken: slotHTMLToken, sentName: slotHTMLName, sentExpires: slotHTMLExpires}
	}
	var enc []byte
	for i, lit := range b.lits {
		enc, _ = qpAppend(enc[:0], lit, 0, i == len(b.slots))
		c.lit = append(c.lit, enc...)
		if i < len(b.slots) {
			c.slot(kinds[b.slots[i]])
		}
	}
}

// compile builds a message from its header skeleton (go-message's output
// with sentinels for the header values and the two bodies) and the bodies
// (nil: rendered per recipient).
func compile(skel string, text, html *bodySplit) (*compiled, error) {
	s := splitAt(skel, sentTo, sentDate, sentMsgID, sentToken, sentText, sentHTML)
	want := map[string]int{sentTo: 1, sentDate: 1, sentMsgID: 1, sentToken: 1, sentText: 1, sentHTML: 1}
	for _, n := range s.slots {
		want[n]--
	}
	for n, k := range want {
		if k != 0 {
			return nil, fmt.Errorf("message skeleton has %s %d times too few (a header was folded?)", n, k)
		}
	}
	var c compiler
	out := &compiled{perRecipient: text == nil}
	for i, n := range s.slots {
		c.literal(s.lits[i])
		switch n {
		case sentTo:
			c.slot(slotTo)
		case sentDate:
			c.slot(slotDate)
		case sentMsgID:
			c.slot(slotMsgID)
		case sentToken:
			c.slot(slotHeaderToken)
		case sentText:
			if text == nil {
				c.slot(slotTextBody)
			} else {
				c.body(*text, false)
			}
		case sentHTML:
			if html == nil {
				c.slot(slotHTMLBody)
			} else {
				c.body(*html, true)
			}
		}
	}
	c.literal(s.lits[len(s.lits)-1])
	out.pieces = c.done()
	return out, nil
}

// compileBodies renders a language's bodies with sentinels and checks that
// splicing a probe recipient gives exactly what the templates give; nil
// splits mean the language is rendered per recipient.
func (r *Renderer) compileBodies(lang string, reminder, hasName bool) (text, html *bodySplit, err error) {
	t := r.tmpl[lang]
	if !t.spliceable {
		return nil, nil, nil
	}
	d := r.data(lang, reminder, "", sentToken, sentExpires)
	if hasName {
		d.FirstName = sentName
	}
	var tb, hb bytes.Buffer
	if err := t.text.Execute(&tb, d); err != nil {
		return nil, nil, fmt.Errorf("render %s.txt: %w", lang, err)
	}
	if err := t.html.Execute(&hb, d); err != nil {
		return nil, nil, fmt.Errorf("render %s.html: %w", lang, err)
	}
	ts, hs := splitAt(tb.String(), sentName, sentToken, sentExpires), splitAt(hb.String(), sentName, sentToken, sentExpires)

	// The probe: every character html/template escapes, and a token of
	// every character a token has.
	probe := Recipient{Token: "Ab-_09xyzAb-_09xyzAb-_09xyzAb-_0", ExpiresAt: time.Date(2030, 12, 31, 0, 0, 0, 0, time.UTC)}
	if hasName {
		probe.FirstName = "Zoë <&>\"'+ `=\x00 x"
	}
	var pt, ph bytes.Buffer
	if err := r.bodies(probe, lang, reminder, &pt, &ph); err != nil {
		return nil, nil, err
	}
	expires := string(appendDate(nil, lang, probe.ExpiresAt))
	textVals := map[string]string{sentName: probe.FirstName, sentToken: probe.Token, sentExpires: expires}
	htmlVals := map[string]string{sentName: string(htmlEscapeAppend(nil, probe.FirstName)), sentToken: probe.Token,
		sentExpires: string(htmlEscapeAppend(nil, expires))}
	if ts.join(textVals) != pt.String() || hs.join(htmlVals) != ph.String() {
		return nil, nil, nil
	}
	return &ts, &hs, nil
}
