package invite

import (
	"bytes"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// qpAppend, in pieces as the renderer joins them (literals encoded once
// from column 0, values encoded at the column where they land), decodes to
// its input with the standard library's reader and keeps every line within
// 76 characters.
func TestQuotedPrintableRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", " ", "\t", "\n", "\r\n", "=", ".", "ü", "€", "\x00", "\r", "~", "<", strings.Repeat("x", 80)}
	random := func() string {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for i := range 3000 {
		var parts []string
		var enc []byte
		col := 0
		n := 1 + 2*rng.IntN(4) // literal, value, literal, ...
		for k := range n {
			p := random()
			parts = append(parts, p)
			if k%2 == 1 {
				enc, col = qpValue(enc, p, col)
				continue
			}
			lit, _ := qpAppend(nil, p, 0, k == n-1)
			pc := newPiece(string(lit), slotNone)
			if col > 0 && col+pc.first > qpMaxLine {
				enc = append(enc, qpSoftBreak...)
				col = 0
			}
			enc = append(enc, lit...)
			if pc.end >= 0 {
				col = pc.end
			} else {
				col += len(lit)
			}
		}
		got, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(enc)))
		// Line ends are normalised piece by piece (a lone CR ending one piece
		// does not pair with an LF starting the next).
		var want string
		for _, p := range parts {
			want += strings.ReplaceAll(strings.ReplaceAll(p, "\r\n", "\n"), "\n", "\r\n")
		}
		if err != nil || string(got) != want {
			t.Fatalf("case %d: %q encoded as %q decodes to %q (%v)", i, parts, enc, got, err)
		}
		for _, l := range bytes.Split(enc, []byte("\r\n")) {
			if len(l) > 76 {
				t.Fatalf("case %d: line of %d: %q", i, len(l), l)
			}
		}
	}
}

// Templates that use the per-recipient values in ways splicing cannot
// reproduce (a comparison, a format, the name in a URL or an unquoted
// attribute) are rendered per recipient, and the message is still exactly
// what the templates give.
func TestCustomTemplatesThatCannotBeSplicedRenderPerRecipient(t *testing.T) {
	cases := map[string]struct {
		text, html string
		spliced    bool
	}{
		"plain": {`{{if .FirstName}}Hi {{.FirstName}}{{end}} {{.ConfirmURL}} {{.ExpiresOn}}`,
			`<p title="{{.FirstName}}">Hi {{.FirstName}} <a href="{{.ConfirmURL}}">{{.UnsubscribeURL}}</a></p>`, true},
		"comparison": {`{{if eq .FirstName "Bob"}}Bob!{{end}}{{.ConfirmURL}}`, `<p>{{.FirstName}}</p>`, false},
		"printf":     {`{{printf "%q" .FirstName}} {{.ConfirmURL}}`, `<p>x</p>`, false},
		"with":       {`{{with .FirstName}}{{.}}{{end}} {{.ConfirmURL}}`, `<p>x</p>`, false},
		"dollar":     {`{{range .Interests}}{{$.FirstName}}{{end}} {{.ConfirmURL}}`, `<p>x</p>`, false},
		"url":        {`{{.ConfirmURL}}`, `<a href="https://x.example/?n={{.FirstName}}">x</a>`, false},
		"unquoted":   {`{{.ConfirmURL}}`, `<p title={{.FirstName}}>x</p>`, false},
		"script":     {`{{.ConfirmURL}}`, `<script>var n = "{{.FirstName}}";</script>`, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "en.txt"), []byte(`{{define "subject"}}Hi from {{.Business}}{{end}}{{define "reminder_subject"}}Again{{end}}`+tc.text), 0o600)
			os.WriteFile(filepath.Join(dir, "en.html"), []byte(tc.html), 0o600)
			st := mustOpen(t)
			c := testCampaign(t, st, "custom")
			c.Settings.TemplateDir = dir
			r, err := NewRenderer(&c, testIdentity())
			if err != nil {
				t.Fatal(err)
			}
			if got := !r.msgs["en"][0][1].perRecipient; got != tc.spliced {
				t.Fatalf("spliced = %v, want %v", got, tc.spliced)
			}
			for _, first := range []string{"Bob", "Zoë <&>\"'+", ""} {
				rc := Recipient{Email: "b@example.org", FirstName: first, Language: "en", Token: "Tok-_en0123456789",
					ExpiresAt: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
				text, html, p := renderBoth(t, r, rc, "en", false)
				if crlfToLF(p.text) != text.String() || crlfToLF(p.html) != html.String() {
					t.Errorf("first name %q: message bodies\n%q\n%q\ntemplates give\n%q\n%q", first, p.text, p.html, text.String(), html.String())
				}
			}
		})
	}
}

// Long and odd first names wrap within the line limit and read back
// exactly, in both parts and in To.
func TestOddNamesSpliceExactly(t *testing.T) {
	st := mustOpen(t)
	c := testCampaign(t, st, "names")
	r, err := NewRenderer(&c, testIdentity())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{strings.Repeat("Å", 70), strings.Repeat("a ", 60) + " ", "x=y", "tab\there", "Q \"quoted\" \\ back"} {
		rc := Recipient{Email: "n@example.org", FirstName: name, Language: "de", Token: "TOKEN0123456789abcdefghijklmnopq",
			ExpiresAt: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
		m, err := r.Render(rc, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		checkLineLengths(t, m.Data)
		var text, html bytes.Buffer
		r.bodies(rc, "de", false, &text, &html)
		p := parseMessage(t, m.Data)
		if crlfToLF(p.text) != text.String() || crlfToLF(p.html) != html.String() {
			t.Errorf("name %q: bodies differ from the templates'", name)
		}
		if to, err := p.header.AddressList("To"); err != nil || len(to) != 1 || to[0].Name != strings.TrimSpace(name) {
			t.Errorf("name %q: To %v %v", name, to, err)
		}
	}
}

// BenchmarkRender is the per-recipient cost of a compiled message.
func BenchmarkRender(b *testing.B) {
	st := mustOpen(b)
	c := testCampaign(b, st, "bench")
	r, err := NewRenderer(&c, testIdentity())
	if err != nil {
		b.Fatal(err)
	}
	rc := Recipient{InvitationID: 7, Email: "p000001@example.org", FirstName: "P1", Language: "en",
		Token: "TOKEN0123456789abcdefghijklmnopq", ExpiresAt: time.Now()}
	var m Message
	buf := make([]byte, 0, 16<<10)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := r.renderInto(&m, buf[:0], rc, now); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(m.Data)))
}

// A name with a line break (CRM exports have them) cannot inject a header:
// To is encoded, and the message keeps exactly one recipient.
func TestNameCannotInjectHeaders(t *testing.T) {
	st := mustOpen(t)
	c := testCampaign(t, st, "inject")
	r, err := NewRenderer(&c, testIdentity())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Eve\r\nBcc: victim@example.net", "Eve\nBcc: victim@example.net", "Eve\"\r\n <x@example.net>"} {
		m, err := r.Render(Recipient{Email: "eve@example.org", FirstName: name, Language: "en", Token: "TOKEN0123456789abcdefghijklmnopq"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
		if bytes.Contains(head, []byte("\nBcc:")) || bytes.Contains(head, []byte("victim")) && !bytes.Contains(head, []byte("=?utf-8?")) {
			t.Errorf("name %q leaks into the headers:\n%s", name, head)
		}
		p := parseMessage(t, m.Data)
		if to, err := p.header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "eve@example.org" {
			t.Errorf("name %q: To %v %v", name, to, err)
		}
		if bcc := p.header.Get("Bcc"); bcc != "" {
			t.Errorf("name %q: a Bcc header %q", name, bcc)
		}
	}
}
