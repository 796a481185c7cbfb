package invite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/repermit/repermit/crm"
)

// Defaults of a campaign's policy.
const (
	DefaultExpiry        = 30 * 24 * time.Hour
	DefaultReminderAfter = 7 * 24 * time.Hour
	DefaultReminderCount = 1
)

// ErrNoCampaign is returned for a campaign name that does not exist.
var ErrNoCampaign = errors.New("no such campaign")

// Campaign is one invitation campaign as stored.
type Campaign struct {
	ID               int64         `json:"id"`
	Name             string        `json:"name"`
	Settings         Settings      `json:"settings"`
	StatementVersion string        `json:"statement_version"`
	Expiry           time.Duration `json:"-"`
	ReminderCount    int           `json:"reminder_count"`
	ReminderAfter    time.Duration `json:"-"`
	CreatedAt        time.Time     `json:"created_at"`
}

// CampaignSpec is what campaign create (or the run job) asks for. Zero
// values take the defaults: 30 days expiry, one reminder after 7 days.
type CampaignSpec struct {
	Name string
	// Subjects and ReminderSubjects per language override the templates'
	// subjects; "{business}" is replaced by the business name.
	Subjects         map[string]string
	ReminderSubjects map[string]string
	Interests        []Interest
	// StatementVersion and Statements (language → exact wording) are the
	// WhatsApp consent statement the confirmation page will show; each is
	// saved once in the store with its SHA-256.
	StatementVersion string
	Statements       map[string]string
	Expiry           time.Duration
	ReminderAfter    time.Duration
	ReminderCount    int  // 0 → DefaultReminderCount
	NoReminders      bool // reminders off
	TemplateDir      string
	// Refresh makes it a refresh campaign: it invites only the contacts
	// FlagRefresh flags for it.
	Refresh bool
}

// CreateCampaign stores a campaign and its consent statements. It is
// idempotent: when a campaign of that name exists it is returned unchanged
// (created false), so the periodic job can call it every time.
func CreateCampaign(ctx context.Context, st *crm.Store, spec CampaignSpec) (c Campaign, created bool, err error) {
	spec.Name = strings.TrimSpace(spec.Name)
	if spec.Name == "" {
		return c, false, errors.New("a campaign needs a name")
	}
	if existing, err := LoadCampaign(ctx, st, spec.Name); err == nil {
		return existing, false, nil
	} else if !errors.Is(err, ErrNoCampaign) {
		return c, false, err
	}
	if spec.StatementVersion == "" || len(spec.Statements) == 0 {
		return c, false, errors.New("the campaign needs the WhatsApp consent statement (version and wording); set [statement] in the config")
	}
	for lang, text := range spec.Statements {
		if strings.TrimSpace(text) == "" {
			return c, false, fmt.Errorf("the consent statement for language %q is empty; write its wording in [statement.text] of the config", lang)
		}
	}
	if _, err := loadTemplates(spec.TemplateDir); err != nil {
		return c, false, err
	}
	if spec.Expiry == 0 {
		spec.Expiry = DefaultExpiry
	}
	if spec.ReminderAfter == 0 {
		spec.ReminderAfter = DefaultReminderAfter
	}
	if spec.ReminderCount == 0 {
		spec.ReminderCount = DefaultReminderCount
	}
	if spec.NoReminders {
		spec.ReminderCount = 0
	}
	if spec.Expiry < 0 || spec.ReminderAfter < 0 || spec.ReminderCount < 0 {
		return c, false, errors.New("expiry, reminder delay and reminder count must not be negative")
	}
	c = Campaign{Name: spec.Name, StatementVersion: spec.StatementVersion, Expiry: spec.Expiry,
		ReminderCount: spec.ReminderCount, ReminderAfter: spec.ReminderAfter,
		Settings: Settings{Interests: spec.Interests, Subjects: spec.Subjects,
			ReminderSubjects: spec.ReminderSubjects, TemplateDir: spec.TemplateDir, Refresh: spec.Refresh}}
	if c.Settings.Interests == nil {
		c.Settings.Interests = []Interest{}
	}
	settings, err := json.Marshal(c.Settings)
	if err != nil {
		return c, false, err
	}
	langs := make([]string, 0, len(spec.Statements))
	for l := range spec.Statements {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	err = st.Update(ctx, func(tx *crm.Tx) error {
		for _, lang := range langs {
			if _, err := tx.SaveStatement(crm.Statement{Channel: crm.ChannelWhatsApp, Version: spec.StatementVersion,
				Language: lang, Text: spec.Statements[lang]}); err != nil {
				return err
			}
		}
		res, err := tx.Exec(`INSERT INTO campaigns (name, settings, statement_version, expiry_seconds, reminder_count,
			reminder_after_seconds, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.Name, string(settings), c.StatementVersion, int64(c.Expiry/time.Second), c.ReminderCount,
			int64(c.ReminderAfter/time.Second), crm.FormatTime(tx.Now))
		if err != nil {
			return fmt.Errorf("create campaign: %w", err)
		}
		c.ID, err = res.LastInsertId()
		c.CreatedAt = tx.Now
		return err
	})
	if err != nil {
		return Campaign{}, false, err
	}
	return c, true, nil
}

const campaignColumns = `id, name, settings, statement_version, expiry_seconds, reminder_count, reminder_after_seconds, created_at`

func scanCampaign(row interface{ Scan(...any) error }) (Campaign, error) {
	var c Campaign
	var settings, created string
	var expiry, after int64
	if err := row.Scan(&c.ID, &c.Name, &settings, &c.StatementVersion, &expiry, &c.ReminderCount, &after, &created); err != nil {
		return c, err
	}
	if err := json.Unmarshal([]byte(settings), &c.Settings); err != nil {
		return c, fmt.Errorf("campaign %s: bad settings: %w", c.Name, err)
	}
	c.Expiry = time.Duration(expiry) * time.Second
	c.ReminderAfter = time.Duration(after) * time.Second
	c.CreatedAt, _ = crm.ParseTime(created)
	return c, nil
}

// LoadCampaign finds a campaign by name.
func LoadCampaign(ctx context.Context, st *crm.Store, name string) (Campaign, error) {
	c, err := scanCampaign(st.DB().QueryRowContext(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("campaign %q: %w", name, ErrNoCampaign)
	}
	return c, err
}

// Funnel is a campaign's progress. Pending are sent invitations still
// waiting for an answer (not expired).
type Funnel struct {
	Invited      int `json:"invited"`
	Sent         int `json:"sent"`
	Failed       int `json:"failed"`
	Visited      int `json:"visited"`
	Confirmed    int `json:"confirmed"`
	Declined     int `json:"declined"`
	Unsubscribed int `json:"unsubscribed"`
	Pending      int `json:"pending"`
	Expired      int `json:"expired"`
}

// CampaignSummary is a campaign with its funnel (campaign list).
type CampaignSummary struct {
	Campaign
	Funnel
}

// Status returns the funnel of a campaign.
func Status(ctx context.Context, st *crm.Store, name string) (Funnel, error) {
	c, err := LoadCampaign(ctx, st, name)
	if err != nil {
		return Funnel{}, err
	}
	return funnel(ctx, st, c.ID)
}

func funnel(ctx context.Context, st *crm.Store, campaignID int64) (Funnel, error) {
	var f Funnel
	err := st.DB().QueryRowContext(ctx, `SELECT count(*),
		coalesce(sum(status = 'sent'), 0),
		coalesce(sum(status = 'failed'), 0),
		coalesce(sum(first_visit_at <> ''), 0),
		coalesce(sum(response = 'confirmed'), 0),
		coalesce(sum(response = 'declined'), 0),
		coalesce(sum(response = 'unsubscribed'), 0),
		coalesce(sum(status = 'sent' AND response = '' AND expired_at = ''), 0),
		coalesce(sum(expired_at <> '' AND response = ''), 0)
		FROM invitations WHERE campaign_id = ?`, campaignID).Scan(&f.Invited, &f.Sent, &f.Failed, &f.Visited,
		&f.Confirmed, &f.Declined, &f.Unsubscribed, &f.Pending, &f.Expired)
	return f, err
}

// ListCampaigns returns every campaign with its funnel, oldest first.
func ListCampaigns(ctx context.Context, st *crm.Store) ([]CampaignSummary, error) {
	rows, err := st.DB().QueryContext(ctx, `SELECT `+campaignColumns+` FROM campaigns ORDER BY id`)
	if err != nil {
		return nil, err
	}
	var out []CampaignSummary
	for rows.Next() {
		c, err := scanCampaign(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, CampaignSummary{Campaign: c})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Funnel, err = funnel(ctx, st, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Expire marks the campaign's unanswered invitations whose expires_at has
// passed as expired and returns how many. Their links answer 410 from then
// on (the pages check expires_at) and no reminder goes to them.
func Expire(ctx context.Context, st *crm.Store, name string) (int, error) {
	c, err := LoadCampaign(ctx, st, name)
	if err != nil {
		return 0, err
	}
	var n int64
	err = st.Update(ctx, func(tx *crm.Tx) error {
		now := crm.FormatTime(tx.Now)
		res, err := tx.Exec(`UPDATE invitations SET expired_at = ?, reminder_status = CASE reminder_status WHEN 'queued' THEN '' ELSE reminder_status END
			WHERE campaign_id = ? AND status = 'sent' AND response = '' AND expired_at = '' AND expires_at <= ?`, now, c.ID, now)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
