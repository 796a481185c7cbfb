package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

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
	args, err := positionalArgs(c, usage)
	if err != nil {
		return err
	}
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

// positionalArgs applies flags written after a positional argument
// (`report spring --html report.html`, `optout import stops.csv --json`):
// urfave/cli v2 stops parsing flags at the first argument and leaves the
// rest in c.Args(). It returns the positional arguments; hint is the usage
// line shown for a wrong flag.
func positionalArgs(c *cli.Context, hint string) ([]string, error) {
	args := c.Args().Slice()
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var fl cli.Flag
		for _, f := range c.Command.Flags {
			if slices.Contains(f.Names(), name) {
				fl = f
			}
		}
		if fl == nil {
			return nil, usagef(hint, "flag provided but not defined: %s", a)
		}
		if _, isBool := fl.(*cli.BoolFlag); isBool {
			if !hasVal {
				val = "true"
			}
		} else if !hasVal {
			if i+1 >= len(args) {
				return nil, usagef(hint, "flag needs an argument: %s", a)
			}
			i++
			val = args[i]
		}
		if err := c.Set(name, val); err != nil {
			return nil, usagef(hint, "invalid value %q for flag %s: %v", val, a, err)
		}
	}
	return pos, nil
}
