package crm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// seedProofLedger builds a small ledger: two people who confirmed WhatsApp
// (one with a hostile user agent), one who declined, one erased, one STOP.
func seedProofLedger(t *testing.T, st *Store) (anna, ben int64, annaConfirm int64) {
	t.Helper()
	ctx := context.Background()
	text := "I agree that Example Coffee may send me messages on WhatsApp about the topics I choose."
	err := st.Update(ctx, func(tx *Tx) error {
		stmt, err := tx.SaveStatement(Statement{Channel: ChannelWhatsApp, Version: "whatsapp-v1", Language: "en", Text: text})
		if err != nil {
			return err
		}
		if _, err := tx.SaveStatement(Statement{Channel: ChannelWhatsApp, Version: "whatsapp-v1", Language: "de",
			Text: "Ich bin einverstanden, dass Example Coffee mir Nachrichten über WhatsApp sendet."}); err != nil {
			return err
		}
		people := []struct {
			email, phone, whatsapp, ua string
		}{
			{"anna@example.com", "+4915123456789", ActionConfirmed, "Mozilla/5.0 <script>alert(1)</script> & \"quotes\" ü"},
			{"ben@example.com", "+4915123456790", ActionConfirmed, "Mozilla/5.0 (X11; Linux x86_64)"},
			{"cleo@example.com", "", ActionDeclined, "curl/8"},
			{"dora@example.com", "+4915123456791", ActionConfirmed, "Safari"},
		}
		for i, p := range people {
			id, _, err := tx.UpsertContact(ContactInput{Email: p.email, Phone: p.phone, FirstName: strings.Split(p.email, "@")[0], Language: "en"})
			if err != nil {
				return err
			}
			if err := tx.AppendEvent(&Event{ContactID: id, Channel: ChannelEmail, Action: ActionGranted, Method: "import:mailchimp",
				At: time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC), Evidence: map[string]string{"optin_ip": "203.0.113.9"}}); err != nil {
				return err
			}
			ev := &Event{ContactID: id, Channel: ChannelWhatsApp, Action: p.whatsapp, Method: "invite:confirm-page",
				IP: "198.51.100.7", UserAgent: p.ua, Campaign: "whatsapp-optin", InvitationID: int64(i + 1),
				StatementVersion: stmt.Version, StatementSHA256: stmt.SHA256,
				Evidence: map[string]string{"page_language": "en", "statement_language": "en"}}
			if p.whatsapp == ActionConfirmed {
				ev.Evidence["interests"] = "offers,recipes"
			}
			if err := tx.AppendEvent(ev); err != nil {
				return err
			}
			switch i {
			case 0:
				anna, annaConfirm = id, ev.ID
			case 1:
				ben = id
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Forget(ctx, "dora@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ImportOptouts(ctx, strings.NewReader("phone,time\n+4915123456790,2026-02-01T10:00:00Z\n"), OptoutOptions{}); err != nil {
		t.Fatal(err)
	}
	return anna, ben, annaConfirm
}

// packDoc is the proof pack as an auditor's program would read it.
type packDoc struct {
	Format     string            `json:"format"`
	Controller map[string]string `json:"controller"`
	Statements []struct {
		Version, Language, Text, SHA256 string
	} `json:"statements"`
	Contacts []struct {
		ID     int64  `json:"id"`
		Email  string `json:"email"`
		Erased bool   `json:"erased"`
	} `json:"contacts"`
	Events []map[string]any `json:"events"`
	Chain  []struct {
		ID       int64  `json:"id"`
		PrevHash string `json:"prev_hash"`
		Digest   string `json:"digest"`
		Hash     string `json:"hash"`
	} `json:"chain"`
	ChainHead struct {
		EventID int64  `json:"event_id"`
		Hash    string `json:"hash"`
	} `json:"chain_head"`
}

func proofSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// auditEvent checks one event the way docs/proof-pack.md tells an auditor
// to, without the crm package's own functions.
func auditEvent(t *testing.T, e map[string]any) {
	t.Helper()
	id := e["id"]
	digest, _ := e["digest"].(string)
	if e["redacted"] != true {
		canon, _ := e["canonical"].(string)
		if proofSHA(canon) != digest {
			t.Fatalf("event %v: sha256(canonical) != digest", id)
		}
		var c map[string]any
		if err := json.Unmarshal([]byte(canon), &c); err != nil {
			t.Fatalf("event %v: canonical is not JSON: %v", id, err)
		}
		for _, k := range []string{"id", "contact_id", "channel", "action", "method", "statement_sha256"} {
			if fmt.Sprint(c[k]) != fmt.Sprint(e[k]) && !(e[k] == nil && c[k] == "") {
				t.Fatalf("event %v: canonical %s = %v, event says %v", id, k, c[k], e[k])
			}
		}
		at, _ := time.Parse(time.RFC3339Nano, e["at"].(string))
		if c["at"] != at.UTC().Format("2006-01-02T15:04:05.000000Z") {
			t.Fatalf("event %v: canonical at %v, event at %v", id, c["at"], e["at"])
		}
		if ua, _ := e["user_agent"].(string); c["user_agent"] != ua {
			t.Fatalf("event %v: canonical user agent %q, event %q", id, c["user_agent"], ua)
		}
	} else if _, ok := e["canonical"]; ok {
		t.Fatalf("redacted event %v still carries its canonical text", id)
	}
	if proofSHA(e["prev_hash"].(string)+"\n"+digest) != e["hash"] {
		t.Fatalf("event %v: hash != sha256(prev_hash + \\n + digest)", id)
	}
}

func TestProofPackWholeLedgerChecksIndependently(t *testing.T) {
	ctx := context.Background()
	st := openStopStore(t)
	seedProofLedger(t, st)
	var buf bytes.Buffer
	ctl := Controller{Name: "Example Coffee", Address: "Example Street 1, Berlin", Country: "DE", Jurisdiction: "EU", PrivacyURL: "https://example.com/privacy"}
	sum, err := st.WriteProofPack(ctx, &buf, ProofOptions{Controller: ctl})
	if err != nil {
		t.Fatal(err)
	}
	var doc packDoc
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("the pack is not one JSON object: %v\n%s", err, buf.String())
	}
	if doc.Format != ProofFormat || doc.Controller["name"] != "Example Coffee" {
		t.Fatalf("format %q controller %v", doc.Format, doc.Controller)
	}
	var total int64
	if err := st.DB().QueryRow(`SELECT count(*) FROM consent_events`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if int64(len(doc.Events)) != total || sum.Events != total || len(doc.Contacts) != 4 || len(doc.Statements) != 2 {
		t.Fatalf("pack holds %d events (summary %d) of %d, %d contacts, %d statements", len(doc.Events), sum.Events, total,
			len(doc.Contacts), len(doc.Statements))
	}
	stmts := map[string]bool{}
	for _, s := range doc.Statements {
		if proofSHA(s.Text) != s.SHA256 {
			t.Fatalf("statement %s/%s: sha256(text) != sha256", s.Version, s.Language)
		}
		stmts[s.SHA256] = true
	}
	prev := strings.Repeat("0", 64)
	redacted := 0
	for i, e := range doc.Events {
		auditEvent(t, e)
		if e["prev_hash"] != prev {
			t.Fatalf("event %d does not link to the one before", i+1)
		}
		prev = e["hash"].(string)
		if s, _ := e["statement_sha256"].(string); s != "" && !stmts[s] {
			t.Fatalf("event %v shows a statement the pack does not hold", e["id"])
		}
		if e["redacted"] == true {
			redacted++
		}
	}
	if redacted != 2 {
		t.Fatalf("%d redacted events, want dora's 2", redacted)
	}
	if prev != doc.ChainHead.Hash || doc.ChainHead.EventID != total || sum.Head != prev {
		t.Fatalf("the chain ends at %s but the pack's head is %d:%s", prev, doc.ChainHead.EventID, doc.ChainHead.Hash)
	}
	if res, err := st.Verify(ctx); err != nil || res.Head != doc.ChainHead.Hash {
		t.Fatalf("consent verify head %q, pack head %q (%v)", res.Head, doc.ChainHead.Hash, err)
	}
	for _, c := range doc.Contacts {
		if c.Erased && c.Email != "" {
			t.Fatal("an erased contact's address is in the pack")
		}
	}
	if bytes.Contains(buf.Bytes(), []byte("dora@")) {
		t.Fatal("the erased person's address is in the pack")
	}
}

func TestProofPackOneContactLinksToHead(t *testing.T) {
	ctx := context.Background()
	st := openStopStore(t)
	anna, _, _ := seedProofLedger(t, st)
	var buf bytes.Buffer
	if _, err := st.WriteProofPack(ctx, &buf, ProofOptions{ContactID: anna, Controller: Controller{Name: "Example Coffee"}}); err != nil {
		t.Fatal(err)
	}
	var doc packDoc
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Contacts) != 1 || doc.Contacts[0].Email != "anna@example.com" || len(doc.Events) != 2 {
		t.Fatalf("contacts %+v, %d events; want only anna's 2", doc.Contacts, len(doc.Events))
	}
	if bytes.Contains(buf.Bytes(), []byte("ben@")) || bytes.Contains(buf.Bytes(), []byte("curl/8")) {
		t.Fatal("another person's data is in anna's pack")
	}
	links := map[int64]int{}
	for i, l := range doc.Chain {
		links[l.ID] = i
		if proofSHA(l.PrevHash+"\n"+l.Digest) != l.Hash {
			t.Fatalf("chain link %d: hash mismatch", l.ID)
		}
		if i > 0 && l.PrevHash != doc.Chain[i-1].Hash {
			t.Fatalf("chain link %d does not follow %d", l.ID, doc.Chain[i-1].ID)
		}
	}
	for _, e := range doc.Events {
		auditEvent(t, e)
		i, ok := links[int64(e["id"].(float64))]
		if !ok || doc.Chain[i].Hash != e["hash"] || doc.Chain[i].Digest != e["digest"] {
			t.Fatalf("event %v is not on the chain", e["id"])
		}
	}
	if last := doc.Chain[len(doc.Chain)-1]; last.Hash != doc.ChainHead.Hash || last.ID != doc.ChainHead.EventID {
		t.Fatalf("the chain ends at %d, the head is %d", last.ID, doc.ChainHead.EventID)
	}
}

func TestReceipts(t *testing.T) {
	ctx := context.Background()
	st := openStopStore(t)
	anna, _, annaConfirm := seedProofLedger(t, st)
	opt := ReceiptOptions{
		Controller: Controller{Name: "Example Coffee", Address: "Example Street 1, Berlin", Country: "DE", Jurisdiction: "EU",
			Email: "hello@example.com", PrivacyURL: "https://example.com/privacy"},
		InterestLabels: map[string]map[string]string{"offers": {"en": "Offers and discounts"}},
		RefreshMonths:  24,
	}
	var buf bytes.Buffer
	sum, err := st.WriteReceipts(ctx, &buf, 0, opt)
	if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("receipt line is not JSON: %v", err)
		}
		lines = append(lines, m)
	}
	// anna and ben confirmed (ben's STOP came later; his confirmation still
	// happened); cleo declined; dora was erased.
	if len(lines) != 2 || sum.Receipts != 2 {
		t.Fatalf("%d receipts (summary %d), want 2", len(lines), sum.Receipts)
	}
	r := lines[0]
	for _, k := range []string{"version", "jurisdiction", "consentTimestamp", "collectionMethod", "consentReceiptID", "language",
		"piiPrincipalId", "piiControllers", "policyUrl", "services", "sensitive", "spiCat"} {
		if _, ok := r[k]; !ok {
			t.Errorf("receipt lacks %s", k)
		}
	}
	if r["version"] != "KI-CR-v1.1.0" || r["jurisdiction"] != "EU" || r["piiPrincipalId"] != "anna@example.com" ||
		r["policyUrl"] != "https://example.com/privacy" || r["sensitive"] != false || r["language"] != "en" {
		t.Fatalf("receipt = %v", r)
	}
	if _, ok := r["consentTimestamp"].(float64); !ok {
		t.Fatalf("consentTimestamp %v is not a number of seconds", r["consentTimestamp"])
	}
	services, _ := json.Marshal(r["services"])
	if !strings.Contains(string(services), "Offers and discounts") || !strings.Contains(string(services), "recipes") ||
		!strings.Contains(string(services), "EXPLICIT") || !strings.Contains(string(services), "24 months") {
		t.Fatalf("services = %s", services)
	}

	// The page's receipt for anna's event is the exported one.
	one, err := st.ReceiptFor(ctx, annaConfirm, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(one)
	var m map[string]any
	json.Unmarshal(b, &m)
	if fmt.Sprint(m) != fmt.Sprint(r) {
		t.Fatalf("ReceiptFor differs from the export:\n%v\n%v", m, r)
	}
	if one.RepermitEvidence.StatementText == "" || proofSHA(one.RepermitEvidence.StatementText) != one.RepermitEvidence.StatementSHA256 {
		t.Fatal("the receipt does not carry the exact statement shown")
	}
	if _, err := st.ReceiptFor(ctx, annaConfirm-1, opt); !errors.Is(err, ErrNoReceipt) {
		t.Fatalf("a receipt for an email grant: err = %v", err)
	}
	// One contact's receipts.
	buf.Reset()
	if sum, err := st.WriteReceipts(ctx, &buf, anna, opt); err != nil || sum.Receipts != 1 {
		t.Fatalf("anna's receipts: %+v, %v", sum, err)
	}
	if _, err := io.ReadAll(&buf); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkWriteProofPack measures streaming the whole ledger out.
func BenchmarkWriteProofPack(b *testing.B) {
	ctx := context.Background()
	st := openStopStore(b)
	const people = 5000
	err := st.Update(ctx, func(tx *Tx) error {
		for i := range people {
			id, _, err := tx.UpsertContact(ContactInput{Email: fmt.Sprintf("p%d@example.com", i)})
			if err != nil {
				return err
			}
			for _, a := range []string{ActionGranted, ActionConfirmed} {
				ch := ChannelEmail
				if a == ActionConfirmed {
					ch = ChannelWhatsApp
				}
				if err := tx.AppendEvent(&Event{ContactID: id, Channel: ch, Action: a, Method: "bench", IP: "198.51.100.1",
					UserAgent: "Mozilla/5.0", Evidence: map[string]string{"interests": "offers"}}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := st.WriteProofPack(ctx, io.Discard, ProofOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*people*2)/b.Elapsed().Seconds(), "events/s")
}

// The confirmation page shows the person the receipt of the confirmation it
// just recorded (Store.ReceiptFor reads the event, contact and statement;
// BuildReceipt is the same without the database).
func ExampleBuildReceipt() {
	e := Event{ID: 42, ContactID: 7, Channel: ChannelWhatsApp, Action: ActionConfirmed, Method: "invite:confirm-page",
		At: time.Date(2026, 2, 1, 10, 30, 0, 0, time.UTC), Hash: strings.Repeat("ab", 32),
		Evidence: map[string]string{"interests": "offers", "statement_language": "en"}}
	c := Contact{ID: 7, Email: "anna@example.com", Phone: "+4915123456789"}
	r, err := BuildReceipt(e, c, Statement{}, ReceiptOptions{
		Controller:     Controller{Name: "Example Coffee", Jurisdiction: "EU", PrivacyURL: "https://example.com/privacy"},
		InterestLabels: map[string]map[string]string{"offers": {"en": "Offers and discounts"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Version, r.Jurisdiction, r.ConsentTimestamp, r.PIIPrincipalID)
	fmt.Println(r.ConsentReceiptID)
	for _, p := range r.Services[0].Purposes {
		fmt.Println(p.Purpose)
	}
	// Output:
	// KI-CR-v1.1.0 EU 1769941800 anna@example.com
	// a9be36df-12e7-8b4c-affe-b320b393c96e
	// Messages from Example Coffee on WhatsApp to the number the person gave or confirmed
	// WhatsApp messages about: Offers and discounts
}
