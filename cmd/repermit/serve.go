package main

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite/web"
	"github.com/urfave/cli/v2"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the confirmation, unsubscribe and preference pages (/c, /u, /p, /healthz)",
		Description: "GET only shows a page and logs the visit; only a person pressing a button records consent.\n" +
			"Stops gracefully on SIGTERM or Ctrl-C. Safe to run beside `campaign send` on the same database.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Usage: "address to listen on (default: [web] addr of the config, 127.0.0.1:8080)"},
			&cli.BoolFlag{Name: "trust-proxy", Usage: "take the client IP from X-Forwarded-For/X-Real-IP (only behind a proxy that sets them)"},
		},
		Action: serve,
	}
}

func serve(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("repermit serve --addr 127.0.0.1:8080", "serve takes no arguments")
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	addr := cfg.Web.Addr
	if c.IsSet("addr") {
		addr = c.String("addr")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return usagef("repermit serve --addr 127.0.0.1:8080", "--addr %q is not host:port", addr)
	}
	trust := cfg.Web.TrustProxy
	if c.IsSet("trust-proxy") {
		trust = c.Bool("trust-proxy")
	}
	st, err := openStore(c, false)
	if err != nil {
		return err
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))
	opt := webOptions(cfg)
	opt.TrustProxy, opt.Logger = trust, log
	h := web.New(st, opt)
	fmt.Fprintf(c.App.ErrWriter, "Serving the confirmation pages on http://%s (Ctrl-C to stop)\n", addr)
	err = web.ListenAndServe(c.Context, addr, h, log)
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return withHint(err, "pick a free --addr, or stop the other server")
	}
	fmt.Fprintln(c.App.ErrWriter, "Stopped.")
	return nil
}

// webOptions are the pages' settings from the config: the business they
// speak for and the consent receipt they offer.
func webOptions(cfg Config) web.Options {
	return web.Options{
		Business: web.Business{
			Name:           cfg.Business.Name,
			Address:        cfg.Business.Address,
			PrivacyURL:     cfg.Business.PrivacyURL,
			WhatsAppNumber: cfg.Business.WhatsAppNumber,
		},
		TrustProxy:    cfg.Web.TrustProxy,
		DefaultRegion: cfg.Import.DefaultRegion,
		Receipt: &crm.ReceiptOptions{Controller: controllerOf(cfg), InterestLabels: cfg.Interests,
			RefreshMonths: cfg.Run.RefreshMonths},
	}
}
