package segments

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
)

// The property test builds random ledgers (confirm, decline, withdraw,
// expire, suppress, erase, bad and shared phones, in random orders and
// times) and random rules, and checks every export against a model written
// here in Go, independent of the SQL: no exported row belongs to a contact
// outside the base condition, and every contact inside it that satisfies
// the rule is exported, once, with its current consent event.

// modelContact is what the model knows of a contact.
type modelContact struct {
	id         int64
	email      string
	phone      string
	country    string
	language   string
	source     string
	tags       []string
	attrs      map[string]string
	interests  []string
	waAction   string // newest WhatsApp event's action
	waEvent    int64
	waAt       time.Time
	waCampaign string
	erased     bool
	suppressed bool // its email is suppressed for all channels
}

type modelLedger struct {
	contacts      []*modelContact
	phonesStopped map[string]bool // suppressed for WhatsApp or all
	now           time.Time
	statementHash string
	validE164     *regexp.Regexp
}

func (m *modelLedger) inBase(c *modelContact) bool {
	return c.waAction == crm.ActionConfirmed && !c.erased && !c.suppressed &&
		m.validE164.MatchString(c.phone) && !m.phonesStopped[c.phone]
}

// asciiFold is SQLite's NOCASE: ASCII letters only.
func asciiFold(a, b string) bool {
	return len(a) == len(b) && strings.EqualFold(a, b) // values here are ASCII
}

func (m *modelLedger) eval(n node, c *modelContact) bool {
	switch n := n.(type) {
	case nil:
		return true
	case *andNode:
		for _, t := range n.terms {
			if !m.eval(t, c) {
				return false
			}
		}
		return true
	case *orNode:
		for _, t := range n.terms {
			if m.eval(t, c) {
				return true
			}
		}
		return false
	case *notNode:
		return !m.eval(n.x, c)
	case *matchNode:
		anyFold := func(list []string) bool {
			return slices.ContainsFunc(list, func(s string) bool { return asciiFold(s, n.value) })
		}
		switch n.field {
		case "interest":
			return anyFold(c.interests)
		case "country":
			return asciiFold(c.country, n.value)
		case "source":
			return asciiFold(c.source, n.value)
		case "tag":
			return anyFold(c.tags)
		case "campaign":
			return asciiFold(c.waCampaign, n.value)
		case "language":
			l, v := strings.ToLower(c.language), strings.ToLower(n.value)
			return l == v || v != "" && (strings.HasPrefix(l, v+"-") || strings.HasPrefix(l, v+"_"))
		case "attr":
			for k, v := range c.attrs {
				if asciiFold(k, n.attr) && asciiFold(v, n.value) {
					return true
				}
			}
			return false
		}
	case *confirmedNode:
		at := c.waAt
		if n.day.IsZero() {
			cut := m.now.Add(-n.age)
			switch n.op {
			case "<":
				return at.After(cut)
			case "<=":
				return !at.Before(cut)
			case ">":
				return at.Before(cut)
			case ">=":
				return !at.After(cut)
			}
		}
		start, next := n.day, n.day.AddDate(0, 0, 1)
		switch n.op {
		case "<":
			return at.Before(start)
		case "<=":
			return at.Before(next)
		case ">":
			return !at.Before(next)
		case ">=":
			return !at.Before(start)
		default:
			return !at.Before(start) && at.Before(next)
		}
	}
	panic(fmt.Sprintf("model: unknown node %T", n))
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func subset(r *rand.Rand, xs ...string) []string {
	var out []string
	for _, x := range xs {
		if r.IntN(3) == 0 {
			out = append(out, x)
		}
	}
	return out
}

// buildLedger writes a random ledger into st and returns its model.
func buildLedger(t *testing.T, r *rand.Rand, st *crm.Store, n int) *modelLedger {
	ctx := context.Background()
	m := &modelLedger{phonesStopped: map[string]bool{}, now: testNow,
		statementHash: crm.StatementHash("I agree."), validE164: regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)}
	phones := []string{"", "+49 1555 000", "12345", "+0123456789"} // none or bad
	for i := range 12 {
		phones = append(phones, fmt.Sprintf("+49155500%05d", i), fmt.Sprintf("+4366%07d", i))
	}
	err := st.Update(ctx, func(tx *crm.Tx) error {
		for i := range n {
			c := &modelContact{
				email:     fmt.Sprintf("p%d@example.com", i),
				phone:     pick(r, phones...),
				country:   pick(r, "DE", "AT", "US", ""),
				language:  pick(r, "de", "de-AT", "en", "EN", "en_GB", ""),
				source:    pick(r, "mailchimp", "hubspot", ""),
				tags:      subset(r, "vip", "new", "summer sale"),
				interests: subset(r, "offers", "recipes", "events"),
				attrs:     map[string]string{},
			}
			if city := pick(r, "Berlin", "Wien", ""); city != "" {
				c.attrs["city"] = city
			}
			if r.IntN(4) == 0 {
				c.attrs["plan"] = pick(r, "gold", "free")
			}
			id, _, err := tx.UpsertContact(crm.ContactInput{Email: c.email, Phone: c.phone, Country: c.country,
				Language: c.language, Source: c.source, Tags: c.tags, Attributes: c.attrs, FirstName: "P"})
			if err != nil {
				return err
			}
			c.id = id
			if err := tx.SetInterests(id, c.interests); err != nil {
				return err
			}
			m.contacts = append(m.contacts, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Operations in a random order across contacts; erasures commit on
	// their own (crm.Store.Forget), the rest in batches.
	type op struct {
		c    *modelContact
		kind string
	}
	var ops []op
	for _, c := range m.contacts {
		for range r.IntN(4) {
			ops = append(ops, op{c, pick(r, crm.ActionConfirmed, crm.ActionConfirmed, crm.ActionConfirmed,
				crm.ActionDeclined, crm.ActionWithdrawn, crm.ActionExpired)})
		}
		if r.IntN(8) == 0 {
			ops = append(ops, op{c, pick(r, "unsubscribe", "bounce", "complain", "stop", "erase")})
		}
		// Changes after the confirmation: segments read a projection of
		// the contact that must follow them.
		if r.IntN(3) == 0 {
			ops = append(ops, op{c, pick(r, "rephone", "interests", "profile")})
		}
	}
	r.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	for len(ops) > 0 {
		if ops[0].kind == "erase" {
			c := ops[0].c
			ops = ops[1:]
			if err := st.Forget(ctx, c.email); err != nil {
				t.Fatal(err)
			}
			if !c.erased && c.phone != "" {
				m.phonesStopped[c.phone] = true // erasure suppresses the number everywhere
			}
			c.erased, c.suppressed, c.phone = true, true, ""
			continue
		}
		err := st.Update(ctx, func(tx *crm.Tx) error {
			for len(ops) > 0 && ops[0].kind != "erase" {
				o := ops[0]
				ops = ops[1:]
				c := o.c
				var err error
				switch o.kind {
				case "rephone":
					if !c.erased {
						c.phone = pick(r, phones...)
						err = tx.SetPhone(c.id, c.phone, c.phone)
					}
				case "interests":
					c.interests = subset(r, "offers", "recipes", "events")
					err = tx.SetInterests(c.id, c.interests)
				case "profile":
					if !c.erased {
						c.country, c.language = pick(r, "DE", "AT", "US", ""), pick(r, "de", "en", "")
						c.source, c.tags = pick(r, "mailchimp", "hubspot", ""), subset(r, "vip", "new")
						tags, _ := json.Marshal(c.tags)
						_, err = tx.Exec(`UPDATE contacts SET country = ?, language = ?, source = ?, tags = ? WHERE id = ?`,
							c.country, c.language, c.source, string(tags), c.id)
					}
				case "unsubscribe":
					_, err = tx.SuppressEmail(c.email, crm.ReasonUnsubscribed, "test") // email only: no effect
				case "bounce":
					_, err = tx.SuppressEmail(c.email, crm.ReasonBounced, "test") // email only: no effect
				case "complain":
					_, err = tx.SuppressEmail(c.email, crm.ReasonComplained, "test")
					c.suppressed = true
				case "stop":
					if c.phone != "" {
						_, err = tx.SuppressPhone(c.phone, crm.ReasonStop, "whatsapp:stop")
						m.phonesStopped[c.phone] = true
					}
				default:
					e := &crm.Event{ContactID: c.id, Channel: crm.ChannelWhatsApp, Action: o.kind, Method: "invite:confirm-page",
						At:       testNow.Add(-time.Duration(r.IntN(2*365*24*3600)) * time.Second),
						Campaign: pick(r, "spring", "autumn"), StatementVersion: "v1", StatementSHA256: m.statementHash}
					err = tx.AppendEvent(e)
					c.waAction, c.waEvent, c.waAt, c.waCampaign = e.Action, e.ID, e.At, e.Campaign
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if res, err := st.Verify(ctx); err != nil || !res.OK {
		t.Fatalf("consent verify after the random ledger: %+v %v", res, err)
	}
	return m
}

// randomRule builds a random syntax tree of at most the given depth.
func randomRule(r *rand.Rand, depth int) node {
	if depth == 0 || r.IntN(3) == 0 {
		switch r.IntN(9) {
		case 0:
			return &matchNode{field: "interest", value: pick(r, "offers", "OFFERS", "recipes", "events", "none")}
		case 1:
			return &matchNode{field: "country", value: pick(r, "DE", "de", "AT", "US", "")}
		case 2:
			return &matchNode{field: "language", value: pick(r, "de", "DE", "en", "de-AT", "de-at", "en_gb", "")}
		case 3:
			return &matchNode{field: "tag", value: pick(r, "vip", "VIP", "new", "summer sale")}
		case 4:
			return &matchNode{field: "source", value: pick(r, "mailchimp", "HubSpot", "")}
		case 5:
			return &matchNode{field: "campaign", value: pick(r, "spring", "Autumn", "winter")}
		case 6:
			return &matchNode{field: "attr", attr: pick(r, "city", "City", "plan"), value: pick(r, "Berlin", "wien", "gold", "free")}
		case 7:
			age := pick(r, "12h", "30d", "90d", "26w", "1y")
			return MustParse("confirmed:" + pick(r, "<", "<=", ">", ">=") + age).root
		default:
			day := testNow.AddDate(0, 0, -r.IntN(800)).Format("2006-01-02")
			return MustParse("confirmed:" + pick(r, "", "<", "<=", ">", ">=") + day).root
		}
	}
	switch r.IntN(3) {
	case 0:
		return &notNode{x: randomRule(r, depth-1)}
	case 1:
		return &andNode{terms: []node{randomRule(r, depth-1), randomRule(r, depth-1)}}
	default:
		return &orNode{terms: []node{randomRule(r, depth-1), randomRule(r, depth-1)}}
	}
}

func TestPropertyExportsMatchModel(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(20250601, 5))
	ledgers, rulesPer, contacts := 6, 40, 60
	if testing.Short() {
		ledgers = 2
	}
	for l := range ledgers {
		st := mustOpen(t)
		m := buildLedger(t, r, st, contacts)
		inBase := 0
		for _, c := range m.contacts {
			if m.inBase(c) {
				inBase++
			}
		}
		if inBase == 0 || inBase == len(m.contacts) {
			t.Fatalf("ledger %d: %d of %d in the base condition; the generator should mix both", l, inBase, len(m.contacts))
		}
		for range rulesPer {
			text := (&Rule{root: randomRule(r, 3)}).String()
			rule, err := Parse(text)
			if err != nil {
				t.Fatalf("generated rule %q does not parse: %v", text, err)
			}
			out := filepath.Join(t.TempDir(), "seg.jsonl")
			// Small random chunk spans: rows cross many chunk boundaries
			// and several workers evaluate them at once.
			res, err := export(ctx, st, "", rule, ExportOptions{Format: "jsonl", Out: out,
				Columns: []string{"contact_id", "consent_event_id", "phone_e164", "opted_in_at", "consent_statement_sha256"}},
				int64(1+r.IntN(20)))
			if err != nil {
				t.Fatalf("rule %q: %v", text, err)
			}
			got := map[int64]bool{}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			byID := map[int64]*modelContact{}
			for _, c := range m.contacts {
				byID[c.id] = c
			}
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if line == "" {
					continue
				}
				var row struct {
					ContactID      int64  `json:"contact_id"`
					ConsentEventID int64  `json:"consent_event_id"`
					Phone          string `json:"phone_e164"`
					OptedInAt      string `json:"opted_in_at"`
					Statement      string `json:"consent_statement_sha256"`
				}
				if err := json.Unmarshal([]byte(line), &row); err != nil {
					t.Fatal(err)
				}
				c := byID[row.ContactID]
				switch {
				case c == nil:
					t.Fatalf("rule %q exported unknown contact %d", text, row.ContactID)
				case got[c.id]:
					t.Fatalf("rule %q exported contact %d twice", text, c.id)
				case !m.inBase(c):
					t.Fatalf("rule %q exported contact %d outside the base condition: %+v", text, c.id, *c)
				case !m.eval(rule.root, c):
					t.Fatalf("rule %q exported contact %d that does not satisfy it: %+v", text, c.id, *c)
				case row.ConsentEventID != c.waEvent || row.Phone != c.phone || row.OptedInAt != crm.FormatTime(c.waAt) ||
					row.Statement != m.statementHash:
					t.Fatalf("rule %q: row %+v does not carry contact %d's current consent %+v", text, row, c.id, *c)
				}
				got[c.id] = true
			}
			for _, c := range m.contacts {
				if m.inBase(c) && m.eval(rule.root, c) && !got[c.id] {
					t.Fatalf("rule %q missed contact %d: %+v", text, c.id, *c)
				}
			}
			if n, err := Count(ctx, st, rule); err != nil || n != res.Rows || n != int64(len(got)) {
				t.Fatalf("rule %q: count %d (%v), exported %d", text, n, err, res.Rows)
			}
		}
	}
}
