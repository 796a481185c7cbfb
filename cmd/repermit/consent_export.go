package main

import (
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path/filepath"

	"github.com/repermit/repermit/crm"
	"github.com/urfave/cli/v2"
)

func consentExportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write the proof pack (every event with its evidence, the statements, the chain head) or consent receipts",
		Description: "--format json (the default) writes one JSON object an auditor can check without repermit\n" +
			"(docs/proof-pack.md says how). --format receipts writes one Kantara Consent Receipt v1.1 per WhatsApp\n" +
			"confirmation, one JSON object per line. Without --out the export goes to stdout.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "contact", Usage: "only this person's events (their email address)"},
			&cli.StringFlag{Name: "out", Usage: "write to this file instead of stdout"},
			&cli.StringFlag{Name: "format", Value: "json", Usage: "json (the proof pack) or receipts (Kantara consent receipts, JSON Lines)"},
			&cli.BoolFlag{Name: "json", Usage: "with --out: print a summary as one JSON object on stdout"},
		},
		Action: consentExport,
	}
}

// controllerOf is the business as the proof pack and receipts name it.
func controllerOf(cfg Config) crm.Controller {
	ctl := crm.Controller{
		Name:         cfg.Business.Name,
		Address:      cfg.Business.Address,
		Phone:        cfg.Business.WhatsAppNumber,
		PrivacyURL:   cfg.Business.PrivacyURL,
		Jurisdiction: cfg.Business.Jurisdiction,
		URL:          cfg.Web.BaseURL,
	}
	for _, from := range []string{cfg.Sender.ReplyTo, cfg.Sender.From} {
		if a, err := mail.ParseAddress(from); err == nil {
			ctl.Email = a.Address
			break
		}
	}
	return ctl
}

func consentExport(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("repermit consent export --contact "+c.Args().First(), "consent export takes no arguments; name a person with --contact")
	}
	format := c.String("format")
	if format != "json" && format != "receipts" {
		return usagef("repermit consent export --format json|receipts", "unknown format %q", format)
	}
	if c.Bool("json") && c.String("out") == "" {
		return usagef("repermit consent export --out proof.json --json", "--json needs --out: without it stdout is the export itself")
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	st, err := openStore(c, true)
	if err != nil {
		return err
	}
	defer st.Close()
	var contactID int64
	if email := c.String("contact"); email != "" {
		ct, err := st.ContactByEmail(c.Context, email)
		if errors.Is(err, crm.ErrNotFound) {
			return withHint(err, "check the address; `repermit contacts show ADDRESS` finds imported people")
		}
		if err != nil {
			return withHint(err, "pass a valid email address to --contact")
		}
		contactID = ct.ID
	}

	var out io.Writer = c.App.Writer
	var tmp *os.File
	if path := c.String("out"); path != "" {
		// Written beside the target and renamed at the end: an interrupted
		// export never leaves half a proof pack under the real name.
		tmp, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
		if err != nil {
			return withHint(fmt.Errorf("create %s: %w", path, err), "check that the folder exists and is writable")
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		out = tmp
	}
	var sum crm.ProofSummary
	if format == "receipts" {
		sum, err = st.WriteReceipts(c.Context, out, contactID, crm.ReceiptOptions{
			Controller:     controllerOf(cfg),
			InterestLabels: cfg.Interests,
			RefreshMonths:  cfg.Run.RefreshMonths,
		})
	} else {
		sum, err = st.WriteProofPack(c.Context, out, crm.ProofOptions{ContactID: contactID, Controller: controllerOf(cfg)})
	}
	if err != nil {
		return withHint(fmt.Errorf("export: %w", err), "run `repermit consent verify`, then the export again")
	}
	if tmp == nil {
		return nil
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	path := c.String("out")
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, sum)
	}
	if format == "receipts" {
		fmt.Fprintf(c.App.ErrWriter, "Wrote %d consent receipts to %s.\n", sum.Receipts, path)
	} else {
		fmt.Fprintf(c.App.ErrWriter, "Wrote %d events, %d statements, chain head %d:%s to %s.\nCheck it as docs/proof-pack.md says.\n",
			sum.Events, sum.Statements, sum.HeadID, sum.Head, path)
	}
	return nil
}
