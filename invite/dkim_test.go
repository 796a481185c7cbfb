package invite

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// Messages sent with a DKIM key (read from a PEM file, as the config gives
// it) carry a signature that go-msgauth's verifier accepts against the
// published key, and whose h= covers List-Unsubscribe and
// List-Unsubscribe-Post, as Gmail and Yahoo require for one-click
// unsubscribe. Changing the unsubscribe link breaks the signature.
func TestDKIMSignedMessagesVerify(t *testing.T) {
	for _, alg := range []string{"ed25519", "rsa"} {
		t.Run(alg, func(t *testing.T) {
			var key crypto.Signer
			var record string
			switch alg {
			case "ed25519":
				pub, priv, err := ed25519.GenerateKey(rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				key, record = priv, "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub)
			case "rsa":
				priv, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					t.Fatal(err)
				}
				der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
				if err != nil {
					t.Fatal(err)
				}
				key, record = priv, "v=DKIM1; k=rsa; p="+base64.StdEncoding.EncodeToString(der)
			}
			der, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "dkim.pem")
			if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
				t.Fatal(err)
			}
			signer, err := LoadDKIMKey(file)
			if err != nil {
				t.Fatal(err)
			}
			id := testIdentity()
			id.DKIM = &DKIM{Domain: "shop.example", Selector: "rp2026", Signer: signer}

			st := mustOpen(t)
			seed(t, st, seedContact{Email: "anna@example.org", First: "Anna", Lang: "en"},
				seedContact{Email: "bernd@example.de", First: "Bernd Müller", Lang: "de"})
			testCampaign(t, st, "signed")
			ms := startServer(t)
			res, err := Send(context.Background(), st, SendOptions{Campaign: "signed", Identity: id, Transport: smtpTransport(t, ms)})
			if err != nil || res.Sent != 2 {
				t.Fatalf("send %+v %v", res, err)
			}
			// The verifier looks the key up here instead of in DNS.
			lookup := func(domain string) ([]string, error) {
				if domain != "rp2026._domainkey.shop.example" {
					return nil, fmt.Errorf("no TXT record for %s", domain)
				}
				return []string{record}, nil
			}
			for _, m := range ms.messages() {
				vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Data), &dkim.VerifyOptions{LookupTXT: lookup})
				if err != nil || len(vs) != 1 {
					t.Fatalf("%s: %d verifications, %v", m.To, len(vs), err)
				}
				v := vs[0]
				if v.Err != nil || v.Domain != "shop.example" {
					t.Errorf("%s: signature of %q does not verify: %v", m.To, v.Domain, v.Err)
				}
				signed := map[string]bool{}
				for _, h := range v.HeaderKeys {
					signed[strings.ToLower(h)] = true
				}
				for _, h := range []string{"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} {
					if !signed[h] {
						t.Errorf("%s: h= (%v) does not cover %s", m.To, v.HeaderKeys, h)
					}
				}
				checkHeaders(t, m, parseMessage(t, m.Data), map[string]bool{})

				tampered := bytes.Replace(m.Data, []byte("List-Unsubscribe: <https://optin.shop.example/u/"),
					[]byte("List-Unsubscribe: <https://evil.example.org/u/"), 1)
				vs, err = dkim.VerifyWithOptions(bytes.NewReader(tampered), &dkim.VerifyOptions{LookupTXT: lookup})
				if err != nil || len(vs) != 1 || vs[0].Err == nil {
					t.Errorf("%s: a changed List-Unsubscribe still verifies (%v)", m.To, err)
				}
			}
		})
	}
}
