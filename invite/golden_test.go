package invite

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// The rendered text and HTML of each default language, invitation and
// reminder, against reviewed golden files (go test -update rewrites them).
// Both ways of rendering must give them: the compiled message (what is
// sent, decoded from the wire form) and the templates executed directly.
func TestGoldenBodies(t *testing.T) {
	st := mustOpen(t)
	c := testCampaign(t, st, "golden")
	r, err := NewRenderer(&c, testIdentity())
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2026, 4, 30, 12, 0, 0, 0, time.UTC)
	for _, lang := range []string{"en", "de"} {
		for _, rem := range []int{0, 1} {
			if r.msgs[lang][rem][1].perRecipient {
				t.Errorf("%s: the default templates are rendered per recipient, not spliced", lang)
			}
			rc := Recipient{InvitationID: 1, Email: "x@example.org", FirstName: "Zoë <&>", Language: lang,
				Token: "TOKEN0123456789abcdefghijklmnopq", Reminder: rem, ExpiresAt: exp}
			text, html, p := renderBoth(t, r, rc, lang, rem == 1)
			kind := map[int]string{0: "invite", 1: "reminder"}[rem]
			for _, g := range []struct {
				ext, how string
				got      []byte
			}{
				{"txt", "templates", text.Bytes()}, {"html", "templates", html.Bytes()},
				{"txt", "sent message", []byte(crlfToLF(p.text))}, {"html", "sent message", []byte(crlfToLF(p.html))},
			} {
				file := filepath.Join("testdata", "golden", lang+"-"+kind+"."+g.ext)
				if *update && g.how == "templates" {
					os.MkdirAll(filepath.Dir(file), 0o755)
					if err := os.WriteFile(file, g.got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(g.got, want) {
					t.Errorf("%s (%s) differs from the golden file (go test -update after review):\n%s", file, g.how, g.got)
				}
			}
		}
	}
}

func crlfToLF(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// checkLineLengths: RFC 5322 allows 998 characters a line; quoted-printable
// keeps the bodies' lines within 76.
// renderBoth renders rc's bodies straight from the templates and as a
// whole sent message (checking its line lengths), for comparing the two.
func renderBoth(t *testing.T, r *Renderer, rc Recipient, lang string, reminder bool) (text, html bytes.Buffer, p parsed) {
	t.Helper()
	if err := r.bodies(rc, lang, reminder, &text, &html); err != nil {
		t.Fatal(err)
	}
	m, err := r.Render(rc, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	checkLineLengths(t, m.Data)
	return text, html, parseMessage(t, m.Data)
}

func checkLineLengths(t *testing.T, data []byte) {
	t.Helper()
	head, body, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	for _, l := range bytes.Split(head, []byte("\r\n")) {
		if len(l) > 998 {
			t.Errorf("header line of %d characters", len(l))
		}
	}
	for _, l := range bytes.Split(body, []byte("\r\n")) {
		if len(l) > 76 {
			t.Errorf("body line of %d characters: %q", len(l), l)
		}
	}
	if bytes.Contains(bytes.ReplaceAll(data, []byte("\r\n"), nil), []byte("\n")) {
		t.Errorf("a bare LF in the message")
	}
}
