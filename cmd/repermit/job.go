package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite"
	"github.com/repermit/repermit/segments"
)

// job is one periodic re-permission run, as plain values. The steps run in
// an order that is safe to repeat after a crash at any point: every step
// either does nothing the second time (imports, queueing, expiry) or
// resumes from the database (sending).
type job struct {
	Imports       []string // files; globs are expanded by runJob
	Preset        string
	DefaultRegion string
	RejectsDir    string

	Campaign      invite.CampaignSpec
	RefreshMonths int
	Identity      invite.Identity
	Transport     invite.Transport
	Rate          float64
	Concurrency   int

	Segments    []string
	SegmentsDir string
	Format      string

	Log io.Writer // plain progress lines (no personal data); nil: silent
}

// jobSummary is what `run --json` prints.
type jobSummary struct {
	Import             *crm.ImportSummary  `json:"import,omitempty"`
	RejectsFile        string              `json:"rejects_file,omitempty"`
	Campaign           string              `json:"campaign"`
	RefreshCampaign    string              `json:"refresh_campaign,omitempty"`
	InvitationsExpired int                 `json:"invitations_expired"`
	ConsentsExpired    int                 `json:"consents_expired"`
	RefreshFlagged     int                 `json:"refresh_flagged"`
	Invitations        invite.SendResult   `json:"invitations"`
	RefreshInvitations invite.SendResult   `json:"refresh_invitations"`
	Reminders          invite.RemindResult `json:"reminders"`
	RefreshReminders   invite.RemindResult `json:"refresh_reminders"`
	Segments           map[string]int64    `json:"segments"`
	Funnel             invite.Funnel       `json:"funnel"`
}

// refreshCampaignName names the refresh campaign of a year: one per year,
// so that a person asked again this year can be asked again two years on.
func refreshCampaignName(campaign string, now time.Time) string {
	return fmt.Sprintf("%s-refresh-%d", campaign, now.Year())
}

func (j *job) logf(format string, args ...any) {
	if j.Log != nil {
		fmt.Fprintf(j.Log, "run: "+format+"\n", args...)
	}
}

// runJob runs the periodic job: import the configured exports; expire
// unanswered invitations and, past their deadline, unconfirmed refreshes;
// flag WhatsApp consents older than the refresh period for this year's
// refresh campaign; invite the newly eligible and the flagged; send due
// reminders; export the configured segments. A lock beside the database
// keeps two runs from overlapping.
func runJob(ctx context.Context, st *crm.Store, j job) (jobSummary, error) {
	sum := jobSummary{Campaign: j.Campaign.Name, Segments: map[string]int64{}}
	release, err := st.Lock("run")
	if errors.Is(err, crm.ErrLocked) {
		return sum, withHint(fmt.Errorf("another `repermit run` is still running on this database (%w)", err),
			"let it finish; cron can simply try again at the next interval")
	}
	if err != nil {
		return sum, err
	}
	defer release()

	// 1. Imports.
	var files []string
	for _, pattern := range j.Imports {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return sum, withHint(fmt.Errorf("[run] imports: %w", err), "fix the pattern in the config")
		}
		if len(matches) == 0 {
			return sum, withHint(fmt.Errorf("[run] imports: no file matches %s", pattern),
				"put the CRM export there, or fix [run] imports in the config")
		}
		files = append(files, matches...)
	}
	if len(files) > 0 {
		if err := os.MkdirAll(j.RejectsDir, 0o755); err != nil {
			return sum, err
		}
		rejects := &crm.RejectsFile{Path: filepath.Join(j.RejectsDir, "rejects-"+st.Now().UTC().Format("20060102-150405")+".csv")}
		imp, err := st.Import(ctx, files, crm.ImportOptions{Preset: j.Preset, DefaultRegion: j.DefaultRegion, Rejects: rejects})
		if cerr := rejects.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return sum, withHint(fmt.Errorf("import: %w", err), "fix the export, then run again: nothing is imported twice")
		}
		sum.Import = &imp
		if rejects.Count > 0 {
			sum.RejectsFile = rejects.Path
		}
		j.logf("imported %d rows from %d file(s): %d created, %d updated, %d rejected", imp.Rows, len(files), imp.Created, imp.Updated, imp.Rejected)
	}

	// 2. The rolling campaign exists; so may refresh campaigns of earlier runs.
	if _, _, err := invite.CreateCampaign(ctx, st, j.Campaign); err != nil {
		return sum, withHint(fmt.Errorf("campaign %s: %w", j.Campaign.Name, err), "check [run] campaign and [statement] in the config")
	}
	campaigns := []string{j.Campaign.Name}
	all, err := invite.ListCampaigns(ctx, st)
	if err != nil {
		return sum, err
	}
	for _, c := range all {
		if c.Settings.Refresh && strings.HasPrefix(c.Name, j.Campaign.Name+"-refresh-") {
			campaigns = append(campaigns, c.Name)
		}
	}

	// 3. Expiry: invitations past their link's expiry, then refreshed
	// consents past their deadline (they leave segments).
	for _, name := range campaigns {
		n, err := invite.Expire(ctx, st, name)
		if err != nil {
			return sum, err
		}
		sum.InvitationsExpired += n
	}
	if sum.ConsentsExpired, err = invite.ExpireRefresh(ctx, st); err != nil {
		return sum, err
	}

	// 4. Consents older than the refresh period are asked for again, by
	// this year's refresh campaign (created when somebody is due).
	if j.RefreshMonths > 0 {
		cutoff := st.Now().AddDate(0, -j.RefreshMonths, 0)
		due, err := invite.CountRefreshDue(ctx, st, cutoff)
		if err != nil {
			return sum, err
		}
		if due > 0 {
			refresh := j.Campaign
			refresh.Name = refreshCampaignName(j.Campaign.Name, st.Now())
			refresh.Refresh = true
			if _, created, err := invite.CreateCampaign(ctx, st, refresh); err != nil {
				return sum, fmt.Errorf("campaign %s: %w", refresh.Name, err)
			} else if created {
				campaigns = append(campaigns, refresh.Name)
			}
			sum.RefreshCampaign = refresh.Name
			if sum.RefreshFlagged, err = invite.FlagRefresh(ctx, st, refresh.Name, cutoff); err != nil {
				return sum, err
			}
		}
	}
	j.logf("%d invitation(s) expired, %d consent(s) expired after refresh, %d consent(s) due for refresh",
		sum.InvitationsExpired, sum.ConsentsExpired, sum.RefreshFlagged)

	// 5. Invitations and reminders, in every campaign the job runs.
	for i, name := range campaigns {
		o := invite.SendOptions{Campaign: name, Identity: j.Identity, Transport: j.Transport, Rate: j.Rate,
			Concurrency: j.Concurrency, Progress: j.Log}
		sent, err := invite.Send(ctx, st, o)
		if err != nil {
			return sum, sendErr(err)
		}
		reminded, err := invite.Remind(ctx, st, o)
		if err != nil {
			return sum, sendErr(err)
		}
		if i == 0 {
			sum.Invitations, sum.Reminders = sent, reminded
		} else {
			addSend(&sum.RefreshInvitations, sent)
			addRemind(&sum.RefreshReminders, reminded)
		}
	}
	j.logf("%d invitation(s) and %d refresh invitation(s) sent, %d reminder(s) sent",
		sum.Invitations.Sent, sum.RefreshInvitations.Sent, sum.Reminders.Sent+sum.RefreshReminders.Sent)

	// 6. Segments, rebuilt from the current ledger.
	if len(j.Segments) > 0 {
		if err := os.MkdirAll(j.SegmentsDir, 0o755); err != nil {
			return sum, err
		}
	}
	for _, name := range j.Segments {
		ext := "csv"
		if j.Format == "jsonl" {
			ext = "jsonl"
		}
		res, err := segments.Export(ctx, st, name, segments.ExportOptions{Format: j.Format,
			Out: filepath.Join(j.SegmentsDir, name+"."+ext)})
		if err != nil {
			return sum, withHint(fmt.Errorf("segment %s: %w", name, err),
				"create it with `repermit segments create "+name+" --rule ...`, or fix [run] segments")
		}
		sum.Segments[name] = res.Rows
	}
	if len(j.Segments) > 0 {
		j.logf("exported %d segment(s) into %s", len(j.Segments), j.SegmentsDir)
	}
	sum.Funnel, err = invite.Status(ctx, st, j.Campaign.Name)
	return sum, err
}

func addSend(a *invite.SendResult, b invite.SendResult) {
	a.Eligible += b.Eligible
	a.Queued += b.Queued
	a.Sent += b.Sent
	a.Failed += b.Failed
	a.Skipped += b.Skipped
}

func addRemind(a *invite.RemindResult, b invite.RemindResult) {
	a.Due += b.Due
	a.Sent += b.Sent
	a.Failed += b.Failed
	a.Skipped += b.Skipped
}

// sendErr says how to resume a run stopped while sending.
func sendErr(err error) error {
	switch {
	case errors.Is(err, invite.ErrTooManyFailures):
		return withHint(err, "check the mail server and [sender] smtp, then run again: nothing sent is sent twice")
	case errors.Is(err, invite.ErrSenderBusy):
		return withHint(err, "a `campaign send` is running on this database; run again when it is done")
	}
	return withHint(err, "run again: the run resumes where it stopped")
}

// jobFromConfig turns the config into a job.
func jobFromConfig(cfg Config) (job, error) {
	id, err := identity(cfg)
	if err != nil {
		return job{}, err
	}
	t, err := cfg.Sender.transport()
	if err != nil {
		return job{}, err
	}
	name := strings.TrimSpace(cfg.Run.Campaign)
	if name == "" {
		return job{}, withHint(errors.New("[run] campaign is empty"), "name the rolling campaign in the config, e.g. campaign = \"whatsapp-optin\"")
	}
	return job{Imports: cfg.Run.Imports, Preset: cfg.Run.Preset, DefaultRegion: cfg.Import.DefaultRegion,
		RejectsDir: cfg.Run.Rejects, Campaign: cfg.campaignSpec(name, nil), RefreshMonths: cfg.Run.RefreshMonths,
		Identity: id, Transport: t, Rate: cfg.Sender.Rate, Concurrency: cfg.Sender.Concurrency,
		Segments: cfg.Run.Segments, SegmentsDir: cfg.Run.SegmentsDir, Format: cfg.Run.Format}, nil
}
