package invite

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// selfSigned returns a server certificate for 127.0.0.1 and a client
// config that trusts it (and nothing else).
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "repermit test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

// smtp:// upgrades with STARTTLS and only then authenticates; smtps:// is
// TLS from the first byte. Both deliver every message encrypted and
// authenticated; a certificate the client does not trust stops the run
// before any credentials are sent.
func TestSMTPOverTLS(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	for _, tc := range []struct {
		name     string
		implicit bool
		scheme   string
	}{{"starttls", false, "smtp"}, {"smtps", true, "smtps"}} {
		t.Run(tc.name, func(t *testing.T) {
			ms := startServerWith(t, &mailServer{user: "mailer", pass: "s3cret"}, serverTLS, tc.implicit)
			st := mustOpen(t)
			seed(t, st, seedContact{Email: "anna@example.org", First: "Anna"}, seedContact{Email: "bob@example.org", First: "Bob"})
			testCampaign(t, st, "tls")
			url := tc.scheme + "://mailer:s3cret@" + ms.Addr

			// Untrusted: the handshake fails, nothing is sent, and the error
			// says why.
			untrusted, err := NewSMTP(url, SMTPOptions{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = untrusted.Dial(context.Background())
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("dial with an untrusted certificate: %v", err)
			}

			tr, err := NewSMTP(url, SMTPOptions{Timeout: 5 * time.Second, TLSConfig: clientTLS})
			if err != nil {
				t.Fatal(err)
			}
			res, err := Send(context.Background(), st, SendOptions{Campaign: "tls", Identity: testIdentity(), Transport: tr})
			if err != nil || res.Sent != 2 {
				t.Fatalf("send %+v %v", res, err)
			}
			msgs := ms.messages()
			if len(msgs) != 2 {
				t.Fatalf("%d messages at the server", len(msgs))
			}
			for _, m := range msgs {
				if !m.TLS || m.User != "mailer" {
					t.Errorf("%s: TLS %v, user %q", m.To, m.TLS, m.User)
				}
			}
		})
	}
}

// STARTTLS is used whenever the server offers it, also without
// credentials.
func TestSTARTTLSWithoutCredentials(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	ms := startServerWith(t, &mailServer{}, serverTLS, false)
	st := mustOpen(t)
	seed(t, st, seedContact{Email: "anna@example.org"})
	testCampaign(t, st, "tls")
	tr, err := NewSMTP("smtp://"+ms.Addr, SMTPOptions{Timeout: 5 * time.Second, TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := Send(context.Background(), st, SendOptions{Campaign: "tls", Identity: testIdentity(), Transport: tr}); err != nil || res.Sent != 1 {
		t.Fatalf("send %+v %v", res, err)
	}
	if m := ms.messages(); len(m) != 1 || !m[0].TLS {
		t.Fatalf("messages %+v", m)
	}
}
