package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/repermit/repermit/segments"
	"github.com/urfave/cli/v2"
)

const ruleHelp = `fields: interest, country, language, tag, source, campaign, confirmed (e.g. confirmed:<90d), attr.NAME;
AND, OR, NOT, parentheses, "quoted values". Example: interest:offers AND (country:DE OR country:AT) AND NOT tag:vip`

func segmentsCommand() *cli.Command {
	return &cli.Command{
		Name:  "segments",
		Usage: "audiences of confirmed WhatsApp opt-ins by interest and contact fields, exported for providers",
		Subcommands: []*cli.Command{
			{
				Name:        "create",
				Usage:       "store a named rule (validated)",
				ArgsUsage:   "NAME",
				Description: "The rule only narrows the base condition: " + segments.BaseCondition + ".\n" + ruleHelp,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "rule", Usage: "the rule (\"\" selects every confirmed opt-in)"},
					&cli.BoolFlag{Name: "replace", Usage: "change the rule of an existing segment"},
					jsonFlag(),
				},
				Action: segmentsCreate,
			},
			{
				Name:   "list",
				Usage:  "every segment with its live count",
				Flags:  []cli.Flag{jsonFlag()},
				Action: segmentsList,
			},
			{
				Name:      "show",
				Usage:     "count, rule, masked sample rows, interest breakdown, recent exports",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{&cli.IntFlag{Name: "samples", Value: 5, Usage: "how many masked sample rows"}, jsonFlag()},
				Action:    segmentsShow,
			},
			{
				Name:      "export",
				Usage:     "write a segment to a file (atomically, with a manifest beside it) or stdout",
				ArgsUsage: "NAME",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "format", Value: "csv", Usage: strings.Join(segments.Formats(), "|")},
					&cli.StringFlag{Name: "out", Usage: "the file to write, - for stdout (default NAME.csv, NAME.jsonl or NAME-PRESET.csv)"},
					&cli.StringFlag{Name: "columns", Usage: "csv/jsonl columns in order, comma-separated: " + strings.Join(segments.FieldNames(), ",") + ",attr.NAME"},
					&cli.IntFlag{Name: "batch-size", Usage: "split into numbered files of N rows (Meta tiers: 250, 2000, 10000, 100000)"},
					jsonFlag(),
				},
				Action: segmentsExport,
			},
		},
	}
}

// oneName returns the single NAME argument of a segments subcommand.
func oneName(c *cli.Context, example string) (string, error) {
	args := c.Args().Slice()
	if len(args) != 1 {
		return "", usagef(example, "segments %s takes one segment name", c.Command.Name)
	}
	return args[0], nil
}

// segmentError adds what to do to the errors of the segments package.
func segmentError(err error) error {
	var pe *segments.ParseError
	switch {
	case errors.As(err, &pe):
		return usagef(`repermit segments create offers-dach --rule 'interest:offers AND (country:DE OR country:AT)'`, "%s", err)
	case errors.Is(err, segments.ErrExists):
		return withHint(err, "pass --replace to change its rule, or pick another name")
	case errors.Is(err, segments.ErrNotFound):
		return withHint(err, "`repermit segments list` shows the segments; `repermit segments create NAME --rule EXPR` makes one")
	case errors.Is(err, segments.ErrUsage):
		return usagef("repermit segments export --help", "%s", err)
	}
	return err
}

func segmentsCreate(c *cli.Context) error {
	name, err := oneName(c, `repermit segments create offers --rule 'interest:offers'`)
	if err != nil {
		return err
	}
	if !c.IsSet("rule") {
		return usagef(`repermit segments create `+name+` --rule 'interest:offers'`, "segments create needs --rule (%s)", ruleHelp)
	}
	if _, err := segments.Parse(c.String("rule")); err != nil {
		return segmentError(err) // before touching the database
	}
	st, err := openStore(c, false)
	if err != nil {
		return err
	}
	defer st.Close()
	save := segments.Create
	if c.Bool("replace") {
		save = segments.Replace
	}
	seg, err := save(c.Context, st, name, c.String("rule"))
	if err != nil {
		return segmentError(err)
	}
	r, _ := segments.Parse(seg.Rule)
	n, err := segments.Count(c.Context, st, r)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, map[string]any{"name": seg.Name, "rule": seg.Rule, "canonical": r.String(), "count": n})
	}
	fmt.Fprintf(c.App.Writer, "Segment %s: %s\n%d confirmed WhatsApp opt-ins match now.\n", seg.Name, orAll(r.String()), n)
	return nil
}

func orAll(rule string) string {
	if rule == "" {
		return "(every confirmed opt-in)"
	}
	return rule
}

func segmentsList(c *cli.Context) error {
	st, err := openStore(c, true)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := segments.List(c.Context, st)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if list == nil {
			list = []segments.Summary{}
		}
		return printJSON(c.App.Writer, map[string]any{"segments": list})
	}
	if len(list) == 0 {
		fmt.Fprintln(c.App.Writer, "No segments yet. Try: repermit segments create offers --rule 'interest:offers'")
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCOUNT\tRULE")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", s.Name, s.Count, orAll(s.Rule))
	}
	return tw.Flush()
}

func segmentsShow(c *cli.Context) error {
	name, err := oneName(c, "repermit segments show offers")
	if err != nil {
		return err
	}
	st, err := openStore(c, true)
	if err != nil {
		return err
	}
	defer st.Close()
	d, err := segments.Show(c.Context, st, name, c.Int("samples"))
	if err != nil {
		return segmentError(err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, d)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "Segment %s: %d confirmed WhatsApp opt-ins\nRule: %s\nBase: %s\n", d.Name, d.Count, orAll(d.Canonical), d.Base)
	if len(d.Interests) > 0 {
		fmt.Fprintln(w, "\nInterests:")
		for _, ic := range d.Interests {
			fmt.Fprintf(w, "  %-20s %d\n", ic.Interest, ic.Count)
		}
	}
	if len(d.Countries) > 0 {
		fmt.Fprintln(w, "\nCountries:")
		for _, cc := range d.Countries {
			fmt.Fprintf(w, "  %-20s %d\n", dashIfEmpty(cc.Country), cc.Count)
		}
	}
	if len(d.Samples) > 0 {
		fmt.Fprintln(w, "\nSample (phones masked):")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  PHONE\tFIRST NAME\tCOUNTRY\tLANGUAGE\tINTERESTS\tOPTED IN")
		for _, s := range d.Samples {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", s.Phone, dashIfEmpty(s.FirstName), dashIfEmpty(s.Country), dashIfEmpty(s.Language),
				dashIfEmpty(strings.Join(s.Interests, "|")), s.OptedInAt)
		}
		tw.Flush()
	}
	if len(d.Exports) > 0 {
		fmt.Fprintln(w, "\nRecent exports:")
		for _, e := range d.Exports {
			fmt.Fprintf(w, "  %s  %-8s %d rows in %d file(s)\n", e.At.Format("2006-01-02 15:04:05Z"), e.Format, e.Rows, len(e.Files))
		}
	}
	return nil
}

func segmentsExport(c *cli.Context) error {
	name, err := oneName(c, "repermit segments export offers --format csv --out offers.csv")
	if err != nil {
		return err
	}
	opts := segments.ExportOptions{Format: c.String("format"), BatchSize: c.Int("batch-size"), Out: c.String("out"),
		Stdout: c.App.Writer}
	if cols := c.String("columns"); cols != "" {
		opts.Columns = strings.Split(cols, ",")
	}
	if opts.Out == "" {
		switch opts.Format {
		case "csv", "":
			opts.Out = name + ".csv"
		case "jsonl":
			opts.Out = name + ".jsonl"
		default:
			opts.Out = name + "-" + opts.Format + ".csv"
		}
	}
	if opts.Out == "-" && c.Bool("json") {
		return usagef("repermit segments export "+name+" --out "+name+".csv --json",
			"--json prints a summary on stdout, where --out - writes the rows; give --out FILE")
	}
	st, err := openStore(c, true)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := segments.Export(c.Context, st, name, opts)
	if err != nil {
		return segmentError(err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, res)
	}
	w := c.App.Writer
	if opts.Out == "-" {
		w = c.App.ErrWriter // stdout holds the rows
	}
	fmt.Fprintf(w, "Exported %d rows of segment %s (%s).\n", res.Rows, name, res.Format)
	for _, f := range res.Files {
		if f.Path != "" {
			fmt.Fprintf(w, "  %s  %d rows  sha256 %s\n", f.Path, f.Rows, f.SHA256)
		}
	}
	if res.Manifest != "" {
		fmt.Fprintf(w, "Manifest: %s\n", res.Manifest)
	}
	return nil
}

// dashIfEmpty fills an empty table cell.
func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
