package invite

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"mime/quotedprintable"
	"os"
	"path"
	"sort"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"
)

//go:embed templates/*.txt templates/*.html
var defaultTemplates embed.FS

// FallbackLanguage is used when a contact's language has no template.
const FallbackLanguage = "en"

// Identity is who sends the invitation, passed as plain values from the
// config: the business's name and postal address appear in every message
// (CAN-SPAM, ePrivacy), From and Reply-To are RFC 5322 addresses, BaseURL is
// where the confirmation pages are served.
type Identity struct {
	BusinessName string
	Address      string
	PrivacyURL   string
	From         string // "Name <addr@example.com>" or a bare address
	ReplyTo      string // optional
	BaseURL      string // e.g. https://optin.example.com
	DKIM         *DKIM  // optional
}

// DKIM signs every message; the signature covers the List-Unsubscribe
// headers, which Gmail and Yahoo require for one-click unsubscribe.
type DKIM struct {
	Domain   string
	Selector string
	Signer   crypto.Signer // RSA or Ed25519, see LoadDKIMKey
}

// LoadDKIMKey reads a PEM private key (PKCS#1 RSA or PKCS#8 RSA/Ed25519).
func LoadDKIMKey(file string) (crypto.Signer, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read DKIM key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("DKIM key %s is not PEM; give the private key file (-----BEGIN PRIVATE KEY-----)", file)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("DKIM key %s: %w", file, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("DKIM key %s: unsupported key type %T", file, k)
	}
	return s, nil
}

// Recipient is one message to render.
type Recipient struct {
	InvitationID int64
	Email        string
	FirstName    string
	LastName     string
	Language     string
	Token        string
	// Reminder is 0 for the invitation and n for the n-th reminder.
	Reminder  int
	ExpiresAt time.Time
}

// Message is a rendered email ready for a transport.
type Message struct {
	// Key names the message stably across resends (the outbox file name):
	// the same invitation and reminder number always give the same key.
	Key       string
	MessageID string
	From      string // envelope sender (bare address)
	To        string // envelope recipient
	Data      []byte // the whole RFC 5322 message, CRLF line ends
}

// templateData is what the templates see.
type templateData struct {
	Lang           string
	FirstName      string
	Business       string
	Address        string
	PrivacyURL     string
	ConfirmURL     string
	UnsubscribeURL string
	PreferencesURL string
	Reminder       bool
	Interests      []string
	ExpiresOn      string
}

type langTemplates struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

var funcs = map[string]any{"join": strings.Join}

// loadTemplates reads the embedded templates and then dir (when set), whose
// files LANG.txt and LANG.html replace or add languages.
func loadTemplates(dir string) (map[string]*langTemplates, error) {
	out := map[string]*langTemplates{}
	sub, _ := fs.Sub(defaultTemplates, "templates")
	if err := addTemplates(out, sub, "embedded"); err != nil {
		return nil, err
	}
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("template directory %s does not exist; give a directory holding LANG.txt and LANG.html files", dir)
		}
		if err := addTemplates(out, os.DirFS(dir), dir); err != nil {
			return nil, err
		}
	}
	if out[FallbackLanguage] == nil {
		return nil, errors.New("no English (fallback) templates")
	}
	return out, nil
}

func addTemplates(out map[string]*langTemplates, fsys fs.FS, where string) error {
	names, err := fs.Glob(fsys, "*.txt")
	if err != nil {
		return err
	}
	for _, n := range names {
		lang := strings.TrimSuffix(n, ".txt")
		tb, err := fs.ReadFile(fsys, n)
		if err != nil {
			return err
		}
		hb, err := fs.ReadFile(fsys, lang+".html")
		if err != nil {
			return fmt.Errorf("template %s/%s has no %s.html beside it; every language needs both a text and an HTML version", where, n, lang)
		}
		tt, err := texttemplate.New(n).Funcs(funcs).Option("missingkey=error").Parse(string(tb))
		if err != nil {
			return fmt.Errorf("template %s: %w", path.Join(where, n), err)
		}
		ht, err := htmltemplate.New(lang + ".html").Funcs(funcs).Option("missingkey=error").Parse(string(hb))
		if err != nil {
			return fmt.Errorf("template %s: %w", path.Join(where, lang+".html"), err)
		}
		out[lang] = &langTemplates{text: tt, html: ht}
	}
	return nil
}

// Languages lists the languages a template directory (or the embedded
// defaults, dir "") offers.
func Languages(dir string) ([]string, error) {
	t, err := loadTemplates(dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(t))
	for l := range t {
		out = append(out, l)
	}
	sort.Strings(out)
	return out, nil
}

// Placeholders the skeleton carries where per-recipient values go.
const (
	slotTo    = "@@REPERMIT-TO@@"
	slotDate  = "@@REPERMIT-DATE@@"
	slotMsgID = "@@REPERMIT-MSGID@@"
	slotUnsub = "@@REPERMIT-UNSUB@@"
	slotText  = "@@REPERMIT-TEXT@@"
	slotHTML  = "@@REPERMIT-HTML@@"
)

var slotNames = []string{slotTo, slotDate, slotMsgID, slotUnsub, slotText, slotHTML}

// skeleton is a message built once per language and kind with go-message;
// per recipient only the slots are filled. This is what makes rendering
// cheap enough for thousands of messages a second: the MIME structure,
// encoded subject and identity headers are the same for every recipient.
type skeleton struct {
	chunks []string // literal text; slots[i] goes after chunks[i]
	slots  []string
}

func buildSkeleton(h mail.Header) (*skeleton, error) {
	var buf bytes.Buffer
	iw, err := mail.CreateInlineWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	for _, p := range []struct{ ct, slot string }{{"text/plain", slotText}, {"text/html", slotHTML}} {
		var ph mail.InlineHeader
		ph.SetContentType(p.ct, map[string]string{"charset": "utf-8"})
		ph.Set("Content-Transfer-Encoding", "quoted-printable")
		pw, err := iw.CreatePart(ph)
		if err != nil {
			return nil, err
		}
		if _, err := pw.Write([]byte(p.slot)); err != nil {
			return nil, err
		}
		if err := pw.Close(); err != nil {
			return nil, err
		}
	}
	if err := iw.Close(); err != nil {
		return nil, err
	}
	s := buf.String()
	sk := &skeleton{}
	for {
		at, which := -1, ""
		for _, n := range slotNames {
			if i := strings.Index(s, n); i >= 0 && (at < 0 || i < at) {
				at, which = i, n
			}
		}
		if at < 0 {
			sk.chunks = append(sk.chunks, s)
			break
		}
		sk.chunks = append(sk.chunks, s[:at])
		sk.slots = append(sk.slots, which)
		s = s[at+len(which):]
	}
	if len(sk.slots) != len(slotNames) {
		return nil, fmt.Errorf("message skeleton has %d of %d placeholders (a header was folded?)", len(sk.slots), len(slotNames))
	}
	return sk, nil
}

// Renderer renders a campaign's messages. It is safe for concurrent use.
type Renderer struct {
	id         Identity
	campaign   *Campaign
	fromAddr   string
	fromDomain string
	tmpl       map[string]*langTemplates
	skel       map[string]*skeleton // lang + "/" + kind
	interests  map[string][]string  // lang → labels
}

// NewRenderer prepares the templates and skeletons of a campaign for every
// language it has.
func NewRenderer(c *Campaign, id Identity) (*Renderer, error) {
	if id.BaseURL == "" {
		return nil, errors.New("no base URL for the links; set [web] base_url in the config")
	}
	id.BaseURL = strings.TrimRight(id.BaseURL, "/")
	from, err := mail.ParseAddress(id.From)
	if err != nil {
		return nil, fmt.Errorf("sender address %q: %w; set [sender] from to e.g. \"Shop <hello@shop.example>\"", id.From, err)
	}
	var replyTo *mail.Address
	if id.ReplyTo != "" {
		if replyTo, err = mail.ParseAddress(id.ReplyTo); err != nil {
			return nil, fmt.Errorf("reply-to address %q: %w", id.ReplyTo, err)
		}
	}
	if id.BusinessName == "" || id.Address == "" {
		return nil, errors.New("the business name and postal address must be in every invitation; set [business] name and address in the config")
	}
	tmpl, err := loadTemplates(c.Settings.TemplateDir)
	if err != nil {
		return nil, err
	}
	r := &Renderer{id: id, campaign: c, fromAddr: from.Address, tmpl: tmpl,
		skel: map[string]*skeleton{}, interests: map[string][]string{}}
	r.fromDomain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	for lang, t := range tmpl {
		labels := make([]string, 0, len(c.Settings.Interests))
		for _, in := range c.Settings.Interests {
			labels = append(labels, in.Label(lang))
		}
		r.interests[lang] = labels
		for _, kind := range []string{"invite", "reminder"} {
			subject, err := r.subject(lang, kind, t)
			if err != nil {
				return nil, err
			}
			var h mail.Header
			h.SetAddressList("From", []*mail.Address{from})
			if replyTo != nil {
				h.SetAddressList("Reply-To", []*mail.Address{replyTo})
			}
			h.Set("To", slotTo)
			h.SetSubject(subject)
			h.Set("Date", slotDate)
			h.Set("Message-Id", "<"+slotMsgID+">")
			h.Set("List-Unsubscribe", "<"+slotUnsub+">")
			h.Set("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
			sk, err := buildSkeleton(h)
			if err != nil {
				return nil, err
			}
			r.skel[lang+"/"+kind] = sk
		}
	}
	return r, nil
}

func (r *Renderer) subject(lang, kind string, t *langTemplates) (string, error) {
	m := r.campaign.Settings.Subjects
	name := "subject"
	if kind == "reminder" {
		m, name = r.campaign.Settings.ReminderSubjects, "reminder_subject"
	}
	if s := m[lang]; s != "" {
		return strings.ReplaceAll(s, "{business}", r.id.BusinessName), nil
	}
	if t.text.Lookup(name) == nil {
		if s := m[FallbackLanguage]; s != "" {
			return strings.ReplaceAll(s, "{business}", r.id.BusinessName), nil
		}
		return "", fmt.Errorf("template %s.txt defines no %q and the campaign has no subject for it", lang, name)
	}
	var b strings.Builder
	if err := t.text.ExecuteTemplate(&b, name, templateData{Lang: lang, Business: r.id.BusinessName}); err != nil {
		return "", fmt.Errorf("subject of %s: %w", lang, err)
	}
	return strings.TrimSpace(b.String()), nil
}

// Language picks the template language for a contact's language tag
// ("de-AT" → "de"), falling back to English.
func (r *Renderer) Language(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	if _, ok := r.tmpl[tag]; ok {
		return tag
	}
	if i := strings.IndexAny(tag, "-_"); i > 0 {
		if _, ok := r.tmpl[tag[:i]]; ok {
			return tag[:i]
		}
	}
	return FallbackLanguage
}

// Links returns the confirm, unsubscribe and preference links of a token.
func (r *Renderer) Links(token string) (confirm, unsubscribe, preferences string) {
	return r.id.BaseURL + "/c/" + token, r.id.BaseURL + "/u/" + token, r.id.BaseURL + "/p/" + token
}

func formatDate(lang string, t time.Time) string {
	t = t.UTC()
	switch lang {
	case "de":
		return t.Format("2.1.2006")
	default:
		return t.Format("2 January 2006")
	}
}

// bodies renders the text and HTML bodies (unencoded).
func (r *Renderer) bodies(rc Recipient, lang string, text, html *bytes.Buffer) error {
	t := r.tmpl[lang]
	confirm, unsub, prefs := r.Links(rc.Token)
	d := templateData{
		Lang: lang, FirstName: rc.FirstName, Business: r.id.BusinessName, Address: r.id.Address,
		PrivacyURL: r.id.PrivacyURL, ConfirmURL: confirm, UnsubscribeURL: unsub, PreferencesURL: prefs,
		Reminder: rc.Reminder > 0, Interests: r.interests[lang], ExpiresOn: formatDate(lang, rc.ExpiresAt),
	}
	if err := t.text.Execute(text, d); err != nil {
		return fmt.Errorf("render %s.txt: %w", lang, err)
	}
	if err := t.html.Execute(html, d); err != nil {
		return fmt.Errorf("render %s.html: %w", lang, err)
	}
	return nil
}

// messageKey names an invitation's n-th message stably.
func messageKey(campaignID, invitationID int64, reminder int) string {
	return fmt.Sprintf("c%d-i%d-%d", campaignID, invitationID, reminder)
}

// Render builds the message for rc, dated date. The Message-ID is derived
// from the token and the reminder number, so a resend after a crash carries
// the same Message-ID and receiving systems can fold the duplicate.
func (r *Renderer) Render(rc Recipient, date time.Time) (*Message, error) {
	lang := r.Language(rc.Language)
	kind := "invite"
	if rc.Reminder > 0 {
		kind = "reminder"
	}
	sk := r.skel[lang+"/"+kind]
	var text, html bytes.Buffer
	if err := r.bodies(rc, lang, &text, &html); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("message-id:%s:%d", rc.Token, rc.Reminder)))
	msgID := hex.EncodeToString(sum[:12]) + "@" + r.fromDomain
	name := strings.TrimSpace(rc.FirstName + " " + rc.LastName)
	to := (&mail.Address{Name: name, Address: rc.Email}).String()
	_, unsub, _ := r.Links(rc.Token)

	var out bytes.Buffer
	out.Grow(len(sk.chunks[0]) + text.Len()*2 + html.Len()*2 + 1024)
	for i, s := range sk.slots {
		out.WriteString(sk.chunks[i])
		switch s {
		case slotTo:
			out.WriteString(to)
		case slotDate:
			out.WriteString(date.Format(time.RFC1123Z))
		case slotMsgID:
			out.WriteString(msgID)
		case slotUnsub:
			out.WriteString(unsub)
		case slotText, slotHTML:
			body := &text
			if s == slotHTML {
				body = &html
			}
			qp := quotedprintable.NewWriter(&out)
			if _, err := qp.Write(body.Bytes()); err != nil {
				return nil, err
			}
			if err := qp.Close(); err != nil {
				return nil, err
			}
		}
	}
	out.WriteString(sk.chunks[len(sk.chunks)-1])
	data := out.Bytes()
	if r.id.DKIM != nil {
		var signed bytes.Buffer
		signed.Grow(len(data) + 1024)
		err := dkim.Sign(&signed, bytes.NewReader(data), &dkim.SignOptions{
			Domain: r.id.DKIM.Domain, Selector: r.id.DKIM.Selector, Signer: r.id.DKIM.Signer,
			HeaderKeys: []string{"From", "Reply-To", "To", "Subject", "Date", "Message-Id",
				"List-Unsubscribe", "List-Unsubscribe-Post", "Mime-Version", "Content-Type"},
		})
		if err != nil {
			return nil, fmt.Errorf("DKIM sign: %w", err)
		}
		data = signed.Bytes()
	}
	return &Message{
		Key:       messageKey(r.campaign.ID, rc.InvitationID, rc.Reminder),
		MessageID: "<" + msgID + ">",
		From:      r.fromAddr,
		To:        rc.Email,
		Data:      data,
	}, nil
}
