package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/repermit/repermit/invite/report"
	"github.com/urfave/cli/v2"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "the funnel, confirmation rate, time to confirm and interests per campaign; --html writes a page with charts",
		ArgsUsage: "[CAMPAIGN]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "html", Usage: "also write a self-contained HTML page with charts to this file"},
			&cli.StringFlag{Name: "lang", Value: "en", Usage: "language of the interest labels"},
			jsonFlag(),
		},
		Action: reportAction,
	}
}

func reportAction(c *cli.Context) error {
	const usage = "repermit report [CAMPAIGN] [--html report.html] [--json]"
	args := c.Args().Slice()
	if len(args) > 1 {
		return usagef(usage, "report takes at most one campaign name")
	}
	campaign := ""
	if len(args) == 1 {
		campaign = args[0]
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
	rep, err := report.Build(c.Context, st.DB(), report.Options{
		Campaign: campaign,
		Now:      st.Now(),
		Business: cfg.Business.Name,
		Language: c.String("lang"),
	})
	if errors.Is(err, report.ErrNoCampaign) {
		return withHint(err, "`repermit campaign list` shows the campaigns; leave the name out to report on all")
	}
	if err != nil {
		return withHint(fmt.Errorf("report: %w", err), "run `repermit consent verify` to check the database, then try again")
	}
	if path := c.String("html"); path != "" {
		if err := writeReportHTML(path, rep); err != nil {
			return withHint(err, "check that the folder exists and is writable")
		}
		if !c.Bool("json") {
			defer fmt.Fprintf(c.App.Writer, "\nWrote the HTML report to %s: open it in a browser.\n", path)
		}
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, rep)
	}
	return report.WriteText(c.App.Writer, rep)
}

// writeReportHTML writes beside the target and renames, so a browser never
// shows half a page.
func writeReportHTML(path string, rep report.Report) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := report.WriteHTML(tmp, rep); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
