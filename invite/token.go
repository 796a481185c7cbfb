package invite

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"

	"github.com/repermit/repermit/crm"
)

// NewToken returns a fresh opaque token for links (192 random bits,
// URL-safe) and the hash under which it is stored. The token itself is never
// stored.
func NewToken() (token, hash string) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken is how a token is looked up: hex SHA-256 of its text.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tokenKeyMeta is the meta key of the secret that derives invitation tokens.
const tokenKeyMeta = "invite_token_key"

// TokenKey is the per-database secret from which invitation tokens are
// derived.
//
// Why derived and not random: only the token's hash is stored, yet a resend
// after a crash and every reminder must carry the very same link as the first
// email, or a person who clicks the older email would reach a dead page. A
// token is therefore HMAC-SHA256(key, campaign id, contact id) cut to 192
// bits: without the key (32 random bytes that never leave the database) it
// is as unguessable as a random token, and with it the sender can produce
// the same link again at any time. The pair (campaign, contact) is what
// invitations are UNIQUE on, so each invitation has exactly one token, known
// before its row is written.
type TokenKey []byte

// LoadTokenKey reads the key, creating it on first use.
func LoadTokenKey(tx *crm.Tx) (TokenKey, error) {
	v, err := tx.Meta(tokenKeyMeta)
	if err != nil {
		return nil, fmt.Errorf("read token key: %w", err)
	}
	if v == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		v = hex.EncodeToString(b)
		if err := tx.SetMeta(tokenKeyMeta, v); err != nil {
			return nil, fmt.Errorf("store token key: %w", err)
		}
	}
	k, err := hex.DecodeString(v)
	if err != nil || len(k) < 16 {
		return nil, fmt.Errorf("meta %s is damaged; restore the database from a backup", tokenKeyMeta)
	}
	return k, nil
}

// Token returns the link token of the invitation of contactID in
// campaignID: 32 URL-safe characters (192 bits).
func (k TokenKey) Token(campaignID, contactID int64) string {
	m := hmac.New(sha256.New, k)
	var buf [48]byte
	b := append(buf[:0], "invitation:"...)
	b = strconv.AppendInt(b, campaignID, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, contactID, 10)
	m.Write(b)
	sum := m.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:24])
}

// tokenMaker derives tokens like TokenKey.Token, reusing one HMAC state:
// the send pipeline makes one per worker.
type tokenMaker struct {
	mac hash.Hash
	buf [sha256.Size]byte
	in  [48]byte
	out [32]byte
}

func (k TokenKey) maker() *tokenMaker { return &tokenMaker{mac: hmac.New(sha256.New, k)} }

// token is TokenKey.Token(campaignID, contactID).
func (t *tokenMaker) token(campaignID, contactID int64) string {
	b := append(t.in[:0], "invitation:"...)
	b = strconv.AppendInt(b, campaignID, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, contactID, 10)
	t.mac.Reset()
	t.mac.Write(b)
	sum := t.mac.Sum(t.buf[:0])
	base64.RawURLEncoding.Encode(t.out[:], sum[:24])
	return string(t.out[:])
}
