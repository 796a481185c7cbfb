package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/repermit/repermit/invite"
	"github.com/urfave/cli/v2"
)

// Config is repermit.toml. Every field has a working default so that the
// tool runs without one (the demo does).
type Config struct {
	Business  BusinessConfig               `toml:"business"`
	Sender    SenderConfig                 `toml:"sender"`
	Web       WebConfig                    `toml:"web"`
	Import    ImportConfig                 `toml:"import"`
	Statement StatementConfig              `toml:"statement"`
	Interests map[string]map[string]string `toml:"interests"` // interest → language → label
	Run       RunConfig                    `toml:"run"`
}

// BusinessConfig is the identity every invitation and page shows.
type BusinessConfig struct {
	Name           string `toml:"name"`
	Address        string `toml:"address"`
	PrivacyURL     string `toml:"privacy_url"`
	WhatsAppNumber string `toml:"whatsapp_number"`
	Jurisdiction   string `toml:"jurisdiction"`
}

// SenderConfig is how invitations leave.
type SenderConfig struct {
	From              string  `toml:"from"`
	ReplyTo           string  `toml:"reply_to"`
	SMTP              string  `toml:"smtp"`
	Outbox            string  `toml:"outbox"`
	AllowInsecureAuth bool    `toml:"allow_insecure_auth"`
	DKIMDomain        string  `toml:"dkim_domain"`
	DKIMSelector      string  `toml:"dkim_selector"`
	DKIMKeyFile       string  `toml:"dkim_key_file"`
	Rate              float64 `toml:"rate"`
	Concurrency       int     `toml:"concurrency"`
}

// WebConfig is the confirmation site.
type WebConfig struct {
	BaseURL    string `toml:"base_url"`
	Addr       string `toml:"addr"`
	TrustProxy bool   `toml:"trust_proxy"`
}

// ImportConfig holds import defaults.
type ImportConfig struct {
	DefaultRegion string `toml:"default_region"`
}

// StatementConfig is the WhatsApp consent statement: its version and the
// exact wording per language. Change the wording → change the version.
type StatementConfig struct {
	Version string            `toml:"version"`
	Text    map[string]string `toml:"text"`
}

// RunConfig is the periodic job.
type RunConfig struct {
	Campaign      string   `toml:"campaign"`
	Imports       []string `toml:"imports"`
	Preset        string   `toml:"preset"`
	RefreshMonths int      `toml:"refresh_months"`
	SegmentsDir   string   `toml:"segments_dir"`
	Segments      []string `toml:"segments"`
	Format        string   `toml:"format"`
	Rejects       string   `toml:"rejects"`
}

func defaultConfig() Config {
	return Config{
		Business: BusinessConfig{
			Name:         "Example Coffee Roasters",
			Address:      "Example Street 1, 10115 Berlin, Germany",
			Jurisdiction: "EU",
		},
		Sender: SenderConfig{From: "Example Coffee Roasters <hello@example.com>", Outbox: "outbox", Rate: 0, Concurrency: 8},
		Web:    WebConfig{BaseURL: "http://127.0.0.1:8080", Addr: "127.0.0.1:8080"},
		Statement: StatementConfig{
			Version: "whatsapp-v1",
			Text: map[string]string{
				"en": "I agree that {{business}} may send me messages on WhatsApp about the topics I choose below. I can stop at any time by replying STOP or using the link in any message.",
				"de": "Ich bin einverstanden, dass {{business}} mir Nachrichten über WhatsApp zu den unten gewählten Themen sendet. Ich kann jederzeit mit STOP antworten oder den Link in jeder Nachricht nutzen, um das zu beenden.",
			},
		},
		Interests: map[string]map[string]string{
			"offers":  {"en": "Offers and discounts", "de": "Angebote und Rabatte"},
			"recipes": {"en": "Recipes and brewing tips", "de": "Rezepte und Brühtipps"},
			"events":  {"en": "Events and tastings", "de": "Events und Verkostungen"},
		},
		Run: RunConfig{Campaign: "whatsapp-optin", Preset: "auto", RefreshMonths: 24, SegmentsDir: "segments-out", Format: "csv", Rejects: "rejects"},
	}
}

// StatementText returns the statement in a language with the business name
// filled in.
func (c Config) StatementText(lang string) string {
	return strings.ReplaceAll(c.Statement.Text[lang], "{{business}}", c.Business.Name)
}

// campaignSpec is a campaign as the config describes it: the consent
// statement in every configured language and the interests offered (names,
// or every configured interest when names is empty) with their labels.
func (c Config) campaignSpec(name string, names []string) invite.CampaignSpec {
	spec := invite.CampaignSpec{Name: name, StatementVersion: c.Statement.Version, Statements: map[string]string{}}
	for lang := range c.Statement.Text {
		spec.Statements[lang] = c.StatementText(lang)
	}
	if len(names) == 0 {
		names = sortedKeys(c.Interests)
	}
	for _, n := range names {
		spec.Interests = append(spec.Interests, invite.Interest{Name: n, Labels: c.Interests[n]})
	}
	return spec
}

// transport is where invitations go: the SMTP server when one is set, else
// the outbox folder.
func (s SenderConfig) transport() (invite.Transport, error) {
	if s.SMTP != "" {
		t, err := invite.NewSMTP(s.SMTP, invite.SMTPOptions{AllowInsecureAuth: s.AllowInsecureAuth})
		if err != nil {
			return nil, usagef("repermit campaign send NAME --smtp smtp://user:pass@host:587", "%s", err)
		}
		return t, nil
	}
	outbox := s.Outbox
	if outbox == "" {
		outbox = "outbox"
	}
	ob, err := invite.NewOutbox(outbox)
	if err != nil {
		return nil, withHint(err, "check [sender] outbox or --outbox: the folder must be writable")
	}
	return ob, nil
}

// loadConfig reads --config, or ./repermit.toml when present, over the
// defaults.
func loadConfig(c *cli.Context) (Config, error) {
	cfg := defaultConfig()
	path := c.String("config")
	explicit := path != ""
	if !explicit {
		path = "repermit.toml"
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return cfg, nil
	}
	if err != nil {
		return cfg, withHint(fmt.Errorf("read config: %w", err), "check --config (or REPERMIT_CONFIG), or run `repermit init` to write one")
	}
	md, err := toml.Decode(string(b), &cfg)
	if err != nil {
		return cfg, withHint(fmt.Errorf("config %s: %w", path, err), "fix the line it names; `repermit init --force` writes a fresh commented file")
	}
	if und := md.Undecoded(); len(und) > 0 {
		return cfg, withHint(fmt.Errorf("config %s: unknown setting %q", path, und[0].String()), "check the spelling against the file `repermit init` writes")
	}
	return cfg, nil
}
