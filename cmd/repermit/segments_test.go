package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
)

// seedOptins writes three contacts straight into the ledger: two confirmed
// WhatsApp (DE offers, AT recipes) and one who only has email consent.
func seedOptins(t *testing.T, db string) {
	t.Helper()
	ctx := context.Background()
	st := openTestStore(t, db)
	people := []struct {
		email, phone, country string
		interests             []string
		confirmed             bool
	}{
		{"anna@example.com", "+4915550000001", "DE", []string{"offers"}, true},
		{"ben@example.com", "+43660000002", "AT", []string{"recipes"}, true},
		{"carl@example.com", "+4915550000003", "DE", []string{"offers"}, false},
	}
	for _, p := range people {
		err := st.Update(ctx, func(tx *crm.Tx) error {
			id, _, err := tx.UpsertContact(crm.ContactInput{Email: p.email, Phone: p.phone, Country: p.country, FirstName: "X"})
			if err != nil {
				return err
			}
			if err := tx.AppendEvent(&crm.Event{ContactID: id, Channel: crm.ChannelEmail, Action: crm.ActionGranted, Method: "import:test"}); err != nil {
				return err
			}
			if p.confirmed {
				if err := tx.AppendEvent(&crm.Event{ContactID: id, Channel: crm.ChannelWhatsApp, Action: crm.ActionConfirmed,
					Method: "invite:confirm-page", At: time.Now().Add(-time.Hour)}); err != nil {
					return err
				}
			}
			return tx.SetInterests(id, p.interests)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"repermit"}, args...), strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestSegmentsCLI(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "repermit.db")
	seedOptins(t, db)

	code, out, errOut := runCLI(t, "--db", db, "segments", "create", "offers-dach", "--rule",
		"interest:offers AND (country:de OR country:AT)", "--json")
	if code != exitOK {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	var created struct {
		Name, Rule, Canonical string
		Count                 int
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Count != 1 ||
		created.Canonical != "interest:offers AND (country:de OR country:AT)" {
		t.Errorf("create --json: %q (%v)", out, err)
	}

	code, _, errOut = runCLI(t, "--db", db, "segments", "create", "bad", "--rule", "interest:offers AND")
	if code != exitUsage || !strings.Contains(errOut, "position 20") || !strings.Contains(errOut, "Try:") {
		t.Errorf("a bad rule: exit %d, stderr %q; want 2 and the position", code, errOut)
	}
	code, _, errOut = runCLI(t, "--db", db, "segments", "create", "offers-dach", "--rule", "interest:offers")
	if code != exitFailed || !strings.Contains(errOut, "--replace") {
		t.Errorf("a second create: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := runCLI(t, "--db", db, "segments", "create", "norule"); code != exitUsage {
		t.Errorf("create without --rule: exit %d, want 2", code)
	}

	code, out, errOut = runCLI(t, "--db", db, "segments", "list", "--json")
	var list struct {
		Segments []struct {
			Name  string
			Count int
		}
	}
	if code != exitOK || json.Unmarshal([]byte(out), &list) != nil || len(list.Segments) != 1 || list.Segments[0].Count != 1 {
		t.Errorf("list: exit %d %q %q", code, out, errOut)
	}

	code, out, errOut = runCLI(t, "--db", db, "segments", "show", "offers-dach", "--json")
	var shown struct {
		Count   int
		Samples []struct{ Phone string }
	}
	if code != exitOK || json.Unmarshal([]byte(out), &shown) != nil || shown.Count != 1 || len(shown.Samples) != 1 ||
		strings.Contains(out, "+4915550000001") || strings.Contains(out, "anna@") {
		t.Errorf("show: exit %d %q %q (the phone must be masked, no email)", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "--db", db, "segments", "show", "nope"); code != exitFailed || !strings.Contains(errOut, "segments list") {
		t.Errorf("show of an unknown segment: exit %d %q", code, errOut)
	}

	file := filepath.Join(dir, "out.csv")
	code, out, errOut = runCLI(t, "--db", db, "segments", "export", "offers-dach", "--out", file, "--json")
	var exported struct {
		Rows     int
		Manifest string
		Files    []struct{ Path, SHA256 string }
	}
	if code != exitOK || json.Unmarshal([]byte(out), &exported) != nil || exported.Rows != 1 || exported.Manifest != file+".manifest.json" {
		t.Fatalf("export: exit %d %q %q", code, out, errOut)
	}
	b, err := os.ReadFile(file)
	if err != nil || !strings.HasPrefix(string(b), "phone_e164,") || !strings.Contains(string(b), "+4915550000001") ||
		strings.Contains(string(b), "+4915550000003") {
		t.Errorf("export file: %q %v", b, err)
	}

	code, out, errOut = runCLI(t, "--db", db, "segments", "export", "offers-dach", "--format", "twilio", "--out", "-")
	if code != exitOK || out != "to,first_name,last_name,language,country,interests\nwhatsapp:+4915550000001,X,,,DE,offers\n" ||
		!strings.Contains(errOut, "Exported 1 rows") {
		t.Errorf("export to stdout: exit %d stdout %q stderr %q", code, out, errOut)
	}
	for _, args := range [][]string{
		{"--format", "nope"},
		{"--out", "-", "--json"},
		{"--out", "-", "--batch-size", "250"},
		{"--format", "interakt", "--columns", "phone_e164"},
	} {
		if code, _, errOut := runCLI(t, append([]string{"--db", db, "segments", "export", "offers-dach"}, args...)...); code != exitUsage {
			t.Errorf("export %v: exit %d (%s), want 2", args, code, errOut)
		}
	}
}
