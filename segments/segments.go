// Package segments builds interest-based audiences from confirmed WhatsApp
// opt-ins and exports them in the formats WhatsApp providers import.
//
// A segment is a named rule in a small language (rule.go), e.g.
//
//	interest:offers AND (country:DE OR country:AT) AND NOT tag:vip AND confirmed:<90d
//
// compiled to parameterised SQL (compile.go). The engine, never the rule,
// supplies the base condition: every evaluation starts from the table
// whatsapp_audience (crm/migrations/0008_whatsapp_audience.sql: current
// WhatsApp consent confirmed, a valid E.164 number, not erased, not
// suppressed for WhatsApp or everywhere; kept by triggers, checked by
// consent verify), so a rule can only narrow it.
package segments

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/repermit/repermit/crm"
)

// Segment is a stored, named rule.
type Segment struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Rule      string    `json:"rule"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ErrExists is returned by Create for a name already taken.
var ErrExists = errors.New("a segment with this name already exists")

// ErrNotFound is returned for an unknown segment name; it wraps
// crm.ErrNotFound.
var ErrNotFound = fmt.Errorf("segment %w", crm.ErrNotFound)

// validName keeps names usable as file names (exports default to
// NAME.csv) and free of anything a shell or a provider would choke on.
func validName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("segment name %q: use 1 to 64 letters, digits, '-', '_' or '.'", name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (i > 0 && strings.ContainsRune("-_.", r))
		if !ok {
			return fmt.Errorf("segment name %q: use letters, digits, '-', '_' or '.' (starting with a letter or digit)", name)
		}
	}
	return nil
}

// Create validates rule and stores it under name. It returns ErrExists
// when the name is taken (use Replace to change a rule) and a *ParseError
// for a rule that does not parse.
func Create(ctx context.Context, st *crm.Store, name, rule string) (Segment, error) {
	return save(ctx, st, name, rule, false)
}

// Replace stores rule under name, creating the segment or changing its
// rule.
func Replace(ctx context.Context, st *crm.Store, name, rule string) (Segment, error) {
	return save(ctx, st, name, rule, true)
}

func save(ctx context.Context, st *crm.Store, name, rule string, replace bool) (Segment, error) {
	if err := validName(name); err != nil {
		return Segment{}, err
	}
	if _, err := Parse(rule); err != nil {
		return Segment{}, err
	}
	seg := Segment{Name: name, Rule: rule}
	err := st.Update(ctx, func(tx *crm.Tx) error {
		now := crm.FormatTime(tx.Now)
		seg.CreatedAt, seg.UpdatedAt = tx.Now, tx.Now
		q := `INSERT INTO segments (name, rule, created_at, updated_at) VALUES (?, ?, ?, ?)`
		if replace {
			q += ` ON CONFLICT (name) DO UPDATE SET rule = excluded.rule, updated_at = excluded.updated_at`
		}
		if _, err := tx.Exec(q, name, rule, now, now); err != nil {
			if crm.IsUniqueViolation(err) {
				return fmt.Errorf("segment %s: %w", name, ErrExists)
			}
			return fmt.Errorf("save segment: %w", err)
		}
		var created string
		if err := tx.QueryRow(`SELECT id, created_at FROM segments WHERE name = ?`, name).Scan(&seg.ID, &created); err != nil {
			return err
		}
		seg.CreatedAt, _ = crm.ParseTime(created)
		return nil
	})
	return seg, err
}

// Get returns the segment called name.
func Get(ctx context.Context, st *crm.Store, name string) (Segment, error) {
	seg := Segment{Name: name}
	var created, updated string
	err := st.DB().QueryRowContext(ctx, `SELECT id, rule, created_at, updated_at FROM segments WHERE name = ?`, name).
		Scan(&seg.ID, &seg.Rule, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return seg, fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	if err != nil {
		return seg, fmt.Errorf("read segment %s: %w", name, err)
	}
	seg.CreatedAt, _ = crm.ParseTime(created)
	seg.UpdatedAt, _ = crm.ParseTime(updated)
	return seg, nil
}

// Delete removes a segment (its export history stays in the audit trail).
func Delete(ctx context.Context, st *crm.Store, name string) error {
	return st.Update(ctx, func(tx *crm.Tx) error {
		res, err := tx.Exec(`DELETE FROM segments WHERE name = ? AND id NOT IN (SELECT segment_id FROM segment_exports)`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := Get(ctx, st, name); err != nil {
				return err
			}
			return fmt.Errorf("segment %s has exports on record; they refer to it, so it stays (create a new name instead)", name)
		}
		return nil
	})
}

// Summary is a segment with its live count.
type Summary struct {
	Segment
	Count int64 `json:"count"`
}

// List returns every segment, by name, with the number of opt-ins it
// selects now.
func List(ctx context.Context, st *crm.Store) ([]Summary, error) {
	rows, err := st.DB().QueryContext(ctx, `SELECT id, name, rule, created_at, updated_at FROM segments ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	var out []Summary
	for rows.Next() {
		var s Summary
		var created, updated string
		if err := rows.Scan(&s.ID, &s.Name, &s.Rule, &created, &updated); err != nil {
			rows.Close()
			return nil, err
		}
		s.CreatedAt, _ = crm.ParseTime(created)
		s.UpdatedAt, _ = crm.ParseTime(updated)
		out = append(out, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		r, err := Parse(out[i].Rule)
		if err != nil {
			return nil, fmt.Errorf("segment %s: stored rule: %w", out[i].Name, err)
		}
		if out[i].Count, err = Count(ctx, st, r); err != nil {
			return nil, fmt.Errorf("segment %s: %w", out[i].Name, err)
		}
	}
	return out, nil
}

// selectFrom is SELECT <what> over the base condition narrowed by w;
// needContact joins the contact row for what reads it.
func selectFrom(what string, w where, needContact bool) string {
	q := "SELECT " + what + baseFrom
	if needContact || w.contact {
		q += contactJoin
	}
	return q + "\nWHERE " + w.sql
}

// Count returns how many opt-ins the rule selects now (st.Now).
func Count(ctx context.Context, st *crm.Store, r *Rule) (int64, error) {
	w := r.compile(st.Now())
	var n int64
	if err := st.DB().QueryRowContext(ctx, selectFrom("count(*)", w, false), w.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count segment: %w", err)
	}
	return n, nil
}

// Details is what `segments show` prints.
type Details struct {
	Segment
	Canonical string          `json:"canonical"`
	Count     int64           `json:"count"`
	Interests []InterestCount `json:"interests"`
	Samples   []Sample        `json:"samples"`
	Countries []CountryCount  `json:"countries"`
	Base      string          `json:"base"`
	Exports   []ExportRecord  `json:"exports"`
}

// InterestCount is how many members chose an interest.
type InterestCount struct {
	Interest string `json:"interest"`
	Count    int64  `json:"count"`
}

// CountryCount is how many members live in a country.
type CountryCount struct {
	Country string `json:"country"`
	Count   int64  `json:"count"`
}

// Sample is a member with the phone number masked and no email: enough to
// see that the rule picks the right people, not enough to leak them.
type Sample struct {
	Phone     string   `json:"phone"`
	FirstName string   `json:"first_name"`
	Country   string   `json:"country"`
	Language  string   `json:"language"`
	Interests []string `json:"interests"`
	OptedInAt string   `json:"opted_in_at"`
}

// BaseCondition describes what every segment is limited to.
const BaseCondition = "current WhatsApp consent confirmed, a valid E.164 number, not erased, not suppressed for WhatsApp or everywhere"

// MaskPhone keeps the country code's start and the last two digits:
// +49151•••••67.
func MaskPhone(e164 string) string {
	if len(e164) <= 6 {
		return strings.Repeat("•", len(e164))
	}
	return e164[:4] + strings.Repeat("•", len(e164)-6) + e164[len(e164)-2:]
}

// Show returns a segment's count, rule, interest and country breakdown,
// up to samples masked members and its recent exports.
func Show(ctx context.Context, st *crm.Store, name string, samples int) (Details, error) {
	seg, err := Get(ctx, st, name)
	if err != nil {
		return Details{}, err
	}
	r, err := Parse(seg.Rule)
	if err != nil {
		return Details{}, fmt.Errorf("segment %s: stored rule: %w", name, err)
	}
	d := Details{Segment: seg, Canonical: r.String(), Base: BaseCondition,
		Interests: []InterestCount{}, Samples: []Sample{}, Countries: []CountryCount{}, Exports: []ExportRecord{}}
	// One read transaction: the count, breakdowns and samples agree.
	tx, err := st.DB().BeginTx(ctx, nil)
	if err != nil {
		return d, err
	}
	defer tx.Rollback()
	w := r.compile(st.Now())
	if err := tx.QueryRowContext(ctx, selectFrom("count(*)", w, false), w.args...).Scan(&d.Count); err != nil {
		return d, fmt.Errorf("count segment: %w", err)
	}
	members := selectFrom("o.contact_id", w, false)
	rows, err := tx.QueryContext(ctx, `SELECT ci.interest, count(*) FROM (`+members+`) m
		JOIN contact_interests ci ON ci.contact_id = m.contact_id
		GROUP BY ci.interest ORDER BY count(*) DESC, ci.interest`, w.args...)
	if err != nil {
		return d, fmt.Errorf("interest breakdown: %w", err)
	}
	for rows.Next() {
		var ic InterestCount
		if err := rows.Scan(&ic.Interest, &ic.Count); err != nil {
			rows.Close()
			return d, err
		}
		d.Interests = append(d.Interests, ic)
	}
	rows.Close()
	rows, err = tx.QueryContext(ctx, selectFrom("o.country, count(*)", w, false)+` GROUP BY o.country ORDER BY count(*) DESC, o.country`, w.args...)
	if err != nil {
		return d, fmt.Errorf("country breakdown: %w", err)
	}
	for rows.Next() {
		var cc CountryCount
		if err := rows.Scan(&cc.Country, &cc.Count); err != nil {
			rows.Close()
			return d, err
		}
		d.Countries = append(d.Countries, cc)
	}
	rows.Close()
	if samples > 0 {
		interests, _ := field("interests")
		rows, err = tx.QueryContext(ctx, selectFrom("o.phone_e164, o.first_name, o.country, o.language, "+interests.sql+", o.opted_in_at", w, false)+
			` ORDER BY o.contact_id LIMIT ?`, append(w.args, samples)...)
		if err != nil {
			return d, fmt.Errorf("samples: %w", err)
		}
		for rows.Next() {
			var s Sample
			var list string
			if err := rows.Scan(&s.Phone, &s.FirstName, &s.Country, &s.Language, &list, &s.OptedInAt); err != nil {
				rows.Close()
				return d, err
			}
			s.Phone = MaskPhone(s.Phone)
			s.Interests = splitList(list)
			d.Samples = append(d.Samples, s)
		}
		rows.Close()
	}
	if d.Exports, err = exportsOf(ctx, tx, seg.ID, 5); err != nil {
		return d, err
	}
	return d, rows.Err()
}

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, unitSep)
}
