package invite

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// The rendered text and HTML of each default language, invitation and
// reminder, against reviewed golden files (go test -update rewrites them).
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
			var text, html bytes.Buffer
			rc := Recipient{InvitationID: 1, Email: "x@example.org", FirstName: "Zoë <&>", Language: lang,
				Token: "TOKEN0123456789abcdefghijklmnopq", Reminder: rem, ExpiresAt: exp}
			if err := r.bodies(rc, lang, &text, &html); err != nil {
				t.Fatal(err)
			}
			kind := map[int]string{0: "invite", 1: "reminder"}[rem]
			for ext, got := range map[string][]byte{"txt": text.Bytes(), "html": html.Bytes()} {
				file := filepath.Join("testdata", "golden", lang+"-"+kind+"."+ext)
				if *update {
					os.MkdirAll(filepath.Dir(file), 0o755)
					if err := os.WriteFile(file, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the golden file (go test -update after review):\n%s", file, got)
				}
			}
		}
	}
}
