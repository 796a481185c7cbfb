package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/repermit/repermit/crm"
	"github.com/urfave/cli/v2"
)

func optoutCommand() *cli.Command {
	return &cli.Command{
		Name:  "optout",
		Usage: "apply WhatsApp opt-outs (STOP replies)",
		Subcommands: []*cli.Command{
			{
				Name:  "import",
				Usage: "WhatsApp STOP replies (a CSV with a phone column and a time column) → WhatsApp consent withdrawn, numbers suppressed",
				Description: "The phone column may be called phone, mobile, wa_id, msisdn, from, Telefon, …; the time column time,\n" +
					"timestamp, date, received_at, …  Delimiters , ; or tab. Numbers without a country code need --default-region.\n" +
					"Every number is suppressed for WhatsApp, even when no contact has it yet. Running it again changes nothing.",
				ArgsUsage: "FILE",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "default-region", Usage: "country (ISO code, e.g. DE) of numbers written without +CC (default: config import.default_region)"},
					jsonFlag(),
				},
				Action: optoutImport,
			},
		},
	}
}

func optoutImport(c *cli.Context) error {
	const usage = "repermit optout import stop-replies.csv --default-region DE"
	args := c.Args().Slice()
	if len(args) != 1 {
		return usagef(usage, "optout import takes one file")
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	region := c.String("default-region")
	if region == "" {
		region = cfg.Import.DefaultRegion
	}
	path := args[0]
	f, err := os.Open(path)
	if err != nil {
		return withHint(fmt.Errorf("open STOP file: %w", err), "pass the file your WhatsApp provider exported with the STOP replies")
	}
	defer f.Close()
	st, err := openStore(c, false)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := st.ImportOptouts(c.Context, f, crm.OptoutOptions{
		DefaultRegion: region,
		Source:        "optout-import:" + filepath.Base(path),
	})
	if err != nil {
		return withHint(fmt.Errorf("%s: %w", path, err),
			"fix the file and run the command again (batches already applied stay applied; re-running is safe)")
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, res)
	}
	fmt.Fprintf(c.App.Writer, "%d rows: %d matched contacts (%d newly withdrawn), %d unmatched, %d rejected; %d numbers newly suppressed.\n",
		res.Rows, res.Matched, res.Withdrawn, res.Unmatched, res.Rejected, res.Suppressed)
	if len(res.Issues) == 0 {
		return nil
	}
	fmt.Fprintln(c.App.Writer, "\nTo check (numbers masked; the line is in your file):")
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "line\tnumber\tproblem")
	for _, is := range res.Issues {
		fmt.Fprintf(w, "%d\t%s\t%s\n", is.Line, orDash(is.Phone), is.Problem)
	}
	return w.Flush()
}
