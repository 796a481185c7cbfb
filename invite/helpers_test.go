package invite

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/repermit/repermit/crm"
)

// mustOpen opens a fresh store under t.TempDir().
func mustOpen(tb testing.TB, opts ...crm.Option) *crm.Store {
	tb.Helper()
	st, err := crm.Open(context.Background(), filepath.Join(tb.TempDir(), "repermit.db"), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

type seedContact struct {
	Email, First, Lang string
	NoConsent          bool   // no email consent at all
	Withdrawn          bool   // email consent withdrawn
	Suppress           string // suppression reason
	WhatsApp           string // whatsapp action on record
}

// seed writes contacts and their consent straight through crm.
func seed(tb testing.TB, st *crm.Store, cs ...seedContact) {
	tb.Helper()
	err := st.Update(context.Background(), func(tx *crm.Tx) error {
		for _, c := range cs {
			id, _, err := tx.UpsertContact(crm.ContactInput{Email: c.Email, FirstName: c.First, Language: c.Lang, Source: "test"})
			if err != nil {
				return err
			}
			if !c.NoConsent {
				if err := tx.AppendEvent(&crm.Event{ContactID: id, Channel: crm.ChannelEmail, Action: crm.ActionGranted, Method: "import:test"}); err != nil {
					return err
				}
			}
			if c.Withdrawn {
				if err := tx.AppendEvent(&crm.Event{ContactID: id, Channel: crm.ChannelEmail, Action: crm.ActionWithdrawn, Method: "test"}); err != nil {
					return err
				}
			}
			if c.Suppress != "" {
				if _, err := tx.SuppressEmail(c.Email, c.Suppress, "test"); err != nil {
					return err
				}
			}
			if c.WhatsApp != "" {
				if err := tx.AppendEvent(&crm.Event{ContactID: id, Channel: crm.ChannelWhatsApp, Action: c.WhatsApp, Method: "test"}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// seedMany writes n eligible contacts quickly (for big runs).
func seedMany(tb testing.TB, st *crm.Store, n int) {
	tb.Helper()
	for start := 0; start < n; start += 5000 {
		err := st.Update(context.Background(), func(tx *crm.Tx) error {
			for i := start; i < min(n, start+5000); i++ {
				lang := "en"
				if i%3 == 0 {
					lang = "de"
				}
				id, _, err := tx.UpsertContact(crm.ContactInput{Email: fmt.Sprintf("p%06d@example.org", i), FirstName: fmt.Sprintf("P%d", i), Language: lang})
				if err != nil {
					return err
				}
				if err := tx.AppendEvent(&crm.Event{ContactID: id, Channel: crm.ChannelEmail, Action: crm.ActionGranted, Method: "import:test"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

func testCampaign(tb testing.TB, st *crm.Store, name string) Campaign {
	tb.Helper()
	c, _, err := CreateCampaign(context.Background(), st, CampaignSpec{
		Name:             name,
		Interests:        []Interest{{Name: "offers", Labels: map[string]string{"en": "Offers", "de": "Angebote"}}, {Name: "recipes"}},
		StatementVersion: "whatsapp-v1",
		Statements:       map[string]string{"en": "I agree to WhatsApp messages.", "de": "Ich stimme WhatsApp-Nachrichten zu."},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func testIdentity() Identity {
	return Identity{BusinessName: "Example Roasters", Address: "Example Street 1, 10115 Berlin",
		PrivacyURL: "https://shop.example/privacy", From: "Example Roasters <hello@shop.example>",
		ReplyTo: "care@shop.example", BaseURL: "https://optin.shop.example"}
}

// received is one message the test server accepted.
type received struct {
	From, To string
	Data     []byte
	TLS      bool   // the session was encrypted
	User     string // the authenticated user, if any
}

// mailServer is a real go-smtp server on 127.0.0.1:0 that records what it
// receives. fault, when set, may refuse a stage: "connect", "rcpt", "data".
type mailServer struct {
	Addr    string
	Discard bool

	// user and pass, when set, are the only credentials AUTH PLAIN accepts.
	user, pass string

	mu       sync.Mutex
	msgs     []received
	count    int
	fault    func(stage, rcpt string) error
	dropData func(rcpt string) bool
	delay    time.Duration
	conns    int
	srv      *smtp.Server
}

func startServer(tb testing.TB) *mailServer {
	tb.Helper()
	return startServerWith(tb, &mailServer{}, nil, false)
}

// startServerWith starts ms; with tlsConf it offers STARTTLS (and AUTH only
// after it), or with implicit speaks TLS from the start (smtps).
func startServerWith(tb testing.TB, ms *mailServer, tlsConf *tls.Config, implicit bool) *mailServer {
	tb.Helper()
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		ms.mu.Lock()
		ms.conns++
		f := ms.fault
		ms.mu.Unlock()
		if f != nil {
			if err := f("connect", ""); err != nil {
				return nil, err
			}
		}
		return &session{ms: ms, c: c}, nil
	}))
	s.Domain = "localhost"
	s.AllowInsecureAuth = tlsConf == nil
	s.MaxMessageBytes = 1 << 20
	s.ErrorLog = nopLogger{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	if implicit {
		l = tls.NewListener(l, tlsConf)
	} else {
		s.TLSConfig = tlsConf
	}
	ms.Addr = l.Addr().String()
	ms.srv = s
	go s.Serve(l)
	tb.Cleanup(func() { s.Close() })
	return ms
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

func (ms *mailServer) URL() string { return "smtp://" + ms.Addr }

func (ms *mailServer) setFault(f func(stage, rcpt string) error) {
	ms.mu.Lock()
	ms.fault = f
	ms.mu.Unlock()
}

func (ms *mailServer) messages() []received {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]received(nil), ms.msgs...)
}

func (ms *mailServer) total() int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.count
}

type session struct {
	ms   *mailServer
	c    *smtp.Conn
	from string
	to   string
	user string
}

var _ smtp.AuthSession = (*session)(nil)

func (s *session) AuthMechanisms() []string {
	if s.ms.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.ms.user || password != s.ms.pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Reset()        { s.from, s.to = "", "" }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.ms.user != "" && s.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	s.from = from
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.ms.mu.Lock()
	f := s.ms.fault
	s.ms.mu.Unlock()
	if f != nil {
		if err := f("rcpt", to); err != nil {
			return err
		}
	}
	s.to = to
	return nil
}

func (s *session) Data(r io.Reader) error {
	s.ms.mu.Lock()
	drop, delay, discard := s.ms.dropData, s.ms.delay, s.ms.Discard
	s.ms.mu.Unlock()
	if drop != nil && drop(s.to) {
		io.CopyN(io.Discard, r, 100)
		s.c.Conn().Close()
		return errors.New("dropped")
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	if discard {
		_, err := io.Copy(io.Discard, r)
		s.ms.mu.Lock()
		s.ms.count++
		s.ms.mu.Unlock()
		return err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.c.TLSConnectionState()
	s.ms.mu.Lock()
	s.ms.msgs = append(s.ms.msgs, received{From: s.from, To: s.to, Data: b, TLS: isTLS, User: s.user})
	s.ms.count++
	s.ms.mu.Unlock()
	return nil
}

func smtpTransport(tb testing.TB, ms *mailServer) *SMTP {
	tb.Helper()
	t, err := NewSMTP(ms.URL(), SMTPOptions{Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return t
}
