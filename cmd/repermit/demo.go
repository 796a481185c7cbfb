package main

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/repermit/repermit/crm"
	"github.com/urfave/cli/v2"
)

// sampleExport is a realistic Mailchimp audience export (subscribed,
// unsubscribed and cleaned files, with a duplicate and two broken rows)
// that the demo imports.
//
//go:embed testdata/sample/*.csv
var sampleExport embed.FS

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run the whole flow on built-in sample data in a temporary folder (no mail server, no network)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "work in this folder instead of a new temporary one"},
		},
		Action: demoAction,
	}
}

func demoAction(c *cli.Context) error {
	w := c.App.Writer
	dir := c.String("dir")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "repermit-demo-"); err != nil {
			return withHint(err, "pass --dir with a writable folder")
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return withHint(err, "pass --dir with a writable folder")
	}
	fmt.Fprintf(w, "repermit demo: everything goes into %s\n\n", dir)

	// 1. The sample export, as a marketer downloads it from Mailchimp.
	exportDir := filepath.Join(dir, "mailchimp-export")
	if err := os.MkdirAll(exportDir, 0o755); err != nil {
		return err
	}
	files, _ := fs.Glob(sampleExport, "testdata/sample/*.csv")
	var paths []string
	for _, f := range files {
		b, _ := sampleExport.ReadFile(f)
		p := filepath.Join(exportDir, filepath.Base(f))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
		paths = append(paths, p)
	}
	st, err := crm.Open(c.Context, filepath.Join(dir, "repermit.db"))
	if err != nil {
		return err
	}
	defer st.Close()

	fmt.Fprintln(w, "1. Import the CRM export (Mailchimp: subscribed, unsubscribed and cleaned files)")
	rejects := &crm.RejectsFile{Path: filepath.Join(dir, "rejects.csv")}
	sum, err := st.Import(c.Context, paths, crm.ImportOptions{Rejects: rejects})
	if cerr := rejects.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	for _, f := range sum.Files {
		fmt.Fprintf(w, "   %-40s %-12s %4d rows, %d rejected\n", f.File, f.Status, f.Rows, f.Rejected)
	}
	fmt.Fprintf(w, "   %d contacts, %d consent events recorded with the export's own evidence, %d suppressions\n",
		sum.Created, sum.Events, sum.Suppressed)
	fmt.Fprintf(w, "   %d contacts may be invited to WhatsApp (email consent granted, not suppressed)\n", sum.Eligible)
	if rejects.Count > 0 {
		fmt.Fprintf(w, "   %d rows rejected, each with its line and reason: %s\n", rejects.Count, rejects.Path)
	}
	res, err := st.Verify(c.Context)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n2. Check the consent ledger: %d events, hash chain ok=%v\n", res.Events, res.OK)
	fmt.Fprintf(w, "\nTry it yourself:\n  go run ./cmd/repermit --db %s contacts show %s\n",
		filepath.Join(dir, "repermit.db"), "hannah.becker12@example.de")
	return nil
}
