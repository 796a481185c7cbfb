package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/repermit/repermit/crm"
	"github.com/urfave/cli/v2"
)

// openStore opens the database of --db. Commands that only read pass
// mustExist, so that a typo in --db is reported instead of creating an empty
// database.
func openStore(c *cli.Context, mustExist bool, opts ...crm.Option) (*crm.Store, error) {
	path := c.String("db")
	if path == "" {
		path = "./repermit.db" // an empty REPERMIT_DB means the default, not an in-memory database
	}
	if mustExist {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, withHint(fmt.Errorf("no database at %s", path),
				"run `repermit import FILE` first, or pass --db (or REPERMIT_DB) with the right path")
		}
	}
	st, err := crm.Open(c.Context, path, opts...)
	if err != nil {
		return nil, withHint(err, "check that --db points to a writable repermit database")
	}
	return st, nil
}

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "write a commented repermit.toml and create the database",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "business", Usage: "the business name people know you by"},
			&cli.StringFlag{Name: "from", Usage: `the sender, e.g. "Acme <news@acme.example>"`},
			&cli.StringFlag{Name: "base-url", Usage: "where `repermit serve` is reachable, e.g. https://optin.acme.example"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing config file"},
		},
		Action: func(c *cli.Context) error {
			path := c.String("config")
			if path == "" {
				path = "repermit.toml"
			}
			if _, err := os.Stat(path); err == nil && !c.Bool("force") {
				return withHint(fmt.Errorf("%s already exists", path), "edit it, or pass --force to overwrite it")
			}
			cfg := defaultConfig()
			if v := c.String("business"); v != "" {
				cfg.Business.Name = v
			}
			if v := c.String("from"); v != "" {
				cfg.Sender.From = v
			}
			if v := c.String("base-url"); v != "" {
				cfg.Web.BaseURL = strings.TrimRight(v, "/")
			}
			if err := os.WriteFile(path, []byte(configTemplate(cfg)), 0o644); err != nil {
				return withHint(err, "check that the directory is writable")
			}
			st, err := openStore(c, false)
			if err != nil {
				return err
			}
			defer st.Close()
			fmt.Fprintf(c.App.Writer, "Wrote %s and created the database %s.\nNext: edit %s, then `repermit import YOUR_EXPORT.csv`.\n", path, c.String("db"), path)
			return nil
		},
	}
}

func configTemplate(cfg Config) string {
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	var b strings.Builder
	fmt.Fprintf(&b, `# repermit configuration. Lines starting with # are comments.

[business]
# The name people know you by: it is in every invitation and on the confirmation page.
name = %s
# Your postal address: bulk-mail rules (CAN-SPAM, Gmail/Yahoo) want it in every email.
address = %s
# Your privacy policy (linked from the page and in consent receipts).
privacy_url = ""
# Your WhatsApp Business number in E.164, e.g. "+4915112345678" (offers "Open WhatsApp" after confirming).
whatsapp_number = ""
# Where your consent law comes from, for consent receipts (e.g. "EU", "CA", "US-CA").
jurisdiction = %s

[sender]
from = %s
reply_to = ""
# SMTP server, e.g. "smtp://user:pass@mail.example.com:587" (STARTTLS) or "smtps://...:465".
# Empty: invitations are written as .eml files into the outbox folder instead.
smtp = ""
outbox = %s
# DKIM signing (optional): domain, selector and a PEM private key file.
dkim_domain = ""
dkim_selector = ""
dkim_key_file = ""
# Messages per second (0 = no limit) and SMTP connections.
rate = 0.0
concurrency = %d

[web]
# The public address of `+"`repermit serve`"+`: links in invitations point here.
base_url = %s
addr = %s
# Behind a reverse proxy: take the client IP from X-Forwarded-For.
trust_proxy = false

[import]
# Country used for phone numbers without an international prefix (ISO code, e.g. "DE").
default_region = ""

# The WhatsApp consent statement, shown verbatim on the confirmation page. Its SHA-256
# goes into every consent event. When you change the wording, change the version too.
# {{business}} is replaced by the business name.
[statement]
version = %s
[statement.text]
`, q(cfg.Business.Name), q(cfg.Business.Address), q(cfg.Business.Jurisdiction), q(cfg.Sender.From),
		q(cfg.Sender.Outbox), cfg.Sender.Concurrency, q(cfg.Web.BaseURL), q(cfg.Web.Addr), q(cfg.Statement.Version))
	for _, lang := range sortedKeys(cfg.Statement.Text) {
		fmt.Fprintf(&b, "%s = %s\n", lang, q(cfg.Statement.Text[lang]))
	}
	b.WriteString("\n# Interests people can choose, with a label per language.\n")
	for _, name := range sortedKeys(cfg.Interests) {
		fmt.Fprintf(&b, "[interests.%s]\n", name)
		for _, lang := range sortedKeys(cfg.Interests[name]) {
			fmt.Fprintf(&b, "%s = %s\n", lang, q(cfg.Interests[name][lang]))
		}
	}
	fmt.Fprintf(&b, `
# The periodic job (`+"`repermit run`"+`, e.g. from cron).
[run]
campaign = %s
# CRM exports to import on every run (globs allowed).
imports = []
preset = %s
# Ask again for WhatsApp consent older than this many months.
refresh_months = %d
# Segments to rebuild and export on every run, and where.
segments = []
segments_dir = %s
format = %s
# Rows an import rejects go into a file in this folder, one per run.
rejects = %s
`, q(cfg.Run.Campaign), q(cfg.Run.Preset), cfg.Run.RefreshMonths, q(cfg.Run.SegmentsDir), q(cfg.Run.Format), q(cfg.Run.Rejects))
	return b.String()
}
