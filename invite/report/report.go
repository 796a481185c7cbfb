// Package report computes the campaign funnel and writes it for people: an
// aligned table for the terminal and a self-contained HTML page with SVG
// charts for a marketer. It reads the store's tables with SQL (campaigns,
// invitations, consent, interests, the invite_eligible view) and never
// writes; it does not depend on the invite package, so the report works on
// any database the sender wrote.
package report

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/repermit/repermit/crm"
)

// Funnel counts a campaign's invitations by how far they got.
type Funnel struct {
	// Eligible is everyone the campaign invited plus everyone who may still
	// be invited now (invite_eligible, not yet invited by it).
	Eligible int64 `json:"eligible"`
	Invited  int64 `json:"invited"`
	// Delivered were handed to the mail server (or written to the outbox).
	Delivered int64 `json:"delivered"`
	Failed    int64 `json:"failed"`
	// Queued wait to be sent (queued, or being sent right now).
	Queued       int64 `json:"queued"`
	Visited      int64 `json:"visited"`
	Confirmed    int64 `json:"confirmed"`
	Declined     int64 `json:"declined"`
	Unsubscribed int64 `json:"unsubscribed"`
	// Pending were delivered, have not answered and may still answer.
	Pending int64 `json:"pending"`
	// Expired were delivered and did not answer before the link expired.
	Expired int64 `json:"expired"`
}

// Day is the number of confirmations on one UTC day (or in the week that
// starts on it, when the campaign ran for months).
type Day struct {
	Day       string `json:"day"` // YYYY-MM-DD
	Confirmed int64  `json:"confirmed"`
}

// Interest is how many of the people who confirmed chose an interest.
type Interest struct {
	Name  string  `json:"name"`
	Label string  `json:"label"`
	Count int64   `json:"count"`
	Share float64 `json:"share"` // of confirmed, 0…1
}

// Campaign is the report of one campaign.
type Campaign struct {
	Name             string    `json:"name"`
	CreatedAt        time.Time `json:"created_at"`
	StatementVersion string    `json:"statement_version"`
	Funnel           Funnel    `json:"funnel"`
	// ConfirmationRate is confirmed / delivered (0 when none delivered).
	ConfirmationRate float64 `json:"confirmation_rate"`
	// MedianToConfirm is the median time from sending to confirming.
	MedianToConfirm        time.Duration `json:"-"`
	MedianToConfirmSeconds float64       `json:"median_seconds_to_confirm"`
	// ReachableNow is how many who confirmed are WhatsApp opt-ins today
	// (not withdrawn, expired, erased or suppressed since).
	ReachableNow int64 `json:"reachable_now"`
	// Weekly says that Days holds weeks (a long campaign), not days.
	Weekly    bool       `json:"weekly,omitempty"`
	Days      []Day      `json:"confirmations_per_day"`
	Interests []Interest `json:"interests"`
}

// Report is the whole report.
type Report struct {
	GeneratedAt time.Time  `json:"generated_at"`
	Business    string     `json:"business,omitempty"`
	Campaigns   []Campaign `json:"campaigns"`
}

// Options say what to report.
type Options struct {
	// Campaign limits the report to one campaign ("" means all).
	Campaign string
	// Now decides which unanswered invitations have expired (default: the
	// current time).
	Now time.Time
	// Business is the name shown on the page.
	Business string
	// Language picks interest labels (default "en").
	Language string
}

// ErrNoCampaign is returned when the named campaign does not exist.
var ErrNoCampaign = errors.New("no such campaign")

// maxDays is how many days a confirmations chart shows before it switches
// to weeks.
const maxDays = 120

// Build computes the report. Each campaign costs a few aggregate queries
// over its own invitations (the invitations_status index); no table is
// loaded into memory.
func Build(ctx context.Context, db *sql.DB, opt Options) (Report, error) {
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	if opt.Language == "" {
		opt.Language = "en"
	}
	rep := Report{GeneratedAt: opt.Now.UTC(), Business: opt.Business, Campaigns: []Campaign{}}
	q := `SELECT id, name, settings, statement_version, created_at FROM campaigns`
	var args []any
	if opt.Campaign != "" {
		q += ` WHERE name = ?`
		args = append(args, opt.Campaign)
	}
	type head struct {
		id                        int64
		name, settings, stmt, cre string
	}
	var heads []head
	rows, err := db.QueryContext(ctx, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return rep, fmt.Errorf("read campaigns: %w", err)
	}
	for rows.Next() {
		var h head
		if err := rows.Scan(&h.id, &h.name, &h.settings, &h.stmt, &h.cre); err != nil {
			rows.Close()
			return rep, err
		}
		heads = append(heads, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, err
	}
	if opt.Campaign != "" && len(heads) == 0 {
		return rep, fmt.Errorf("campaign %q: %w", opt.Campaign, ErrNoCampaign)
	}
	for _, h := range heads {
		c := Campaign{Name: h.name, StatementVersion: h.stmt}
		c.CreatedAt, _ = crm.ParseTime(h.cre)
		if err := fill(ctx, db, h.id, h.settings, opt, &c); err != nil {
			return rep, fmt.Errorf("campaign %s: %w", h.name, err)
		}
		rep.Campaigns = append(rep.Campaigns, c)
	}
	return rep, nil
}

func fill(ctx context.Context, db *sql.DB, id int64, settings string, opt Options, c *Campaign) error {
	now := crm.FormatTime(opt.Now)
	f := &c.Funnel
	// One pass over the campaign's invitations. Times are fixed-width UTC
	// text, so comparing text compares time.
	err := db.QueryRowContext(ctx, `SELECT count(*),
		coalesce(sum(status = 'sent'), 0),
		coalesce(sum(status = 'failed'), 0),
		coalesce(sum(status IN ('queued', 'sending')), 0),
		coalesce(sum(first_visit_at <> '' OR visits > 0), 0),
		coalesce(sum(response = 'confirmed'), 0),
		coalesce(sum(response = 'declined'), 0),
		coalesce(sum(response = 'unsubscribed'), 0),
		coalesce(sum(status = 'sent' AND response = '' AND expires_at > ?), 0),
		coalesce(sum(status = 'sent' AND response = '' AND expires_at <= ?), 0)
		FROM invitations WHERE campaign_id = ?`, now, now, id).Scan(
		&f.Invited, &f.Delivered, &f.Failed, &f.Queued, &f.Visited, &f.Confirmed, &f.Declined, &f.Unsubscribed,
		&f.Pending, &f.Expired)
	if err != nil {
		return fmt.Errorf("funnel: %w", err)
	}
	var notYet int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM invite_eligible e
		WHERE NOT EXISTS (SELECT 1 FROM invitations i WHERE i.campaign_id = ? AND i.contact_id = e.contact_id)`,
		id).Scan(&notYet); err != nil {
		return fmt.Errorf("eligible: %w", err)
	}
	f.Eligible = f.Invited + notYet
	if f.Delivered > 0 {
		c.ConfirmationRate = float64(f.Confirmed) / float64(f.Delivered)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM invitations i
		JOIN whatsapp_optins o ON o.contact_id = i.contact_id
		WHERE i.campaign_id = ? AND i.response = 'confirmed'`, id).Scan(&c.ReachableNow); err != nil {
		return fmt.Errorf("reachable: %w", err)
	}
	if err := median(ctx, db, id, c); err != nil {
		return err
	}
	if err := days(ctx, db, id, c); err != nil {
		return err
	}
	return interests(ctx, db, id, settings, opt.Language, c)
}

// median finds the middle confirmation time by sorting in SQL and reading
// one or two rows at the middle offset.
func median(ctx context.Context, db *sql.DB, id int64, c *Campaign) error {
	const where = `FROM invitations WHERE campaign_id = ? AND response = 'confirmed' AND sent_at <> '' AND responded_at > sent_at`
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) `+where, id).Scan(&n); err != nil {
		return fmt.Errorf("median: %w", err)
	}
	if n == 0 {
		return nil
	}
	rows, err := db.QueryContext(ctx, `SELECT (julianday(responded_at) - julianday(sent_at)) * 86400.0 AS d `+where+
		` ORDER BY d LIMIT ? OFFSET ?`, id, 2-n%2, (n-1)/2)
	if err != nil {
		return fmt.Errorf("median: %w", err)
	}
	defer rows.Close()
	var sum float64
	var k int
	for rows.Next() {
		var d float64
		if err := rows.Scan(&d); err != nil {
			return err
		}
		sum += d
		k++
	}
	if k > 0 {
		secs := math.Round(sum / float64(k))
		c.MedianToConfirm = time.Duration(secs) * time.Second
		c.MedianToConfirmSeconds = secs
	}
	return rows.Err()
}

// days counts confirmations per UTC day and fills the days without any, so
// that a chart shows the quiet days too. A campaign longer than maxDays is
// counted per week (weeks start on Monday).
func days(ctx context.Context, db *sql.DB, id int64, c *Campaign) error {
	rows, err := db.QueryContext(ctx, `SELECT substr(responded_at, 1, 10) AS day, count(*) FROM invitations
		WHERE campaign_id = ? AND response = 'confirmed' AND responded_at <> '' GROUP BY day ORDER BY day`, id)
	if err != nil {
		return fmt.Errorf("confirmations per day: %w", err)
	}
	defer rows.Close()
	counts := map[string]int64{}
	var first, last time.Time
	for rows.Next() {
		var day string
		var n int64
		if err := rows.Scan(&day, &n); err != nil {
			return err
		}
		t, err := time.Parse("2006-01-02", day)
		if err != nil {
			continue
		}
		if first.IsZero() {
			first = t
		}
		last = t
		counts[day] = n
	}
	if err := rows.Err(); err != nil {
		return err
	}
	c.Days = []Day{}
	if first.IsZero() {
		return nil
	}
	step := 24 * time.Hour
	if last.Sub(first) > maxDays*24*time.Hour {
		c.Weekly = true
		step *= 7
		first = first.AddDate(0, 0, -((int(first.Weekday()) + 6) % 7)) // back to Monday
	}
	for d := first; !d.After(last); d = d.Add(step) {
		var n int64
		for k := time.Duration(0); k < step; k += 24 * time.Hour {
			n += counts[d.Add(k).Format("2006-01-02")]
		}
		c.Days = append(c.Days, Day{Day: d.Format("2006-01-02"), Confirmed: n})
	}
	return nil
}

// campaignSettings is the part of campaigns.settings the report reads
// (the interests offered), declared here so that report does not depend on
// the invite package.
type campaignSettings struct {
	Interests []struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"interests"`
}

// interests counts the interests chosen by the people who confirmed. Every
// interest the campaign offered is listed, chosen or not.
func interests(ctx context.Context, db *sql.DB, id int64, settings, lang string, c *Campaign) error {
	var cs campaignSettings
	_ = json.Unmarshal([]byte(settings), &cs) // a campaign without interests still reports
	labels := map[string]string{}
	var order []string
	for _, in := range cs.Interests {
		l := in.Labels[lang]
		if l == "" {
			l = in.Labels["en"]
		}
		if l == "" {
			l = in.Name
		}
		labels[in.Name] = l
		order = append(order, in.Name)
	}
	rows, err := db.QueryContext(ctx, `SELECT ci.interest, count(*) AS n FROM invitations i
		JOIN contact_interests ci ON ci.contact_id = i.contact_id
		WHERE i.campaign_id = ? AND i.response = 'confirmed'
		GROUP BY ci.interest ORDER BY n DESC, ci.interest`, id)
	if err != nil {
		return fmt.Errorf("interests: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	c.Interests = []Interest{}
	for rows.Next() {
		var in Interest
		if err := rows.Scan(&in.Name, &in.Count); err != nil {
			return err
		}
		in.Label = labels[in.Name]
		if in.Label == "" {
			in.Label = in.Name
		}
		if c.Funnel.Confirmed > 0 {
			in.Share = float64(in.Count) / float64(c.Funnel.Confirmed)
		}
		seen[in.Name] = true
		c.Interests = append(c.Interests, in)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, name := range order {
		if !seen[name] {
			c.Interests = append(c.Interests, Interest{Name: name, Label: labels[name]})
		}
	}
	return nil
}

// HumanDuration writes a duration the way people say it: "45 s",
// "12 min", "3 h 5 min", "2 d 4 h".
func HumanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 24*time.Hour:
		h := int(d.Hours())
		return strings.TrimSuffix(fmt.Sprintf("%d h %d min", h, int(d.Minutes())-60*h), " 0 min")
	}
	days := int(d.Hours()) / 24
	return strings.TrimSuffix(fmt.Sprintf("%d d %d h", days, int(d.Hours())-24*days), " 0 h")
}

// percent writes a share 0…1 as "41.2%".
func percent(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

// ratio is a/b, 0 when b is 0.
func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
