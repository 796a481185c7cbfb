package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite"
	"github.com/repermit/repermit/invite/report"
	"github.com/repermit/repermit/invite/web"
	"github.com/repermit/repermit/segments"
	"github.com/urfave/cli/v2"
	"golang.org/x/time/rate"
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
		Description: "Imports a sample Mailchimp export, sends the WhatsApp invitation to an outbox folder, lets a share\n" +
			"of the recipients answer through the real confirmation pages, builds and exports segments, writes\n" +
			"the report and the proof pack, and prints where everything is. --serve keeps the pages running so\n" +
			"that you can open an invitation and confirm yourself.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "work in this folder instead of a new temporary one"},
			&cli.BoolFlag{Name: "serve", Usage: "keep the confirmation pages running afterwards (Ctrl-C stops)"},
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:0", Usage: "where the pages listen (default: a free port on 127.0.0.1)"},
		},
		Action: demoAction,
	}
}

// demoAgent marks the simulated recipients' requests: the evidence says
// honestly that the demo answered, not a person.
const demoAgent = "repermit-demo/1.0 (simulated recipient)"

func demoAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("repermit demo [--dir DIR] [--serve]", "demo takes no arguments")
	}
	ctx := c.Context
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
	if _, err := os.Stat(filepath.Join(dir, "repermit.db")); err == nil {
		return withHint(fmt.Errorf("%s already holds a demo", dir), "pass an empty --dir, or none for a new temporary folder")
	}
	fmt.Fprintf(w, "repermit demo: everything goes into %s\n\n", dir)

	st, err := crm.Open(ctx, filepath.Join(dir, "repermit.db"))
	if err != nil {
		return err
	}
	defer st.Close()

	// The pages run first: the links in the invitations point at them.
	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		return withHint(err, "pick a free --addr")
	}
	cfg := defaultConfig()
	cfg.Web.BaseURL = "http://" + ln.Addr().String()
	cfg.Sender.Outbox = filepath.Join(dir, "outbox")
	opt := webOptions(cfg)
	opt.PostRate = rate.Inf // every simulated recipient comes from 127.0.0.1
	pages := web.New(st, opt)
	serveCtx, stopServing := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- web.Serve(serveCtx, ln, pages, nil) }()
	defer func() {
		stopServing()
		<-served
		pages.Close()
	}()

	if err := demoImport(ctx, w, st, dir); err != nil {
		return err
	}
	campaign, err := demoSend(ctx, w, st, cfg)
	if err != nil {
		return err
	}
	answered, pending, err := demoAnswers(ctx, w, cfg)
	if err != nil {
		return err
	}
	if err := demoSegments(ctx, w, st, dir); err != nil {
		return err
	}
	if err := demoReport(ctx, w, st, cfg, campaign, dir); err != nil {
		return err
	}
	if err := demoProof(ctx, w, st, cfg, dir); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nDone: %d recipients answered through the real pages; %d invitations are still open.\n", answered, len(pending))
	fmt.Fprintf(w, "Look around:\n  go run ./cmd/repermit --db %s contacts show %s\n  go run ./cmd/repermit --db %s campaign status %s\n",
		filepath.Join(dir, "repermit.db"), "hannah.becker12@example.de", filepath.Join(dir, "repermit.db"), campaign)
	if !c.Bool("serve") {
		fmt.Fprintln(w, "  go run ./cmd/repermit demo --serve   (keeps the pages running so that you can confirm yourself)")
		return nil
	}
	fmt.Fprintf(w, "\nThe confirmation pages run on %s. Open an invitation nobody answered yet and decide yourself:\n", cfg.Web.BaseURL)
	for _, link := range pending[:min(3, len(pending))] {
		fmt.Fprintf(w, "  %s\n", link)
	}
	fmt.Fprintln(w, "Ctrl-C stops.")
	<-ctx.Done()
	return nil
}

func demoImport(ctx context.Context, w io.Writer, st *crm.Store, dir string) error {
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
	fmt.Fprintln(w, "1. Import the CRM export (Mailchimp: subscribed, unsubscribed and cleaned files)")
	rejects := &crm.RejectsFile{Path: filepath.Join(dir, "rejects.csv")}
	sum, err := st.Import(ctx, paths, crm.ImportOptions{Rejects: rejects})
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
	return nil
}

func demoSend(ctx context.Context, w io.Writer, st *crm.Store, cfg Config) (string, error) {
	const name = "whatsapp-optin"
	fmt.Fprintln(w, "\n2. Create the campaign and send the invitations (to an outbox folder: no mail server needed)")
	if _, _, err := invite.CreateCampaign(ctx, st, cfg.campaignSpec(name, nil)); err != nil {
		return "", err
	}
	id, err := identity(cfg)
	if err != nil {
		return "", err
	}
	t, err := cfg.Sender.transport()
	if err != nil {
		return "", err
	}
	res, err := invite.Send(ctx, st, invite.SendOptions{Campaign: name, Identity: id, Transport: t})
	if err != nil {
		return "", err
	}
	fmt.Fprintf(w, "   %d invitations sent, one .eml file each (text + HTML, List-Unsubscribe one-click): %s\n", res.Sent, cfg.Sender.Outbox)
	return name, nil
}

// demoAnswers plays the recipients: each opens the link in the invitation
// (a visit, which changes nothing), and a share then presses a button on
// the real pages. It returns how many answered and the confirm links of
// those who did not.
func demoAnswers(ctx context.Context, w io.Writer, cfg Config) (int, []string, error) {
	fmt.Fprintln(w, "\n3. Recipients answer through the real confirmation pages (simulated people, marked so in the evidence)")
	files, err := filepath.Glob(filepath.Join(cfg.Sender.Outbox, "*.eml"))
	if err != nil {
		return 0, nil, err
	}
	slices.Sort(files)
	rng := rand.New(rand.NewPCG(2026, 11))
	interests := sortedKeys(cfg.Interests)
	counts := map[string]int{}
	var pending []string
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, link string, form url.Values) (int, error) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, link, body)
		if err != nil {
			return 0, err
		}
		req.Header.Set("User-Agent", demoAgent)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 400 && resp.StatusCode != http.StatusUnprocessableEntity {
			return resp.StatusCode, fmt.Errorf("%s %s: %s", method, link[:strings.LastIndexByte(link, '/')], resp.Status)
		}
		return resp.StatusCode, nil
	}
	for _, f := range files {
		token, err := tokenOf(f)
		if err != nil {
			return 0, nil, err
		}
		confirm := cfg.Web.BaseURL + "/c/" + token
		p := rng.Float64()
		if p < 0.15 { // never opened
			pending = append(pending, confirm)
			continue
		}
		if _, err := do(http.MethodGet, confirm, nil); err != nil {
			return 0, nil, err
		}
		switch {
		case p < 0.30: // looked, did not decide
			counts["visited only"]++
			pending = append(pending, confirm)
		case p < 0.80:
			form := url.Values{"decision": {"confirm"}}
			for _, in := range interests {
				if rng.Float64() < 0.5 {
					form.Add("interest", in)
				}
			}
			status, err := do(http.MethodPost, confirm, form)
			if err != nil {
				return 0, nil, err
			}
			if status == http.StatusUnprocessableEntity {
				// No valid number in the CRM: the page asks for one, and they type it.
				counts["typed a number"]++
				form.Set("phone", fmt.Sprintf("+49 151 %08d", rng.IntN(100000000)))
				if _, err := do(http.MethodPost, confirm, form); err != nil {
					return 0, nil, err
				}
			}
			counts["confirmed"]++
		case p < 0.94:
			if _, err := do(http.MethodPost, confirm, url.Values{"decision": {"decline"}}); err != nil {
				return 0, nil, err
			}
			counts["declined"]++
		default: // the mail client's one-click unsubscribe (RFC 8058)
			if _, err := do(http.MethodPost, cfg.Web.BaseURL+"/u/"+token, url.Values{"List-Unsubscribe": {"One-Click"}}); err != nil {
				return 0, nil, err
			}
			counts["unsubscribed"]++
		}
	}
	fmt.Fprintf(w, "   %d pressed \"Yes, message me on WhatsApp\" (%d of them typed their number: the CRM had none valid),\n"+
		"   %d \"No thanks\", %d unsubscribed by one click, %d only looked (a visit records nothing), %d never opened\n",
		counts["confirmed"], counts["typed a number"], counts["declined"], counts["unsubscribed"], counts["visited only"],
		len(pending)-counts["visited only"])
	return counts["confirmed"] + counts["declined"] + counts["unsubscribed"], pending, nil
}

// tokenOf reads an invitation's token from its List-Unsubscribe header.
func tokenOf(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	m, err := mail.ReadMessage(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	lu := strings.Trim(m.Header.Get("List-Unsubscribe"), "<>")
	i := strings.LastIndexByte(lu, '/')
	if i < 0 {
		return "", errors.New(path + ": no List-Unsubscribe link")
	}
	return lu[i+1:], nil
}

func demoSegments(ctx context.Context, w io.Writer, st *crm.Store, dir string) error {
	fmt.Fprintln(w, "\n4. Segments, built only from confirmed WhatsApp opt-ins, exported for WhatsApp providers")
	out := filepath.Join(dir, "segments")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	defs := []struct{ name, rule, format, file string }{
		{"offers-dach", "interest:offers AND (country:DE OR country:AT)", "csv", "offers-dach.csv"},
		{"recipes", "interest:recipes", "twilio", "recipes-twilio.csv"},
		{"everyone", "confirmed:<1y", "interakt", "everyone-interakt.csv"},
	}
	for _, d := range defs {
		if _, err := segments.Create(ctx, st, d.name, d.rule); err != nil {
			return err
		}
		res, err := segments.Export(ctx, st, d.name, segments.ExportOptions{Format: d.format, Out: filepath.Join(out, d.file)})
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "   %-12s %-48q %4d rows  %s\n", d.name, d.rule, res.Rows, filepath.Join(out, d.file))
	}
	fmt.Fprintln(w, "   (each export has a manifest beside it: rule, time, rows, SHA-256)")
	return nil
}

func demoReport(ctx context.Context, w io.Writer, st *crm.Store, cfg Config, campaign, dir string) error {
	fmt.Fprintln(w, "\n5. The report")
	rep, err := report.Build(ctx, st.DB(), report.Options{Campaign: campaign, Business: cfg.Business.Name})
	if err != nil {
		return err
	}
	if err := report.WriteText(w, rep); err != nil {
		return err
	}
	path := filepath.Join(dir, "report.html")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := report.WriteHTML(f, rep); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(w, "   with charts: %s\n", path)
	return nil
}

func demoProof(ctx context.Context, w io.Writer, st *crm.Store, cfg Config, dir string) error {
	fmt.Fprintln(w, "\n6. The proof")
	res, err := st.Verify(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   consent ledger: %d events, hash chain ok=%v, head %s\n", res.Events, res.OK, res.Head[:16])
	write := func(name string, fn func(io.Writer) error) (string, error) {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			return "", err
		}
		if err := fn(f); err != nil {
			f.Close()
			return "", err
		}
		return path, f.Close()
	}
	pack, err := write("proof-pack.json", func(f io.Writer) error {
		_, err := st.WriteProofPack(ctx, f, crm.ProofOptions{Controller: controllerOf(cfg)})
		return err
	})
	if err != nil {
		return err
	}
	receipts, err := write("consent-receipts.jsonl", func(f io.Writer) error {
		_, err := st.WriteReceipts(ctx, f, 0, crm.ReceiptOptions{Controller: controllerOf(cfg), InterestLabels: cfg.Interests,
			RefreshMonths: cfg.Run.RefreshMonths})
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   proof pack for an auditor (every event, its evidence, the exact wording and its hash): %s\n", pack)
	fmt.Fprintf(w, "   consent receipts (Kantara v1.1), one per WhatsApp confirmation: %s\n", receipts)
	return nil
}
