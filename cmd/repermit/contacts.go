package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/repermit/repermit/crm"
	"github.com/urfave/cli/v2"
)

func contactsCommand() *cli.Command {
	return &cli.Command{
		Name:  "contacts",
		Usage: "show a contact's consent and its proof, or erase a contact",
		Subcommands: []*cli.Command{
			{
				Name:      "show",
				Usage:     "the contact, current consent per channel and its whole event history",
				ArgsUsage: "EMAIL",
				Flags:     []cli.Flag{jsonFlag()},
				Action:    contactsShow,
			},
			{
				Name:      "forget",
				Usage:     "erase a contact's personal data (a salted hash stays on the suppression list)",
				ArgsUsage: "EMAIL",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "yes", Usage: "confirm the erasure"}, jsonFlag()},
				Action:    contactsForget,
			},
		},
	}
}

// contactView is the JSON of `contacts show`.
type contactView struct {
	Email        string            `json:"email"`
	Phone        string            `json:"phone"`
	Suppressed   bool              `json:"suppressed"`
	Consent      map[string]string `json:"consent"`
	Events       []crm.Event       `json:"events"`
	Contact      crm.Contact       `json:"contact"`
	Interests    []string          `json:"interests"`
	Suppressions []crm.Suppression `json:"suppressions"`
}

func contactsShow(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("repermit contacts show someone@example.com", "contacts show takes one email address")
	}
	st, err := openStore(c, true)
	if err != nil {
		return err
	}
	defer st.Close()
	ct, err := st.ContactByEmail(c.Context, c.Args().First())
	if errors.Is(err, crm.ErrNotFound) {
		return withHint(err, "check the address, or import the export that holds it")
	}
	if err != nil {
		return err
	}
	v := contactView{Email: ct.Email, Phone: ct.Phone, Contact: ct, Consent: map[string]string{}}
	consent, err := st.Consent(c.Context, ct.ID)
	if err != nil {
		return err
	}
	for ch, cs := range consent {
		v.Consent[ch] = cs.Action
	}
	if v.Events, err = st.Events(c.Context, ct.ID); err != nil {
		return err
	}
	if v.Interests, err = st.Interests(c.Context, ct.ID); err != nil {
		return err
	}
	if v.Suppressions, err = st.Suppressions(c.Context, ct); err != nil {
		return err
	}
	v.Suppressed = len(v.Suppressions) > 0
	if v.Events == nil {
		v.Events = []crm.Event{}
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, v)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	name := strings.TrimSpace(ct.FirstName + " " + ct.LastName)
	fmt.Fprintf(w, "email\t%s\nname\t%s\nphone\t%s\traw: %s\ncountry\t%s\nlanguage\t%s\nsource\t%s\n",
		ct.Email, name, orDash(ct.Phone), orDash(ct.PhoneRaw), orDash(ct.Country), orDash(ct.Language), orDash(ct.Source))
	if len(ct.Tags) > 0 {
		fmt.Fprintf(w, "tags\t%s\n", strings.Join(ct.Tags, ", "))
	}
	if len(v.Interests) > 0 {
		fmt.Fprintf(w, "interests\t%s\n", strings.Join(v.Interests, ", "))
	}
	for _, ch := range crm.Channels {
		fmt.Fprintf(w, "consent %s\t%s\n", ch, v.Consent[ch])
	}
	for _, s := range v.Suppressions {
		fmt.Fprintf(w, "suppressed\t%s (%s) since %s\n", s.Channel, s.Reason, s.At.Format("2006-01-02"))
	}
	w.Flush()
	fmt.Fprintln(c.App.Writer, "\nevents (the proof):")
	w = tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "#\tat (UTC)\tchannel\taction\tmethod\tstatement\thash")
	for _, e := range v.Events {
		stmt := "-"
		if e.StatementVersion != "" {
			stmt = e.StatementVersion + " " + e.StatementSHA256[:min(12, len(e.StatementSHA256))]
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.Format("2006-01-02 15:04:05"), e.Channel, e.Action,
			e.Method, stmt, e.Hash[:12])
	}
	return w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func contactsForget(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("repermit contacts forget someone@example.com --yes", "contacts forget takes one email address")
	}
	if !c.Bool("yes") {
		return usagef("repermit contacts forget "+c.Args().First()+" --yes", "erasure cannot be undone: pass --yes to confirm")
	}
	st, err := openStore(c, true)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Forget(c.Context, c.Args().First()); err != nil {
		if errors.Is(err, crm.ErrNotFound) {
			return withHint(err, "check the address; `repermit suppress ADDRESS --reason complained` blocks an address that was never imported")
		}
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, map[string]any{"erased": true})
	}
	fmt.Fprintln(c.App.Writer, "Erased. A salted hash stays on the suppression list so that no later import brings the person back.")
	return nil
}

func suppressCommand() *cli.Command {
	return &cli.Command{
		Name:      "suppress",
		Usage:     "add addresses to the suppression list (a file of addresses, one per line or a CSV with an email column, or addresses)",
		ArgsUsage: "FILE|EMAIL...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Value: crm.ReasonUnsubscribed, Usage: "unsubscribed, bounced or complained"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("repermit suppress bounced.csv --reason bounced", "suppress needs a file or at least one address")
			}
			reason := c.String("reason")
			if reason != crm.ReasonUnsubscribed && reason != crm.ReasonBounced && reason != crm.ReasonComplained {
				return usagef("--reason unsubscribed|bounced|complained", "unknown reason %q", reason)
			}
			var emails []string
			for _, arg := range c.Args().Slice() {
				if strings.Contains(arg, "@") {
					emails = append(emails, arg)
					continue
				}
				got, err := readAddressFile(arg)
				if err != nil {
					return err
				}
				emails = append(emails, got...)
			}
			st, err := openStore(c, false)
			if err != nil {
				return err
			}
			defer st.Close()
			added, err := st.Suppress(c.Context, emails, reason, "suppress:"+reason)
			if err != nil {
				return withHint(err, "fix or remove that address and run the command again (nothing was changed)")
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, map[string]int{"addresses": len(emails), "added": added})
			}
			fmt.Fprintf(c.App.Writer, "%d addresses read, %d newly suppressed (%s).\n", len(emails), added, reason)
			return nil
		},
	}
}

// readAddressFile reads addresses from a file: every field that looks like
// an address, on every line (so plain lists and CSV exports both work).
func readAddressFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, withHint(err, "pass an existing file, or the addresses themselves")
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, field := range strings.FieldsFunc(sc.Text(), func(r rune) bool { return r == ',' || r == ';' || r == '\t' }) {
			field = strings.Trim(strings.TrimSpace(field), `"`)
			if strings.Contains(field, "@") {
				out = append(out, field)
			}
		}
	}
	return out, sc.Err()
}

func consentCommand() *cli.Command {
	return &cli.Command{
		Name:  "consent",
		Usage: "check the consent ledger, or export the proof pack",
		Subcommands: []*cli.Command{
			{
				Name:  "verify",
				Usage: "check the hash chain of the ledger; names the first bad event",
				Flags: []cli.Flag{jsonFlag()},
				Action: func(c *cli.Context) error {
					st, err := openStore(c, true)
					if err != nil {
						return err
					}
					defer st.Close()
					res, err := st.Verify(c.Context)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						if err := printJSON(c.App.Writer, res); err != nil {
							return err
						}
					} else if res.OK {
						fmt.Fprintf(c.App.Writer, "OK: %d events, chain head %s\n", res.Events, res.Head)
					}
					if !res.OK {
						return withHint(fmt.Errorf("consent ledger check failed: %s", res.Problem),
							"restore the database from a backup; the proof from that event on cannot be trusted")
					}
					return nil
				},
			},
			consentExportCommand(),
		},
	}
}
