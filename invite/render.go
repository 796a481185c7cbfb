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
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
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
	// spliceable: both use the per-recipient fields plainly (compile.go).
	spliceable bool
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
		out[lang] = &langTemplates{text: tt, html: ht, spliceable: spliceable(string(tb)) && spliceable(string(hb))}
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

// skeleton renders a message's headers and MIME structure with go-message,
// with sentinels for the per-recipient headers and the two bodies.
func skeleton(h mail.Header) (string, error) {
	var buf bytes.Buffer
	iw, err := mail.CreateInlineWriter(&buf, h)
	if err != nil {
		return "", err
	}
	for _, p := range []struct{ ct, body string }{{"text/plain", sentText}, {"text/html", sentHTML}} {
		var ph mail.InlineHeader
		ph.SetContentType(p.ct, map[string]string{"charset": "utf-8"})
		ph.Set("Content-Transfer-Encoding", "quoted-printable")
		pw, err := iw.CreatePart(ph)
		if err != nil {
			return "", err
		}
		if _, err := io.WriteString(pw, p.body); err != nil {
			return "", err
		}
		if err := pw.Close(); err != nil {
			return "", err
		}
	}
	if err := iw.Close(); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// Renderer renders a campaign's messages. It is safe for concurrent use.
type Renderer struct {
	id         Identity
	campaign   *Campaign
	fromAddr   string
	fromDomain string
	tmpl       map[string]*langTemplates
	interests  map[string][]string // lang → labels
	// msgs holds each language's compiled messages, by kind (0 invitation,
	// 1 reminder) and by whether the recipient has a first name.
	msgs map[string]*[2][2]*compiled
}

// NewRenderer prepares the templates and compiled messages of a campaign
// for every language it has.
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
		msgs: map[string]*[2][2]*compiled{}, interests: map[string][]string{}}
	r.fromDomain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	for lang, t := range tmpl {
		labels := make([]string, 0, len(c.Settings.Interests))
		for _, in := range c.Settings.Interests {
			labels = append(labels, in.Label(lang))
		}
		r.interests[lang] = labels
		var m [2][2]*compiled
		for kind, reminder := range []bool{false, true} {
			subject, err := r.subject(lang, reminder, t)
			if err != nil {
				return nil, err
			}
			var h mail.Header
			h.SetAddressList("From", []*mail.Address{from})
			if replyTo != nil {
				h.SetAddressList("Reply-To", []*mail.Address{replyTo})
			}
			h.Set("To", sentTo)
			h.SetSubject(subject)
			h.Set("Date", sentDate)
			h.Set("Message-Id", "<"+sentMsgID+">")
			h.Set("List-Unsubscribe", "<"+id.BaseURL+"/u/"+sentToken+">")
			h.Set("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
			skel, err := skeleton(h)
			if err != nil {
				return nil, err
			}
			for named, hasName := range []bool{false, true} {
				text, html, err := r.compileBodies(lang, reminder, hasName)
				if err != nil {
					return nil, err
				}
				if m[kind][named], err = compile(skel, text, html); err != nil {
					return nil, err
				}
			}
		}
		r.msgs[lang] = &m
	}
	return r, nil
}

func (r *Renderer) subject(lang string, reminder bool, t *langTemplates) (string, error) {
	m := r.campaign.Settings.Subjects
	name := "subject"
	if reminder {
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
	if _, ok := r.tmpl[tag]; ok {
		return tag // the common case, without allocating
	}
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

// appendDate appends the expiry date as the language writes it.
func appendDate(dst []byte, lang string, t time.Time) []byte {
	t = t.UTC()
	switch lang {
	case "de":
		return t.AppendFormat(dst, "2.1.2006")
	default:
		return t.AppendFormat(dst, "2 January 2006")
	}
}

// data is what the templates see for a recipient.
func (r *Renderer) data(lang string, reminder bool, firstName, token, expiresOn string) templateData {
	confirm, unsub, prefs := r.Links(token)
	return templateData{
		Lang: lang, FirstName: firstName, Business: r.id.BusinessName, Address: r.id.Address,
		PrivacyURL: r.id.PrivacyURL, ConfirmURL: confirm, UnsubscribeURL: unsub, PreferencesURL: prefs,
		Reminder: reminder, Interests: r.interests[lang], ExpiresOn: expiresOn,
	}
}

// bodies renders the text and HTML bodies (unencoded) by executing the
// templates: the reference the compiled messages are checked against, and
// the path for templates that cannot be spliced.
func (r *Renderer) bodies(rc Recipient, lang string, reminder bool, text, html *bytes.Buffer) error {
	t := r.tmpl[lang]
	d := r.data(lang, reminder, rc.FirstName, rc.Token, string(appendDate(nil, lang, rc.ExpiresAt)))
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
	b := make([]byte, 0, 48)
	b = append(b, 'c')
	b = strconv.AppendInt(b, campaignID, 10)
	b = append(b, "-i"...)
	b = strconv.AppendInt(b, invitationID, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(reminder), 10)
	return string(b)
}

// Render builds the message for rc, dated date. The Message-ID is derived
// from the token and the reminder number, so a resend after a crash carries
// the same Message-ID and receiving systems can fold the duplicate.
func (r *Renderer) Render(rc Recipient, date time.Time) (*Message, error) {
	m := &Message{}
	if err := r.renderInto(m, nil, rc, date); err != nil {
		return nil, err
	}
	return m, nil
}

// renderInto fills m, appending the message to buf (which m.Data then
// shares): the send pipeline reuses one buffer and Message per worker.
func (r *Renderer) renderInto(m *Message, buf []byte, rc Recipient, date time.Time) error {
	data, err := r.appendMessage(buf, rc, date, &m.MessageID)
	if err != nil {
		return err
	}
	m.Key = messageKey(r.campaign.ID, rc.InvitationID, rc.Reminder)
	m.From, m.To, m.Data = r.fromAddr, rc.Email, data
	return nil
}

// appendMessage appends the whole message for rc to dst and sets *msgID.
func (r *Renderer) appendMessage(dst []byte, rc Recipient, date time.Time, msgID *string) ([]byte, error) {
	lang := r.Language(rc.Language)
	kind, named := 0, 0
	if rc.Reminder > 0 {
		kind = 1
	}
	if rc.FirstName != "" {
		named = 1
	}
	c := r.msgs[lang][kind][named]

	// Message-ID: hex of the first 12 bytes of SHA-256("message-id:TOKEN:N").
	var idb [128]byte
	seed := append(append(append(idb[:0], "message-id:"...), rc.Token...), ':')
	seed = strconv.AppendInt(seed, int64(rc.Reminder), 10)
	sum := sha256.Sum256(seed)
	var idText [64]byte
	id := append(idText[:0], '<')
	id = hex.AppendEncode(id, sum[:12])
	id = append(append(id, '@'), r.fromDomain...)
	*msgID = string(append(id, '>'))
	bare := (*msgID)[1 : len(*msgID)-1]

	var text, html bytes.Buffer
	if c.perRecipient {
		if err := r.bodies(rc, lang, kind == 1, &text, &html); err != nil {
			return dst, err
		}
	}
	var exp, escaped [64]byte
	expires := appendDate(exp[:0], lang, rc.ExpiresAt)
	start := len(dst)
	col := 0 // the column in a body line; 0 after a header value
	for _, p := range c.pieces {
		if col > 0 && col+p.first > qpMaxLine {
			dst = append(dst, qpSoftBreak...)
			col = 0
		}
		dst = append(dst, p.lit...)
		if p.end >= 0 {
			col = p.end
		} else {
			col += len(p.lit)
		}
		switch p.slot {
		case slotNone:
		case slotTo:
			dst, col = appendTo(dst, rc), 0
		case slotDate:
			dst, col = date.AppendFormat(dst, time.RFC1123Z), 0
		case slotMsgID:
			dst, col = append(dst, bare...), 0
		case slotHeaderToken:
			dst, col = append(dst, rc.Token...), 0
		case slotTextToken, slotHTMLToken:
			dst, col = qpValue(dst, rc.Token, col)
		case slotTextName:
			dst, col = qpValue(dst, rc.FirstName, col)
		case slotHTMLName:
			dst, col = qpValue(dst, htmlEscapeAppend(escaped[:0], rc.FirstName), col)
		case slotTextExpires:
			dst, col = qpValue(dst, expires, col)
		case slotHTMLExpires:
			dst, col = qpValue(dst, htmlEscapeAppend(escaped[:0], string(expires)), col)
		case slotTextBody:
			dst, col = qpAppend(dst, text.Bytes(), 0, true)
		case slotHTMLBody:
			dst, col = qpAppend(dst, html.Bytes(), 0, true)
		}
	}
	if r.id.DKIM != nil {
		var signed bytes.Buffer
		signed.Grow(len(dst) - start + 1024)
		err := dkim.Sign(&signed, bytes.NewReader(dst[start:]), &dkim.SignOptions{
			Domain: r.id.DKIM.Domain, Selector: r.id.DKIM.Selector, Signer: r.id.DKIM.Signer,
			HeaderKeys: []string{"From", "Reply-To", "To", "Subject", "Date", "Message-Id",
				"List-Unsubscribe", "List-Unsubscribe-Post", "Mime-Version", "Content-Type"},
		})
		if err != nil {
			return dst, fmt.Errorf("DKIM sign: %w", err)
		}
		dst = append(dst[:start], signed.Bytes()...)
	}
	return dst, nil
}

// qpValue encodes a per-recipient value where its sentinel was, at column
// col. The literal before it may end in whitespace, left unencoded; an
// empty value or one starting a new line ends that line with a soft break
// first, as decoders strip whitespace before a line break.
func qpValue[S ~string | ~[]byte](dst []byte, v S, col int) ([]byte, int) {
	if col > 0 && (len(v) == 0 || v[0] == '\n' || v[0] == '\r') {
		dst = append(dst, qpSoftBreak...)
		col = 0
	}
	return qpAppend(dst, v, col, true)
}

// appendTo appends the To header's value: "First Last" <addr>. Plain ASCII
// names and addresses are written directly; anything else goes through
// net/mail, which quotes and encodes.
func appendTo(dst []byte, rc Recipient) []byte {
	name := rc.FirstName
	if rc.LastName != "" {
		name = strings.TrimSpace(name + " " + rc.LastName)
	} else {
		name = strings.TrimSpace(name)
	}
	if name == "" && dotAtom(rc.Email) {
		return append(append(append(dst, '<'), rc.Email...), '>')
	}
	if printableASCII(name) && dotAtom(rc.Email) {
		dst = append(dst, '"')
		for i := 0; i < len(name); i++ {
			if name[i] == '"' || name[i] == '\\' {
				dst = append(dst, '\\')
			}
			dst = append(dst, name[i])
		}
		return append(append(append(dst, `" <`...), rc.Email...), '>')
	}
	return append(dst, (&mail.Address{Name: name, Address: rc.Email}).String()...)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// dotAtom reports whether an address's local part needs no quoting
// (RFC 5322 dot-atom of atext) and its domain is plain.
func dotAtom(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return false
	}
	for i := 0; i < len(addr); i++ {
		c := addr[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-':
		case i < at && strings.IndexByte("!#$%&'*+/=?^_`{|}~", c) >= 0:
		case i == at:
		default:
			return false
		}
	}
	return true
}
