package invite

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPOptions tune an SMTP transport. The zero value is sensible.
type SMTPOptions struct {
	// AllowInsecureAuth permits credentials over a connection without TLS
	// (only for a relay on localhost); otherwise smtp:// with credentials
	// requires STARTTLS.
	AllowInsecureAuth bool
	// Timeout bounds connecting and each command (default 30s).
	Timeout time.Duration
	// TLSConfig for STARTTLS and smtps:// (default: verify the server's
	// certificate for the URL's host against the system roots). Set RootCAs
	// to trust a private CA or a self-signed certificate; an empty
	// ServerName is the URL's host.
	TLSConfig *tls.Config
	// HelloName is the EHLO name (default "localhost").
	HelloName string
}

// SMTP sends through a mail server: smtp://[user:pass@]host[:port] (port 25;
// STARTTLS when offered, required when credentials are given) or
// smtps://[user:pass@]host[:port] (TLS from the start, port 465). The query
// ?auth=login picks AUTH LOGIN instead of PLAIN.
type SMTP struct {
	addr     string
	host     string
	implicit bool
	user     string
	pass     string
	login    bool
	opts     SMTPOptions

	// startTLS is whether the server offers STARTTLS, learnt on the first
	// connection (0 unknown, 1 yes, 2 no).
	startTLS atomic.Int32
}

var _ Transport = (*SMTP)(nil)

// NewSMTP parses rawURL. It never echoes the password in an error.
func NewSMTP(rawURL string, opts SMTPOptions) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("SMTP URL does not parse; write it as smtp://user:pass@host:587 or smtps://user:pass@host:465")
	}
	s := &SMTP{opts: opts, host: u.Hostname()}
	port := u.Port()
	switch u.Scheme {
	case "smtp":
		if port == "" {
			port = "25"
		}
	case "smtps":
		s.implicit = true
		if port == "" {
			port = "465"
		}
	default:
		return nil, fmt.Errorf("SMTP URL scheme %q: use smtp:// (STARTTLS) or smtps:// (TLS)", u.Scheme)
	}
	if s.host == "" {
		return nil, errors.New("SMTP URL has no host; write it as smtp://host:587")
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	switch strings.ToLower(u.Query().Get("auth")) {
	case "", "plain":
	case "login":
		s.login = true
	default:
		return nil, fmt.Errorf("SMTP auth %q: use plain or login", u.Query().Get("auth"))
	}
	if s.opts.Timeout == 0 {
		s.opts.Timeout = 30 * time.Second
	}
	if s.opts.HelloName == "" {
		s.opts.HelloName = "localhost"
	}
	return s, nil
}

// ErrInsecureAuth refuses to send a password in clear text.
var ErrInsecureAuth = errors.New("the SMTP server does not offer STARTTLS, so the password would go in clear text")

// Dial connects, upgrades to TLS and authenticates.
func (s *SMTP) Dial(ctx context.Context) (_ Conn, err error) {
	d := net.Dialer{Timeout: s.opts.Timeout}
	raw, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			raw.Close()
		}
	}()
	tlsConf := &tls.Config{ServerName: s.host}
	if s.opts.TLSConfig != nil {
		tlsConf = s.opts.TLSConfig.Clone()
		if tlsConf.ServerName == "" {
			tlsConf.ServerName = s.host
		}
	}
	if s.implicit {
		tc := tls.Client(raw, tlsConf)
		tc.SetDeadline(time.Now().Add(s.opts.Timeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		tc.SetDeadline(time.Time{})
		raw = tc
	}
	// The greeting and handshake have no timeout of their own: bound them.
	raw.SetDeadline(time.Now().Add(s.opts.Timeout))
	var c *smtp.Client
	if !s.implicit && s.offersStartTLS(ctx, raw) {
		c, err = smtp.NewClientStartTLS(raw, tlsConf)
		if err != nil {
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
	} else {
		c = smtp.NewClient(raw)
	}
	c.CommandTimeout = s.opts.Timeout
	c.SubmissionTimeout = s.opts.Timeout
	if err := c.Hello(s.opts.HelloName); err != nil {
		c.Close()
		return nil, err
	}
	if _, isTLS := c.TLSConnectionState(); !isTLS && s.user != "" && !s.opts.AllowInsecureAuth {
		c.Close()
		return nil, &permanentError{ErrInsecureAuth}
	}
	if s.user != "" {
		var a sasl.Client
		if s.login || !c.SupportsAuth("PLAIN") && c.SupportsAuth("LOGIN") {
			a = sasl.NewLoginClient(s.user, s.pass)
		} else {
			a = sasl.NewPlainClient("", s.user, s.pass)
		}
		if err := c.Auth(a); err != nil {
			c.Close()
			return nil, fmt.Errorf("SMTP AUTH: %w", err)
		}
	}
	raw.SetDeadline(time.Time{})
	return &smtpConn{c: c}, nil
}

// offersStartTLS reports whether the server offers STARTTLS. go-smtp can
// only upgrade a fresh connection, so the first connection asks EHLO and is
// then closed; the answer is kept for every later connection.
func (s *SMTP) offersStartTLS(ctx context.Context, raw net.Conn) bool {
	switch s.startTLS.Load() {
	case 1:
		return true
	case 2:
		return false
	}
	d := net.Dialer{Timeout: s.opts.Timeout}
	probe, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return true // let the real connection report the problem
	}
	probe.SetDeadline(time.Now().Add(s.opts.Timeout))
	c := smtp.NewClient(probe)
	defer c.Close()
	if err := c.Hello(s.opts.HelloName); err != nil {
		return true
	}
	ok, _ := c.Extension("STARTTLS")
	c.Quit()
	if ok {
		s.startTLS.Store(1)
	} else {
		s.startTLS.Store(2)
	}
	return ok
}

type smtpConn struct {
	c     *smtp.Client
	dirty bool // a transaction failed part-way: RSET before the next
}

func (sc *smtpConn) Close() error {
	if err := sc.c.Quit(); err != nil {
		return sc.c.Close()
	}
	return nil
}

// Send runs one mail transaction. An error from RCPT is wrapped in
// *RcptError so that a hard bounce can be told from a refused sender. The
// message is written before commit is called, and the final dot after it:
// a server discards a transaction whose connection closes before the dot.
func (sc *smtpConn) Send(ctx context.Context, m *Message, commit func() error) error {
	if sc.dirty {
		if err := sc.c.Reset(); err != nil {
			return err
		}
		sc.dirty = false
	}
	sc.dirty = true
	if err := sc.c.Mail(m.From, nil); err != nil {
		return err
	}
	if err := sc.c.Rcpt(m.To, nil); err != nil {
		return &RcptError{Err: err}
	}
	w, err := sc.c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(m.Data); err != nil {
		w.Close()
		return err
	}
	if commit != nil {
		if err := commit(); err != nil {
			sc.c.Close() // without the dot: the server drops the message
			return fmt.Errorf("%w: %w", ErrAbandoned, err)
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	sc.dirty = false
	return nil
}

// RcptError is a refusal of the recipient address.
type RcptError struct{ Err error }

func (e *RcptError) Error() string { return "recipient refused: " + e.Err.Error() }
func (e *RcptError) Unwrap() error { return e.Err }

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Outcome is how the pipeline treats a send error.
type Outcome int

// Outcomes of Classify.
const (
	Temporary Outcome = iota // 4xx, dropped connection, timeout: retry with backoff
	Permanent                // 5xx: the message fails
	Bounce                   // 5.1.x on RCPT: the address does not exist; suppress it
)

// Classify decides retry vs. failure by *smtp.SMTPError.Temporary(): 4xx and
// errors without an SMTP reply (dropped connections, timeouts) are
// temporary; 5xx are permanent, and 5.1.x refusing the recipient is a hard
// bounce.
func Classify(err error) Outcome {
	var pe *permanentError
	if errors.As(err, &pe) {
		return Permanent
	}
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return Temporary
	}
	if se.Temporary() {
		return Temporary
	}
	var re *RcptError
	if errors.As(err, &re) && se.EnhancedCode[0] == 5 && se.EnhancedCode[1] == 1 {
		return Bounce
	}
	return Permanent
}

// isProtocolReply reports whether err is a reply of the server (the
// connection is still usable) rather than a broken connection.
func isProtocolReply(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code != 421
}
