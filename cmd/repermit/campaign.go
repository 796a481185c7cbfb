package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite"
	"github.com/urfave/cli/v2"
)

func campaignCommand() *cli.Command {
	// Options may follow the name: main's flagsFirst moves them in front.
	name := func(c *cli.Context) (string, error) {
		if c.NArg() != 1 {
			return "", usagef("repermit campaign "+c.Command.Name+" [OPTIONS] NAME", "give exactly one campaign name")
		}
		return c.Args().First(), nil
	}
	transportFlags := []cli.Flag{
		&cli.StringFlag{Name: "smtp", Usage: "smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465; default [sender] smtp"},
		&cli.StringFlag{Name: "outbox", Usage: "write .eml files into this directory instead (the default when no SMTP is configured)"},
		&cli.Float64Flag{Name: "rate", Usage: "at most this many messages per second (0: unthrottled; default [sender] rate)"},
		&cli.IntFlag{Name: "concurrency", Usage: "SMTP connections in parallel (default [sender] concurrency, else 8)"},
		&cli.IntFlag{Name: "limit", Usage: "send at most N messages now (a pilot batch)"},
		&cli.BoolFlag{Name: "allow-insecure-auth", Usage: "allow the SMTP password without TLS (a relay on localhost only)"},
		jsonFlag(),
	}
	return &cli.Command{
		Name:  "campaign",
		Usage: "create invitation campaigns, send invitations and reminders, show the funnel",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a campaign: subject, interests offered, the consent statement, expiry and reminders",
				ArgsUsage: "NAME",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "subject", Usage: "subject, per language as LANG:TEXT (plain TEXT is English); {business} is replaced"},
					&cli.StringSliceFlag{Name: "reminder-subject", Usage: "reminder subject, as --subject"},
					&cli.StringFlag{Name: "interests", Usage: "interests offered, comma-separated (labels from [interests] of the config); default all configured"},
					&cli.StringFlag{Name: "templates", Usage: "directory with LANG.txt and LANG.html templates overriding the built-in ones"},
					&cli.DurationFlag{Name: "expiry", Value: invite.DefaultExpiry, Usage: "how long an invitation link works"},
					&cli.IntFlag{Name: "reminders", Value: invite.DefaultReminderCount, Usage: "reminders at most (0: none)"},
					&cli.DurationFlag{Name: "reminder-after", Value: invite.DefaultReminderAfter, Usage: "delay before a reminder"},
					jsonFlag(),
				},
				Action: func(c *cli.Context) error {
					n, err := name(c)
					if err != nil {
						return err
					}
					cfg, err := loadConfig(c)
					if err != nil {
						return err
					}
					spec, err := campaignSpec(c, cfg, n)
					if err != nil {
						return err
					}
					st, err := openStore(c, false)
					if err != nil {
						return err
					}
					defer st.Close()
					camp, created, err := invite.CreateCampaign(c.Context, st, spec)
					if errors.Is(err, crm.ErrStatementChanged) {
						return withHint(err, "raise [statement] version in the config when you change the wording")
					}
					if err != nil {
						return withHint(err, "check the flags and the config, then run the same command again")
					}
					out := map[string]any{"name": camp.Name, "created": created, "statement_version": camp.StatementVersion,
						"interests": camp.Settings.Interests, "expiry_days": camp.Expiry.Hours() / 24,
						"reminders": camp.ReminderCount, "reminder_after_days": camp.ReminderAfter.Hours() / 24}
					if c.Bool("json") {
						return printJSON(c.App.Writer, out)
					}
					if created {
						fmt.Fprintf(c.App.Writer, "Created campaign %q (statement %s, expiry %.0f days, %d reminder(s) after %.0f days).\nNext: repermit campaign send --dry-run %s\n",
							camp.Name, camp.StatementVersion, camp.Expiry.Hours()/24, camp.ReminderCount, camp.ReminderAfter.Hours()/24, camp.Name)
					} else {
						fmt.Fprintf(c.App.Writer, "Campaign %q already exists; left unchanged.\n", camp.Name)
					}
					return nil
				},
			},
			{
				Name:      "send",
				Usage:     "invite every eligible contact not yet invited (resumes an interrupted send)",
				ArgsUsage: "NAME",
				Flags: append(append([]cli.Flag{}, transportFlags...),
					&cli.BoolFlag{Name: "dry-run", Usage: "count and render one sample; queue and send nothing"},
					&cli.StringFlag{Name: "sample", Value: "sample-invitation.eml", Usage: "where --dry-run writes the sample"}),
				Action: func(c *cli.Context) error { return sendAction(c, name, false) },
			},
			{
				Name:      "remind",
				Usage:     "send due reminders to those who have not answered (same link)",
				ArgsUsage: "NAME",
				Flags:     transportFlags,
				Action:    func(c *cli.Context) error { return sendAction(c, name, true) },
			},
			{
				Name:      "status",
				Usage:     "the campaign's funnel",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{jsonFlag()},
				Action: func(c *cli.Context) error {
					n, err := name(c)
					if err != nil {
						return err
					}
					st, err := openStore(c, true)
					if err != nil {
						return err
					}
					defer st.Close()
					f, err := invite.Status(c.Context, st, n)
					if err != nil {
						return campaignErr(err)
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, f)
					}
					printFunnel(c.App.Writer, n, f)
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "every campaign with its funnel",
				Flags: []cli.Flag{jsonFlag()},
				Action: func(c *cli.Context) error {
					st, err := openStore(c, true)
					if err != nil {
						return err
					}
					defer st.Close()
					list, err := invite.ListCampaigns(c.Context, st)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						type row struct {
							Name      string `json:"name"`
							CreatedAt string `json:"created_at"`
							invite.Funnel
						}
						rows := []row{}
						for _, s := range list {
							rows = append(rows, row{s.Name, crm.FormatTime(s.CreatedAt), s.Funnel})
						}
						return printJSON(c.App.Writer, map[string]any{"campaigns": rows})
					}
					if len(list) == 0 {
						fmt.Fprintln(c.App.Writer, "No campaigns yet. Create one: repermit campaign create NAME")
					}
					for _, s := range list {
						fmt.Fprintf(c.App.Writer, "%-24s created %s  invited %d  sent %d  confirmed %d  pending %d\n",
							s.Name, s.CreatedAt.Format("2006-01-02"), s.Invited, s.Sent, s.Confirmed, s.Pending)
					}
					return nil
				},
			},
		},
	}
}

func campaignErr(err error) error {
	if errors.Is(err, invite.ErrNoCampaign) {
		return withHint(err, "list campaigns with `repermit campaign list`, or create it with `repermit campaign create NAME`")
	}
	return err
}

func printFunnel(w io.Writer, name string, f invite.Funnel) {
	fmt.Fprintf(w, "Campaign %s\n  invited       %d\n  sent          %d\n  failed        %d\n  visited       %d\n  confirmed     %d\n  declined      %d\n  unsubscribed  %d\n  pending       %d\n  expired       %d\n",
		name, f.Invited, f.Sent, f.Failed, f.Visited, f.Confirmed, f.Declined, f.Unsubscribed, f.Pending, f.Expired)
}

// campaignSpec turns flags and config into a plain spec.
func campaignSpec(c *cli.Context, cfg Config, name string) (invite.CampaignSpec, error) {
	var names []string
	if v := c.String("interests"); v != "" {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	spec := cfg.campaignSpec(name, names)
	spec.Expiry, spec.ReminderAfter, spec.ReminderCount = c.Duration("expiry"), c.Duration("reminder-after"), c.Int("reminders")
	spec.NoReminders, spec.TemplateDir = c.Int("reminders") == 0, c.String("templates")
	var err error
	if spec.Subjects, err = perLanguage(c.StringSlice("subject")); err != nil {
		return spec, err
	}
	if spec.ReminderSubjects, err = perLanguage(c.StringSlice("reminder-subject")); err != nil {
		return spec, err
	}
	if spec.Expiry <= 0 || spec.ReminderAfter <= 0 || spec.ReminderCount < 0 {
		return spec, usagef("repermit campaign create NAME --expiry 720h --reminders 1 --reminder-after 168h", "expiry and reminder delay must be positive, reminders not negative")
	}
	return spec, nil
}

func perLanguage(vals []string) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, v := range vals {
		lang, text := "en", v
		if i := strings.IndexByte(v, ':'); i == 2 || (i > 2 && i <= 5 && strings.ContainsAny(v[:i], "-_")) {
			lang, text = strings.ToLower(v[:i]), strings.TrimSpace(v[i+1:])
		}
		if text == "" {
			return nil, usagef(`--subject "de:Hallo von {business}"`, "empty subject for %s", lang)
		}
		out[lang] = text
	}
	return out, nil
}

// identity is the sender identity of the config as plain values.
func identity(cfg Config) (invite.Identity, error) {
	id := invite.Identity{BusinessName: cfg.Business.Name, Address: cfg.Business.Address, PrivacyURL: cfg.Business.PrivacyURL,
		From: cfg.Sender.From, ReplyTo: cfg.Sender.ReplyTo, BaseURL: cfg.Web.BaseURL}
	if cfg.Sender.DKIMKeyFile != "" {
		if cfg.Sender.DKIMDomain == "" || cfg.Sender.DKIMSelector == "" {
			return id, withHint(errors.New("DKIM needs a domain and a selector"), "set [sender] dkim_domain and dkim_selector beside dkim_key_file")
		}
		k, err := invite.LoadDKIMKey(cfg.Sender.DKIMKeyFile)
		if err != nil {
			return id, withHint(err, "check [sender] dkim_key_file")
		}
		id.DKIM = &invite.DKIM{Domain: cfg.Sender.DKIMDomain, Selector: cfg.Sender.DKIMSelector, Signer: k}
	}
	return id, nil
}

func sendAction(c *cli.Context, name func(*cli.Context) (string, error), remind bool) error {
	n, err := name(c)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	id, err := identity(cfg)
	if err != nil {
		return err
	}
	// Sending is redone after a crash from the queue, so its commits need
	// not wait for the disk: that is what lets it keep up with SMTP.
	st, err := openStore(c, true, crm.SyncOnCheckpoint())
	if err != nil {
		return err
	}
	defer st.Close()
	o := invite.SendOptions{Campaign: n, Identity: id, Rate: cfg.Sender.Rate, Concurrency: cfg.Sender.Concurrency, Limit: c.Int("limit")}
	if c.IsSet("rate") {
		o.Rate = c.Float64("rate")
	}
	if c.IsSet("concurrency") {
		o.Concurrency = c.Int("concurrency")
	}
	if o.Limit < 0 || o.Rate < 0 || o.Concurrency < 0 {
		return usagef("repermit campaign send NAME --limit 100 --rate 20 --concurrency 8", "--limit, --rate and --concurrency must not be negative")
	}
	if !remind && c.Bool("dry-run") {
		res, m, err := invite.DryRun(c.Context, st, o)
		if err != nil {
			return campaignErr(err)
		}
		if m != nil {
			if err := os.WriteFile(c.String("sample"), m.Data, 0o600); err != nil {
				return withHint(err, "pick another file with --sample")
			}
		}
		if c.Bool("json") {
			return printJSON(c.App.Writer, res)
		}
		fmt.Fprintf(c.App.Writer, "Dry run: %d contact(s) would be invited; nothing queued or sent.\n", res.Eligible)
		if m != nil {
			fmt.Fprintf(c.App.Writer, "A sample message is in %s.\n", c.String("sample"))
		}
		return nil
	}
	sender := cfg.Sender
	if c.IsSet("smtp") {
		sender.SMTP = c.String("smtp")
	}
	if c.IsSet("outbox") {
		sender.SMTP, sender.Outbox = "", c.String("outbox")
	}
	sender.AllowInsecureAuth = sender.AllowInsecureAuth || c.Bool("allow-insecure-auth")
	if o.Transport, err = sender.transport(); err != nil {
		return err
	}
	o.Progress, o.ProgressBar = c.App.ErrWriter, isTerminal(c.App.ErrWriter)
	start := time.Now()
	cmdName := "send"
	if remind {
		cmdName = "remind"
	}
	resume := fmt.Sprintf("run `repermit campaign %s %s` again to resume: nothing sent is sent twice", cmdName, n)
	var out any
	if remind {
		var r invite.RemindResult
		r, err = invite.Remind(c.Context, st, o)
		out = r
		if err == nil && !c.Bool("json") {
			fmt.Fprintf(c.App.Writer, "Reminders: %d due, %d sent, %d failed, %d skipped (%s).\n", r.Due, r.Sent, r.Failed, r.Skipped, time.Since(start).Round(time.Millisecond))
		}
	} else {
		var r invite.SendResult
		r, err = invite.Send(c.Context, st, o)
		out = r
		if err == nil && !c.Bool("json") {
			fmt.Fprintf(c.App.Writer, "Invitations: %d eligible, %d queued, %d sent, %d failed (%d bounced, address suppressed), %d skipped (%s).\n",
				r.Eligible, r.Queued, r.Sent, r.Failed, r.Bounced, r.Skipped, time.Since(start).Round(time.Millisecond))
			if r.Deferred > 0 {
				fmt.Fprintf(c.App.Writer, "%d message(s) failed temporarily and stay queued: %s.\n", r.Deferred, resume)
			}
		}
	}
	switch {
	case err == nil:
		if c.Bool("json") {
			return printJSON(c.App.Writer, out)
		}
		return nil
	case errors.Is(err, invite.ErrNoCampaign):
		return campaignErr(err)
	case errors.Is(err, invite.ErrSenderBusy):
		return withHint(err, "wait for the other run to finish (only one sender at a time keeps every message single)")
	case errors.Is(err, invite.ErrTooManyFailures):
		return withHint(err, "check the mail server, the --smtp URL and its credentials, then "+resume)
	case errors.Is(err, c.Context.Err()) && c.Context.Err() != nil:
		return withHint(errors.New("interrupted; messages in flight were finished and recorded"), resume)
	default:
		return withHint(err, resume)
	}
}
