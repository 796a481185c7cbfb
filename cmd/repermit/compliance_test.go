package main

import (
	"bufio"
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

// seedCompliance writes a small store: a statement, three people who
// confirmed WhatsApp through a campaign's invitations, one who was only
// invited, and the campaign itself.
func seedCompliance(t *testing.T, db string) {
	t.Helper()
	ctx := context.Background()
	st := openTestStore(t, db)
	sent := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Second)
	err := st.Update(ctx, func(tx *crm.Tx) error {
		stmt, err := tx.SaveStatement(crm.Statement{Channel: crm.ChannelWhatsApp, Version: "whatsapp-v1", Language: "en",
			Text: "I agree that Example Coffee Roasters may send me messages on WhatsApp."})
		if err != nil {
			return err
		}
		res, err := tx.Exec(`INSERT INTO campaigns (name, settings, statement_version, expiry_seconds, created_at)
			VALUES ('spring', '{"interests":[{"name":"offers"},{"name":"recipes"}]}', 'whatsapp-v1', 2592000, ?)`, crm.FormatTime(sent))
		if err != nil {
			return err
		}
		campaign, _ := res.LastInsertId()
		people := []struct {
			email, phone string
			confirm      bool
		}{
			{"anna@example.com", "+4915123456789", true},
			{"ben@example.com", "+4915123456790", true},
			{"cleo@example.com", "+33612345678", true},
			{"dan@example.com", "", false},
		}
		for i, p := range people {
			id, _, err := tx.UpsertContact(crm.ContactInput{Email: p.email, Phone: p.phone, Language: "en"})
			if err != nil {
				return err
			}
			if err := tx.AppendEvent(&crm.Event{ContactID: id, Channel: crm.ChannelEmail, Action: crm.ActionGranted,
				Method: "import:test", At: sent.AddDate(-1, 0, 0)}); err != nil {
				return err
			}
			response, responded := "", ""
			if p.confirm {
				at := sent.Add(time.Duration(i+1) * time.Hour)
				response, responded = "confirmed", crm.FormatTime(at)
				if err := tx.AppendEvent(&crm.Event{ContactID: id, Channel: crm.ChannelWhatsApp, Action: crm.ActionConfirmed,
					At: at, Method: "invite:confirm-page", IP: "198.51.100.7", UserAgent: "Mozilla/5.0", Campaign: "spring",
					InvitationID: int64(i + 1), StatementVersion: stmt.Version, StatementSHA256: stmt.SHA256,
					Evidence: map[string]string{"interests": "offers", "statement_language": "en"}}); err != nil {
					return err
				}
				if err := tx.SetInterests(id, []string{"offers"}); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(`INSERT INTO invitations (campaign_id, contact_id, token_hash, status, sent_at, expires_at,
				response, responded_at, created_at) VALUES (?, ?, ?, 'sent', ?, ?, ?, ?, ?)`, campaign, id, "tok"+p.email,
				crm.FormatTime(sent), crm.FormatTime(sent.AddDate(0, 0, 30)), response, responded, crm.FormatTime(sent)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOptoutImportCLI(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "repermit.db")
	seedCompliance(t, db)
	stops := filepath.Join(dir, "stops.csv")
	replied := time.Now().UTC().Add(-time.Hour).Format("2006-01-02 15:04")
	os.WriteFile(stops, []byte("Telefon;Zeit\n0151 23456789;"+replied+"\n+49 151 99999999;"+replied+"\nkaputt;"+replied+"\n"), 0o600)

	code, out, errOut := runCLI(t, "--db", db, "optout", "import", stops, "--default-region", "DE", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	m := decodeOneJSON(t, out)
	for k, want := range map[string]float64{"rows": 3, "matched": 1, "withdrawn": 1, "unmatched": 1, "rejected": 1} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v (%s)", k, m[k], want, out)
		}
	}
	if strings.Contains(out, "99999999") {
		t.Error("the summary prints a whole phone number")
	}
	// Again: nothing new.
	code, out, _ = runCLI(t, "--db", db, "optout", "import", "--json", "--default-region=DE", stops)
	if m := decodeOneJSON(t, out); code != 0 || m["withdrawn"] != 0.0 || m["matched"] != 1.0 {
		t.Fatalf("re-run: exit %d, %s", code, out)
	}
	// The text form lists the lines to check.
	code, out, _ = runCLI(t, "--db", db, "optout", "import", stops, "--default-region", "DE")
	if code != 0 || !strings.Contains(out, "3 rows") || !strings.Contains(out, "line") || !strings.Contains(out, "no contact has this number") {
		t.Fatalf("text summary: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "--db", db, "contacts", "show", "--json", "anna@example.com")
	if m := decodeOneJSON(t, out); code != 0 || m["consent"].(map[string]any)["whatsapp"] != "withdrawn" {
		t.Fatalf("anna after STOP: %s", out)
	}

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no file", []string{"optout", "import"}, 2, "Try: repermit optout import"},
		{"two files", []string{"optout", "import", stops, stops}, 2, "one file"},
		{"unknown flag", []string{"optout", "import", stops, "--nope"}, 2, "Try:"},
		{"missing file", []string{"optout", "import", filepath.Join(dir, "missing.csv")}, 1, "Try:"},
	} {
		code, _, errOut := runCLI(t, append([]string{"--db", db}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.stderr) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.name, code, errOut, tc.code, tc.stderr)
		}
	}
	noPhone := filepath.Join(dir, "emails.csv")
	os.WriteFile(noPhone, []byte("email,name\nanna@example.com,Anna\n"), 0o600)
	if code, _, errOut := runCLI(t, "--db", db, "optout", "import", noPhone); code != 1 || !strings.Contains(errOut, "no phone column") {
		t.Errorf("a file without numbers: exit %d, %s", code, errOut)
	}
}

func TestConsentExportCLI(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "repermit.db")
	seedCompliance(t, db)
	pack := filepath.Join(dir, "proof.json")

	code, out, errOut := runCLI(t, "--db", db, "consent", "export", "--out", pack, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	sum := decodeOneJSON(t, out)
	if sum["events"] != 7.0 || sum["statements"] != 1.0 {
		t.Fatalf("summary = %s", out)
	}
	b, err := os.ReadFile(pack)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Format     string           `json:"format"`
		Controller map[string]any   `json:"controller"`
		Events     []map[string]any `json:"events"`
		ChainHead  struct {
			Hash string `json:"hash"`
		} `json:"chain_head"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Format != crm.ProofFormat || len(doc.Events) != 7 || doc.Controller["name"] != "Example Coffee Roasters" ||
		doc.Controller["email"] != "hello@example.com" {
		t.Fatalf("pack: format %q, %d events, controller %v", doc.Format, len(doc.Events), doc.Controller)
	}
	_, vout, _ := runCLI(t, "--db", db, "consent", "verify", "--json")
	if v := decodeOneJSON(t, vout); v["ok"] != true || sum["head_hash"] != doc.ChainHead.Hash {
		t.Fatalf("verify %s; pack head %s", vout, doc.ChainHead.Hash)
	}
	if fi, err := os.Stat(pack); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("the proof pack holds personal data but is readable by others: %v %v", fi.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".proof.json.*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// One person, to stdout.
	code, out, _ = runCLI(t, "--db", db, "consent", "export", "--contact", "ben@example.com")
	one := decodeOneJSON(t, out)
	if code != 0 || one["scope"].(map[string]any)["contact_id"] == nil || len(one["events"].([]any)) != 2 ||
		strings.Contains(out, "anna@") {
		t.Fatalf("ben's pack: exit %d\n%s", code, out)
	}

	// Receipts: one per confirmation, one per line.
	receipts := filepath.Join(dir, "receipts.jsonl")
	code, _, errOut = runCLI(t, "--db", db, "consent", "export", "--format", "receipts", "--out", receipts)
	if code != 0 || !strings.Contains(errOut, "3 consent receipts") {
		t.Fatalf("receipts: exit %d, %s", code, errOut)
	}
	f, _ := os.Open(receipts)
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r["version"] != "KI-CR-v1.1.0" || r["jurisdiction"] != "EU" {
			t.Fatalf("receipt line %d: %v %s", n+1, err, sc.Text())
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d receipts, want 3", n)
	}

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"bad format", []string{"consent", "export", "--format", "xml"}, 2, "unknown format"},
		{"json without out", []string{"consent", "export", "--json"}, 2, "--json needs --out"},
		{"unknown person", []string{"consent", "export", "--contact", "nobody@example.com"}, 1, "Try:"},
		{"argument", []string{"consent", "export", "anna@example.com"}, 2, "--contact"},
	} {
		code, _, errOut := runCLI(t, append([]string{"--db", db}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.stderr) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.name, code, errOut, tc.code, tc.stderr)
		}
	}
	if code, _, errOut := runCLI(t, "--db", filepath.Join(dir, "none.db"), "consent", "export"); code != 1 || !strings.Contains(errOut, "no database") {
		t.Errorf("no database: exit %d, %s", code, errOut)
	}
}

func TestReportCLI(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "repermit.db")
	seedCompliance(t, db)
	page := filepath.Join(dir, "report.html")

	code, out, errOut := runCLI(t, "--db", db, "report", "spring", "--json", "--html", page)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	m := decodeOneJSON(t, out)
	c := m["campaigns"].([]any)[0].(map[string]any)
	f := c["funnel"].(map[string]any)
	if c["name"] != "spring" || f["invited"] != 4.0 || f["confirmed"] != 3.0 || f["pending"] != 1.0 || c["confirmation_rate"] != 0.75 {
		t.Fatalf("report = %s", out)
	}
	for _, k := range []string{"eligible", "invited", "delivered", "failed", "visited", "confirmed", "declined", "unsubscribed", "pending", "expired"} {
		if _, ok := f[k]; !ok {
			t.Errorf("funnel lacks %s", k)
		}
	}
	html, err := os.ReadFile(page)
	if err != nil || !bytes.Contains(html, []byte("<svg")) || bytes.Contains(html, []byte("<script")) {
		t.Fatalf("the HTML report (%v) has no charts or has a script", err)
	}

	code, out, _ = runCLI(t, "--db", db, "report")
	if code != 0 || !strings.Contains(out, "Campaign spring") || !strings.Contains(out, "75.0% of delivered") {
		t.Fatalf("text report: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "--db", db, "report", "autumn"); code != 1 || !strings.Contains(errOut, "campaign list") {
		t.Errorf("unknown campaign: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "--db", db, "report", "a", "b"); code != 2 || !strings.Contains(errOut, "Try:") {
		t.Errorf("two campaigns: exit %d, %s", code, errOut)
	}
}
