package main

import (
	"fmt"

	"github.com/repermit/repermit/crm"
	"github.com/urfave/cli/v2"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "the periodic re-permission job from the config's [run] section (safe to run from cron)",
		Description: "Imports the configured CRM exports, expires unanswered invitations and unconfirmed refreshes,\n" +
			"asks again for WhatsApp consent older than refresh_months, invites the newly eligible, sends due\n" +
			"reminders and exports the configured segments. Two runs never overlap; a run stopped at any point\n" +
			"can simply be run again. It exits 1 when a step failed, for cron's mail.",
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("repermit run [--json]", "run takes no arguments: it reads the [run] section of the config")
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			j, err := jobFromConfig(cfg)
			if err != nil {
				return err
			}
			if !c.Bool("json") {
				j.Log = c.App.ErrWriter
			}
			// Everything a run writes can be redone from its inputs, so its
			// commits need not wait for the disk (see crm.SyncOnCheckpoint).
			st, err := openStore(c, false, crm.SyncOnCheckpoint())
			if err != nil {
				return err
			}
			defer st.Close()
			sum, err := runJob(c.Context, st, j)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, sum)
			}
			w := c.App.Writer
			if sum.Import != nil {
				fmt.Fprintf(w, "Imported %d rows: %d created, %d updated, %d unchanged, %d rejected.\n",
					sum.Import.Rows, sum.Import.Created, sum.Import.Updated, sum.Import.Unchanged, sum.Import.Rejected)
			}
			if sum.RejectsFile != "" {
				fmt.Fprintf(w, "Rejected rows: %s\n", sum.RejectsFile)
			}
			fmt.Fprintf(w, "Invitations: %d sent, %d failed; refresh invitations: %d sent; reminders: %d sent.\n",
				sum.Invitations.Sent, sum.Invitations.Failed, sum.RefreshInvitations.Sent, sum.Reminders.Sent+sum.RefreshReminders.Sent)
			fmt.Fprintf(w, "Expired: %d invitation(s), %d WhatsApp consent(s) not re-confirmed; %d consent(s) now asked again.\n",
				sum.InvitationsExpired, sum.ConsentsExpired, sum.RefreshFlagged)
			for name, rows := range sum.Segments {
				fmt.Fprintf(w, "Segment %s: %d rows exported into %s.\n", name, rows, j.SegmentsDir)
			}
			f := sum.Funnel
			fmt.Fprintf(w, "Campaign %s: %d invited, %d confirmed, %d declined, %d pending.\n", sum.Campaign, f.Invited, f.Confirmed, f.Declined, f.Pending)
			return nil
		},
	}
}
