package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/repermit/repermit/crm"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
)

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "import CRM exports (CSV files, or a Mailchimp zip) with each contact's existing consent",
		ArgsUsage: "FILE...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "preset", Value: crm.PresetAuto, Usage: strings.Join(crm.PresetNames, "|")},
			&cli.StringFlag{Name: "map", Usage: `map headers to fields, e.g. 'E-Mail=email,Opted In=email_consent,Shop=attr.shop'`},
			&cli.StringFlag{Name: "default-region", Usage: "country (ISO code, e.g. DE) for phone numbers without a +prefix"},
			&cli.StringFlag{Name: "encoding", Usage: "the files' text encoding when not UTF-8: " + strings.Join(crm.Encodings, ", ")},
			&cli.StringFlag{Name: "rejects", Usage: "where rejected rows go (default rejects-<time>.csv, written only when a row is rejected)"},
			jsonFlag(),
		},
		Action: importAction,
	}
}

func importAction(c *cli.Context) error {
	if c.NArg() == 0 {
		return usagef("repermit import subscribed_members_export.csv", "import needs at least one file")
	}
	preset := c.String("preset")
	if !slices.Contains(crm.PresetNames, preset) {
		return usagef("--preset "+strings.Join(crm.PresetNames, "|"), "unknown preset %q", preset)
	}
	mapping, err := crm.ParseMap(c.String("map"))
	if err != nil {
		return usagef("--map 'Your Header=email,Other=attr.name'", "%s", err)
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	for _, p := range c.Args().Slice() {
		if _, err := os.Stat(p); err != nil {
			return withHint(fmt.Errorf("cannot read %s: %w", p, errors.Unwrap(err)), "check the path of the export")
		}
	}
	region := c.String("default-region")
	if region == "" {
		region = cfg.Import.DefaultRegion
	}
	rejectsPath := c.String("rejects")
	if rejectsPath == "" {
		rejectsPath = "rejects-" + time.Now().UTC().Format("20060102-150405") + ".csv"
	}
	// An import can simply be run again, so its batches need not wait for
	// the disk.
	st, err := openStore(c, false, crm.SyncOnCheckpoint())
	if err != nil {
		return err
	}
	defer st.Close()
	rejects := &crm.RejectsFile{Path: rejectsPath}
	opts := crm.ImportOptions{Preset: preset, Map: mapping, DefaultRegion: region, Encoding: c.String("encoding"), Rejects: rejects}
	opts.Progress = importProgress(c.App.ErrWriter)
	sum, err := st.Import(c.Context, c.Args().Slice(), opts)
	if cerr := rejects.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var ee *crm.EncodingError
		if errors.As(err, &ee) {
			return withHint(err, "repermit import --encoding windows-1252 "+strings.Join(c.Args().Slice(), " "))
		}
		return withHint(err, "fix the file or the flags and run the same import again: rows already imported are merged, not duplicated")
	}
	if c.Bool("json") {
		out := struct {
			crm.ImportSummary
			RejectsFile string `json:"rejects_file,omitempty"`
		}{sum, ""}
		if rejects.Count > 0 {
			out.RejectsFile = rejects.Path
		}
		return printJSON(c.App.Writer, out)
	}
	w := c.App.Writer
	for _, f := range sum.Files {
		status := ""
		if f.Status != "" {
			status = ", all " + f.Status
		}
		fmt.Fprintf(w, "%s: %s export (%s-separated%s), %d rows, %d rejected\n", f.File, f.Preset, f.Delimiter, status, f.Rows, f.Rejected)
		if f.NoConsent {
			fmt.Fprintf(w, "  note: no column says whether these people agreed to email, so none of them will be invited.\n"+
				"  If the file has one, name it: --map 'Your Column=email_consent' (or =status)\n")
		}
	}
	fmt.Fprintf(w, "%d rows: %d contacts created, %d updated, %d unchanged, %d rejected; %d consent events, %d suppressions added.\n",
		sum.Rows, sum.Created, sum.Updated, sum.Unchanged, sum.Rejected, sum.Events, sum.Suppressed)
	fmt.Fprintf(w, "%d contacts are now eligible for a WhatsApp invitation.\n", sum.Eligible)
	if rejects.Count > 0 {
		fmt.Fprintf(w, "Rejected rows, with line numbers and reasons: %s\n", rejects.Path)
	}
	return nil
}

// importProgress shows a byte-based progress bar per file on a terminal
// and a plain line per file elsewhere (cron logs).
func importProgress(errw io.Writer) func(file string, read, size, rows int64) {
	var bar *progressbar.ProgressBar
	var current string
	lastLog := time.Now()
	term := isTerminal(errw)
	return func(file string, read, size, rows int64) {
		if !term {
			if time.Since(lastLog) > 5*time.Second || file != current {
				fmt.Fprintf(errw, "import: %s: %d rows so far\n", file, rows)
				lastLog = time.Now()
				current = file
			}
			return
		}
		if file != current || bar == nil {
			if bar != nil {
				bar.Finish()
			}
			current = file
			bar = progressbar.NewOptions64(size, progressbar.OptionSetWriter(errw), progressbar.OptionSetDescription(file),
				progressbar.OptionShowBytes(true), progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
				progressbar.OptionClearOnFinish())
		}
		bar.Set64(read)
	}
}
