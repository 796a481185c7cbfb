package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite"
	"github.com/repermit/repermit/invite/web"
)

const (
	stmtEN = "I agree that Kaffee & Co may send me messages on WhatsApp about the topics I choose below. I can stop at any time by replying STOP."
	stmtDE = "Ich bin einverstanden, dass Kaffee & Co mir Nachrichten über WhatsApp zu den unten gewählten Themen sendet."
)

// fixture is a real store under t.TempDir() behind a real HTTP server.
type fixture struct {
	t        *testing.T
	st       *crm.Store
	h        *web.Server
	srv      *httptest.Server
	campaign int64
	logs     *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func openStore(t testing.TB, path string) *crm.Store {
	t.Helper()
	st, err := crm.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func testBusiness() web.Business {
	return web.Business{Name: "Kaffee & Co", Address: "Beispielstraße 1, 10115 Berlin", PrivacyURL: "https://kaffee.example/privacy", WhatsAppNumber: "+49 30 1234567"}
}

func newFixture(t *testing.T, opt web.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, logs: &syncBuffer{}}
	f.st = openStore(t, filepath.Join(t.TempDir(), "repermit.db"))
	if opt.Business.Name == "" {
		opt.Business = testBusiness()
	}
	opt.Logger = slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.h = web.New(f.st, opt)
	f.srv = httptest.NewServer(f.h)
	t.Cleanup(func() {
		f.srv.Close()
		f.h.Close()
	})
	f.campaign = seedCampaign(t, f.st, "spring-optin")
	return f
}

// seedCampaign stores the statement in two languages and a campaign row
// that offers three interests.
func seedCampaign(t testing.TB, st *crm.Store, name string) int64 {
	t.Helper()
	settings, _ := json.Marshal(invite.Settings{Interests: []invite.Interest{
		{Name: "offers", Labels: map[string]string{"en": "Offers and discounts", "de": "Angebote und Rabatte"}},
		{Name: "recipes", Labels: map[string]string{"en": "Recipes and brewing tips", "de": "Rezepte und Brühtipps"}},
		{Name: "events", Labels: map[string]string{"en": "Events and tastings", "de": "Events und Verkostungen"}},
	}})
	var id int64
	err := st.Update(context.Background(), func(tx *crm.Tx) error {
		for lang, text := range map[string]string{"en": stmtEN, "de": stmtDE} {
			if _, err := tx.SaveStatement(crm.Statement{Channel: "whatsapp", Version: "whatsapp-v1", Language: lang, Text: text}); err != nil {
				return err
			}
		}
		res, err := tx.Exec(`INSERT INTO campaigns (name, settings, statement_version, expiry_seconds, created_at)
			VALUES (?, ?, 'whatsapp-v1', 2592000, ?)`, name, string(settings), crm.FormatTime(tx.Now))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// seedContact creates a contact with granted email consent.
func seedContact(t testing.TB, st *crm.Store, in crm.ContactInput) int64 {
	t.Helper()
	var id int64
	err := st.Update(context.Background(), func(tx *crm.Tx) error {
		var err error
		if id, _, err = tx.UpsertContact(in); err != nil {
			return err
		}
		return tx.AppendEvent(&crm.Event{ContactID: id, Channel: "email", Action: "granted", Method: "import:test"})
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// seedInvitation inserts an invitation (as `campaign send` would) and
// returns its token.
func seedInvitation(t testing.TB, st *crm.Store, campaign, contact int64, expires time.Time) string {
	t.Helper()
	token, hash := invite.NewToken()
	err := st.Update(context.Background(), func(tx *crm.Tx) error {
		_, err := tx.Exec(`INSERT INTO invitations (campaign_id, contact_id, token_hash, status, sent_at, expires_at, created_at)
			VALUES (?, ?, ?, 'sent', ?, ?, ?)`, campaign, contact, hash, crm.FormatTime(tx.Now), crm.FormatTime(expires), crm.FormatTime(tx.Now))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// person seeds a contact with a German mobile number and an invitation.
func (f *fixture) person(email string, in crm.ContactInput) (int64, string) {
	f.t.Helper()
	in.Email = email
	if in.Country == "" {
		in.Country = "DE"
	}
	id := seedContact(f.t, f.st, in)
	return id, seedInvitation(f.t, f.st, f.campaign, id, time.Now().Add(30*24*time.Hour))
}

type response struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) do(method, path string, form url.Values, header ...string) response {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", "repermit-test/1.0")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

func (f *fixture) get(path string, header ...string) response {
	return f.do("GET", path, nil, header...)
}

func (f *fixture) post(path string, form url.Values, header ...string) response {
	return f.do("POST", path, form, header...)
}

func (f *fixture) events(contact int64) []crm.Event {
	f.t.Helper()
	evs, err := f.st.Events(context.Background(), contact)
	if err != nil {
		f.t.Fatal(err)
	}
	return evs
}

// whatsappEvents are the contact's WhatsApp events.
func (f *fixture) whatsappEvents(contact int64) []crm.Event {
	var out []crm.Event
	for _, e := range f.events(contact) {
		if e.Channel == "whatsapp" {
			out = append(out, e)
		}
	}
	return out
}

func (f *fixture) consent(contact int64, channel string) string {
	f.t.Helper()
	cs, err := f.st.Consent(context.Background(), contact)
	if err != nil {
		f.t.Fatal(err)
	}
	return cs[channel].Action
}

func (f *fixture) scalar(q string, args ...any) string {
	f.t.Helper()
	var v string
	if err := f.st.DB().QueryRow(q, args...).Scan(&v); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	return v
}

func (f *fixture) verify() {
	f.t.Helper()
	res, err := f.st.Verify(context.Background())
	if err != nil || !res.OK {
		f.t.Fatalf("ledger does not verify: %+v %v", res, err)
	}
}

func mustContain(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		// html/template writes some characters (+, ") as entities.
		if !strings.Contains(body, w) && !strings.Contains(html.UnescapeString(body), w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func mustNotContain(t *testing.T, body string, nots ...string) {
	t.Helper()
	for _, n := range nots {
		if strings.Contains(body, n) {
			t.Errorf("page contains %q", n)
		}
	}
}

func confirmForm(interests ...string) url.Values {
	v := url.Values{"decision": {"confirm"}}
	for _, i := range interests {
		v.Add("interest", i)
	}
	return v
}
