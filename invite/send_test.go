package invite

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/repermit/repermit/crm"
)

// parsed is a received message read back with go-message.
type parsed struct {
	header gomail.Header
	text   string
	html   string
}

func parseMessage(t *testing.T, data []byte) parsed {
	t.Helper()
	mr, err := gomail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse message: %v", err)
	}
	p := parsed{header: mr.Header}
	if ct, _, _ := mr.Header.ContentType(); ct != "multipart/alternative" {
		t.Fatalf("Content-Type %q, want multipart/alternative", ct)
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part.Body)
		h, ok := part.Header.(*gomail.InlineHeader)
		if !ok {
			t.Fatalf("part %T is not inline", part.Header)
		}
		ct, params, _ := h.ContentType()
		if params["charset"] != "utf-8" {
			t.Errorf("part %s charset %q", ct, params["charset"])
		}
		switch ct {
		case "text/plain":
			p.text = string(b)
		case "text/html":
			p.html = string(b)
		default:
			t.Errorf("unexpected part %s", ct)
		}
	}
	return p
}

var tokenRe = regexp.MustCompile(`https://optin\.shop\.example/c/([A-Za-z0-9_-]+)`)

func allContacts() []seedContact {
	return []seedContact{
		{Email: "anna@example.org", First: "Anna", Lang: "en"},
		{Email: "bernd@example.de", First: "Bernd", Lang: "de"},
		{Email: "chloe@example.fr", First: "Chloé", Lang: "fr"},
		{Email: "dieter@example.at", First: "Dieter", Lang: "de-AT"},
		{Email: "nofirst@example.org", Lang: "en"},
		{Email: "waexpired@example.org", First: "Eve", Lang: "en", WhatsApp: crm.ActionExpired},
		// ineligible
		{Email: "noconsent@example.org", NoConsent: true},
		{Email: "withdrawn@example.org", Withdrawn: true},
		{Email: "unsub@example.org", Suppress: crm.ReasonUnsubscribed},
		{Email: "bounced@example.org", Suppress: crm.ReasonBounced},
		{Email: "complained@example.org", Suppress: crm.ReasonComplained},
		{Email: "confirmed@example.org", WhatsApp: crm.ActionConfirmed},
		{Email: "declined@example.org", WhatsApp: crm.ActionDeclined},
		{Email: "wawithdrawn@example.org", WhatsApp: crm.ActionWithdrawn},
		{Email: "erased@example.org"},
	}
}

var eligibleLang = map[string]string{
	"anna@example.org": "en", "bernd@example.de": "de", "chloe@example.fr": "en", "dieter@example.at": "de",
	"nofirst@example.org": "en", "waexpired@example.org": "en",
}

func TestSendEveryEligibleContactExactlyOnce(t *testing.T) {
	ctx := context.Background()
	st := mustOpen(t)
	seed(t, st, allContacts()...)
	if err := st.Forget(ctx, "erased@example.org"); err != nil {
		t.Fatal(err)
	}
	c := testCampaign(t, st, "spring")
	ms := startServer(t)
	var log bytes.Buffer
	res, err := Send(ctx, st, SendOptions{Campaign: "spring", Identity: testIdentity(), Transport: smtpTransport(t, ms), Progress: &log})
	if err != nil {
		t.Fatal(err)
	}
	want := SendResult{Eligible: 6, Queued: 6, Sent: 6}
	if res != want {
		t.Fatalf("result %+v, want %+v", res, want)
	}
	if strings.Contains(log.String(), "@") {
		t.Errorf("progress log carries an address:\n%s", log.String())
	}
	msgs := ms.messages()
	seen := map[string]bool{}
	ids := map[string]bool{}
	for _, m := range msgs {
		if seen[m.To] {
			t.Errorf("%s got two messages", m.To)
		}
		seen[m.To] = true
		lang, ok := eligibleLang[m.To]
		if !ok {
			t.Errorf("ineligible %s got a message", m.To)
			continue
		}
		if m.From != "hello@shop.example" {
			t.Errorf("envelope from %q", m.From)
		}
		p := parseMessage(t, m.Data)
		checkHeaders(t, m, p, ids)
		tok := checkLinks(t, p)
		// The token in the links is the one whose hash the invitation holds.
		var contactEmail string
		err := st.DB().QueryRow(`SELECT c.email FROM invitations i JOIN contacts c ON c.id = i.contact_id
			WHERE i.token_hash = ? AND i.campaign_id = ? AND i.status = 'sent'`, HashToken(tok), c.ID).Scan(&contactEmail)
		if err != nil || contactEmail != m.To {
			t.Errorf("%s: token does not lead back to its invitation (%v, %q)", m.To, err, contactEmail)
		}
		if len(tok) < 22 {
			t.Errorf("token %q carries fewer than 128 bits", tok)
		}
		checkLanguage(t, m.To, lang, p)
	}
	if len(seen) != len(eligibleLang) {
		t.Errorf("%d recipients, want %d", len(seen), len(eligibleLang))
	}

	// A second send is a no-op: nobody is invited twice.
	res, err = Send(ctx, st, SendOptions{Campaign: "spring", Identity: testIdentity(), Transport: smtpTransport(t, ms)})
	if err != nil {
		t.Fatal(err)
	}
	if res != (SendResult{}) || len(ms.messages()) != 6 {
		t.Fatalf("second send: %+v, %d messages", res, len(ms.messages()))
	}
	f, err := Status(ctx, st, "spring")
	if err != nil {
		t.Fatal(err)
	}
	if f.Invited != 6 || f.Sent != 6 || f.Pending != 6 {
		t.Errorf("funnel %+v", f)
	}
}

func checkHeaders(t *testing.T, m received, p parsed, ids map[string]bool) {
	t.Helper()
	h := p.header
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "hello@shop.example" || from[0].Name != "Example Roasters" {
		t.Errorf("From %v %v", from, err)
	}
	if rt, _ := h.AddressList("Reply-To"); len(rt) != 1 || rt[0].Address != "care@shop.example" {
		t.Errorf("Reply-To %v", rt)
	}
	if to, _ := h.AddressList("To"); len(to) != 1 || to[0].Address != m.To {
		t.Errorf("To %v, want %s", to, m.To)
	}
	if d, err := h.Date(); err != nil || time.Since(d) > time.Hour {
		t.Errorf("Date %v %v", d, err)
	}
	id, err := h.MessageID()
	if err != nil || !strings.HasSuffix(id, "@shop.example") || ids[id] {
		t.Errorf("Message-ID %q %v (unique: %v)", id, err, !ids[id])
	}
	ids[id] = true
	if s, _ := h.Subject(); !strings.Contains(s, "Example Roasters") || !strings.Contains(s, "WhatsApp") {
		t.Errorf("Subject %q", s)
	}
	// List-Unsubscribe must be one unfolded line: read the raw header.
	raw := string(m.Data[:bytes.Index(m.Data, []byte("\r\n\r\n"))])
	lu := regexp.MustCompile(`(?m)^List-Unsubscribe: <https://optin\.shop\.example/u/([A-Za-z0-9_-]+)>\r$`).FindStringSubmatch(raw)
	if lu == nil {
		t.Errorf("no unfolded List-Unsubscribe header in\n%s", raw)
	}
	if !regexp.MustCompile(`(?m)^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r$`).MatchString(raw) {
		t.Errorf("no List-Unsubscribe-Post header")
	}
	if h.Get("Mime-Version") != "1.0" {
		t.Errorf("MIME-Version %q", h.Get("Mime-Version"))
	}
	if lu != nil && !strings.Contains(p.text, "/u/"+lu[1]) {
		t.Errorf("List-Unsubscribe token differs from the body's")
	}
}

// checkLinks returns the token and checks both parts carry every link.
func checkLinks(t *testing.T, p parsed) string {
	t.Helper()
	mt := tokenRe.FindStringSubmatch(p.text)
	if mt == nil {
		t.Fatalf("no confirm link in text:\n%s", p.text)
	}
	tok := mt[1]
	for _, part := range []struct{ name, body string }{{"text", p.text}, {"html", p.html}} {
		for _, want := range []string{"https://optin.shop.example/c/" + tok, "https://optin.shop.example/u/" + tok,
			"Example Roasters", "Example Street 1, 10115 Berlin", "https://shop.example/privacy"} {
			if !strings.Contains(part.body, want) {
				t.Errorf("%s part lacks %q", part.name, want)
			}
		}
		if strings.Contains(part.body, "@example") {
			t.Errorf("%s part carries the address", part.name)
		}
	}
	if !strings.Contains(p.html, `href="https://optin.shop.example/c/`+tok+`"`) {
		t.Errorf("html has no confirm button link")
	}
	if strings.Contains(p.html, "<img") || strings.Contains(p.html, "<link") || strings.Contains(p.html, "<script") {
		t.Errorf("html loads remote assets or scripts")
	}
	return tok
}

func checkLanguage(t *testing.T, to, lang string, p parsed) {
	t.Helper()
	greeting := map[string]string{"en": "Hello", "de": "Hallo"}[lang]
	if !strings.HasPrefix(p.text, greeting) {
		t.Errorf("%s: text starts %q, want %s", to, p.text[:min(20, len(p.text))], lang)
	}
	if !strings.Contains(p.html, `<html lang="`+lang+`">`) {
		t.Errorf("%s: html not in %s", to, lang)
	}
	if to == "chloe@example.fr" && !strings.Contains(p.text, "Hello Chloé,") {
		t.Errorf("first name not in greeting: %q", p.text[:30])
	}
	if lang == "de" && !strings.Contains(p.text, "Angebote") {
		t.Errorf("%s: German interest label missing", to)
	}
}

func TestFaultsAreRetriedFailedOrSuppressed(t *testing.T) {
	// The same faults whether the transactions are pipelined (go-smtp's
	// server offers PIPELINING and CHUNKING), pipelined with DATA (a
	// server without CHUNKING) or go one command at a time (a server that
	// offers neither).
	t.Run("pipelined", func(t *testing.T) { testFaults(t, func(*SMTP) {}) })
	t.Run("pipelined-data", func(t *testing.T) { testFaults(t, func(s *SMTP) { s.noChunking = true }) })
	t.Run("lockstep", func(t *testing.T) { testFaults(t, func(s *SMTP) { s.lockstep = true }) })
}

func testFaults(t *testing.T, path func(*SMTP)) {
	ctx := context.Background()
	st := mustOpen(t)
	seed(t, st,
		seedContact{Email: "ok@example.org", Lang: "en"},
		seedContact{Email: "greylisted@example.org", Lang: "en"},
		seedContact{Email: "nouser@example.org", Lang: "en"},
		seedContact{Email: "policy@example.org", Lang: "en"},
		seedContact{Email: "dropped@example.org", Lang: "en"},
	)
	testCampaign(t, st, "faults")
	ms := startServer(t)
	connects, greylisted, dropped := 0, 0, 0
	var mu sync.Mutex
	ms.setFault(func(stage, rcpt string) error {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case stage == "connect":
			connects++
			if connects <= 2 {
				return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "too busy, try later"}
			}
		case rcpt == "greylisted@example.org":
			greylisted++
			if greylisted == 1 {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}
			}
		case rcpt == "nouser@example.org":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<nouser@example.org>: no such user"}
		case rcpt == "policy@example.org":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "rejected by policy"}
		}
		return nil
	})
	ms.dropData = func(rcpt string) bool {
		mu.Lock()
		defer mu.Unlock()
		if rcpt == "dropped@example.org" {
			dropped++
			return dropped == 1
		}
		return false
	}
	var log bytes.Buffer
	tr := smtpTransport(t, ms)
	path(tr)
	res, err := Send(ctx, st, SendOptions{Campaign: "faults", Identity: testIdentity(), Transport: tr,
		Concurrency: 2, RetryBase: 5 * time.Millisecond, Progress: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.Sent != 3 || res.Failed != 2 || res.Bounced != 1 || res.Skipped != 0 {
		t.Fatalf("result %+v\n%s", res, log.String())
	}
	if strings.Contains(log.String(), "@example.org") {
		t.Errorf("log carries an address:\n%s", log.String())
	}
	got := map[string]int{}
	for _, m := range ms.messages() {
		got[m.To]++
	}
	for _, a := range []string{"ok@example.org", "greylisted@example.org", "dropped@example.org"} {
		if got[a] != 1 {
			t.Errorf("%s received %d messages, want 1", a, got[a])
		}
	}
	status := func(email string) string {
		var s string
		st.DB().QueryRow(`SELECT i.status FROM invitations i JOIN contacts c ON c.id = i.contact_id WHERE c.email = ?`, email).Scan(&s)
		return s
	}
	if status("nouser@example.org") != "failed" || status("policy@example.org") != "failed" {
		t.Errorf("statuses %s %s", status("nouser@example.org"), status("policy@example.org"))
	}
	// The hard bounce is suppressed; the policy refusal is not.
	c, _ := st.ContactByEmail(ctx, "nouser@example.org")
	sp, _ := st.Suppressions(ctx, c)
	if len(sp) != 1 || sp[0].Reason != crm.ReasonBounced {
		t.Errorf("bounce suppressions %+v", sp)
	}
	c, _ = st.ContactByEmail(ctx, "policy@example.org")
	if sp, _ := st.Suppressions(ctx, c); len(sp) != 0 {
		t.Errorf("policy refusal suppressed: %+v", sp)
	}
}

func TestServerDownStopsWithAdviceAndLosesNothing(t *testing.T) {
	ctx := context.Background()
	st := mustOpen(t)
	for _, e := range []string{"a@example.org", "b@example.org", "c@example.org"} {
		seed(t, st, seedContact{Email: e})
	}
	testCampaign(t, st, "down")
	ms := startServer(t)
	ms.setFault(func(stage, rcpt string) error {
		if stage == "connect" {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "service not available"}
		}
		return nil
	})
	_, err := Send(ctx, st, SendOptions{Campaign: "down", Identity: testIdentity(), Transport: smtpTransport(t, ms),
		RetryBase: time.Millisecond, MaxConsecutiveFailures: 5})
	var se *StopError
	if !errors.As(err, &se) || !errors.Is(err, ErrTooManyFailures) || !strings.Contains(err.Error(), "421") {
		t.Fatalf("err = %v, want a StopError naming the 421", err)
	}
	var queued int
	st.DB().QueryRow(`SELECT count(*) FROM invitations WHERE status = 'queued'`).Scan(&queued)
	if queued != 3 {
		t.Fatalf("%d invitations still queued, want 3", queued)
	}
	// The server comes back: the next send delivers all three.
	ms.setFault(nil)
	res, err := Send(ctx, st, SendOptions{Campaign: "down", Identity: testIdentity(), Transport: smtpTransport(t, ms)})
	if err != nil || res.Sent != 3 {
		t.Fatalf("resume: %+v %v", res, err)
	}
}

func TestCredentialsNeverGoInClear(t *testing.T) {
	ms := startServer(t)
	tr, err := NewSMTP("smtp://user:secret@"+ms.Addr, SMTPOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Dial(context.Background())
	if !errors.Is(err, ErrInsecureAuth) || Classify(err) != Permanent {
		t.Fatalf("dial = %v, want ErrInsecureAuth", err)
	}
	if _, err := NewSMTP("http://x", SMTPOptions{}); err == nil {
		t.Fatal("http:// accepted")
	}
	if _, err := NewSMTP("smtp://u:hunter2@", SMTPOptions{}); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad URL error %v", err)
	}
}

func TestCancelFinishesInFlightAndResumes(t *testing.T) {
	st := mustOpen(t)
	seedMany(t, st, 60)
	testCampaign(t, st, "cancel")
	ms := startServer(t)
	ms.delay = 20 * time.Millisecond // a slow server
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ms.total() < 10 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	res, err := Send(ctx, st, SendOptions{Campaign: "cancel", Identity: testIdentity(), Transport: smtpTransport(t, ms), Concurrency: 3})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if res.Sent != ms.total() {
		t.Fatalf("recorded %d sent, server has %d: an in-flight message was lost", res.Sent, ms.total())
	}
	res2, err := Send(context.Background(), st, SendOptions{Campaign: "cancel", Identity: testIdentity(), Transport: smtpTransport(t, ms), Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent+res2.Sent != 60 || ms.total() != 60 {
		t.Fatalf("sent %d + %d, server %d, want 60 exactly", res.Sent, res2.Sent, ms.total())
	}
}

func TestLimitRateAndOutbox(t *testing.T) {
	ctx := context.Background()
	st := mustOpen(t)
	seedMany(t, st, 12)
	testCampaign(t, st, "pilot")
	dir := filepath.Join(t.TempDir(), "outbox")
	ob, err := NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := Send(ctx, st, SendOptions{Campaign: "pilot", Identity: testIdentity(), Transport: ob, Limit: 5, Rate: 50})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 5 || res.Queued != 5 || res.Eligible != 12 {
		t.Fatalf("pilot %+v", res)
	}
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Errorf("5 messages at 50/s took %v", el)
	}
	res, err = Send(ctx, st, SendOptions{Campaign: "pilot", Identity: testIdentity(), Transport: ob})
	if err != nil || res.Sent != 7 || res.Eligible != 7 {
		t.Fatalf("rest %+v %v", res, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 12 {
		t.Fatalf("%d files in the outbox", len(files))
	}
	b, _ := os.ReadFile(files[0])
	if _, err := mail.ReadMessage(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestDryRunSendsNothing(t *testing.T) {
	ctx := context.Background()
	st := mustOpen(t)
	seed(t, st, seedContact{Email: "anna@example.org", First: "Anna", Lang: "de"}, seedContact{Email: "x@example.org", NoConsent: true})
	testCampaign(t, st, "dry")
	res, m, err := DryRun(ctx, st, SendOptions{Campaign: "dry", Identity: testIdentity()})
	if err != nil || res.Eligible != 1 || m == nil {
		t.Fatalf("%+v %v %v", res, m, err)
	}
	if !bytes.Contains(m.Data, []byte("Hallo Anna")) {
		t.Errorf("sample not personalised in German")
	}
	var n int
	st.DB().QueryRow(`SELECT count(*) FROM invitations`).Scan(&n)
	if n != 0 {
		t.Fatalf("dry run queued %d", n)
	}
}

func TestRemindersOnlyToNonRespondersWithSameToken(t *testing.T) {
	ctx := context.Background()
	st := mustOpen(t)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	st.Now = func() time.Time { return now }
	seed(t, st,
		seedContact{Email: "quiet@example.org", First: "Q", Lang: "en"},
		seedContact{Email: "yes@example.org"},
		seedContact{Email: "unsub@example.org"},
		seedContact{Email: "waconfirmed@example.org"},
	)
	testCampaign(t, st, "rem")
	ms := startServer(t)
	opts := SendOptions{Campaign: "rem", Identity: testIdentity(), Transport: smtpTransport(t, ms)}
	if _, err := Send(ctx, st, opts); err != nil {
		t.Fatal(err)
	}
	first := map[string]string{}
	for _, m := range ms.messages() {
		first[m.To] = tokenRe.FindStringSubmatch(parseMessage(t, m.Data).text)[1]
	}
	// Responses: one confirmed on the page, one unsubscribed, one confirmed
	// WhatsApp elsewhere (a decision on record).
	st.Update(ctx, func(tx *crm.Tx) error {
		tx.Exec(`UPDATE invitations SET response = 'confirmed', responded_at = ? WHERE contact_id = (SELECT id FROM contacts WHERE email = 'yes@example.org')`, crm.FormatTime(now))
		return nil
	})
	if _, err := st.Suppress(ctx, []string{"unsub@example.org"}, crm.ReasonUnsubscribed, "one-click-unsubscribe"); err != nil {
		t.Fatal(err)
	}
	c, _ := st.ContactByEmail(ctx, "waconfirmed@example.org")
	st.Update(ctx, func(tx *crm.Tx) error {
		return tx.AppendEvent(&crm.Event{ContactID: c.ID, Channel: crm.ChannelWhatsApp, Action: crm.ActionConfirmed, Method: "test"})
	})

	// Too early: nothing.
	now = now.Add(6 * 24 * time.Hour)
	r, err := Remind(ctx, st, opts)
	if err != nil || r.Sent != 0 {
		t.Fatalf("early remind %+v %v", r, err)
	}
	now = now.Add(2 * 24 * time.Hour)
	r, err = Remind(ctx, st, opts)
	if err != nil || r.Sent != 1 || r.Due != 1 {
		t.Fatalf("remind %+v %v", r, err)
	}
	msgs := ms.messages()
	last := msgs[len(msgs)-1]
	if last.To != "quiet@example.org" {
		t.Fatalf("reminder went to %s", last.To)
	}
	p := parseMessage(t, last.Data)
	if s, _ := p.header.Subject(); !strings.HasPrefix(s, "Reminder") {
		t.Errorf("reminder subject %q", s)
	}
	if tok := tokenRe.FindStringSubmatch(p.text)[1]; tok != first["quiet@example.org"] {
		t.Errorf("reminder token %s differs from the invitation's %s", tok, first["quiet@example.org"])
	}
	// Policy: one reminder only.
	now = now.Add(8 * 24 * time.Hour)
	if r, err := Remind(ctx, st, opts); err != nil || r.Sent != 0 {
		t.Fatalf("second remind %+v %v", r, err)
	}
	// After expiry the invitation counts as expired.
	now = now.Add(30 * 24 * time.Hour)
	if n, err := Expire(ctx, st, "rem"); err != nil || n != 3 {
		t.Fatalf("expire %d %v", n, err)
	}
	f, _ := Status(ctx, st, "rem")
	if f.Expired != 3 || f.Confirmed != 1 || f.Pending != 0 {
		t.Errorf("funnel %+v", f)
	}
}

func TestCreateCampaignIsIdempotentAndSavesStatements(t *testing.T) {
	ctx := context.Background()
	st := mustOpen(t)
	c1 := testCampaign(t, st, "same")
	c2, created, err := CreateCampaign(ctx, st, CampaignSpec{Name: "same", StatementVersion: "other", Statements: map[string]string{"en": "x"}})
	if err != nil || created || c2.ID != c1.ID || c2.StatementVersion != "whatsapp-v1" {
		t.Fatalf("%+v %v %v", c2, created, err)
	}
	s, err := st.StatementFor(ctx, crm.ChannelWhatsApp, "whatsapp-v1", "de")
	if err != nil || s.Text != "Ich stimme WhatsApp-Nachrichten zu." || s.SHA256 != crm.StatementHash(s.Text) {
		t.Fatalf("%+v %v", s, err)
	}
	var settings string
	st.DB().QueryRow(`SELECT settings FROM campaigns WHERE name = 'same'`).Scan(&settings)
	if !strings.Contains(settings, `"interests":[{"name":"offers","labels":{"de":"Angebote","en":"Offers"}},{"name":"recipes"}]`) {
		t.Errorf("settings %s", settings)
	}
	if c1.Expiry != DefaultExpiry || c1.ReminderCount != 1 || c1.ReminderAfter != DefaultReminderAfter {
		t.Errorf("defaults %+v", c1)
	}
}

func TestEncodedHeadersDecode(t *testing.T) {
	st := mustOpen(t)
	c := testCampaign(t, st, "enc")
	r, err := NewRenderer(&c, testIdentity())
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Render(Recipient{InvitationID: 1, Email: "z@example.org", FirstName: "Zoë", LastName: "Müller", Language: "de", Token: "T"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subj != "Möchten Sie von Example Roasters auf WhatsApp hören?" {
		t.Errorf("subject %q", subj)
	}
	to, err := mail.ParseAddress(msg.Header.Get("To"))
	if err != nil || to.Name != "Zoë Müller" {
		t.Errorf("To %v %v", to, err)
	}
}

// A send bounds the writer's page cache for its run and gives the store
// back its own setting.
func TestSendRestoresTheWritersCache(t *testing.T) {
	ctx := context.Background()
	st := mustOpen(t)
	seed(t, st, seedContact{Email: "anna@example.org"})
	testCampaign(t, st, "cache")
	cacheSize := func() (n int64) {
		st.Update(ctx, func(tx *crm.Tx) error { return tx.QueryRow(`PRAGMA cache_size`).Scan(&n) })
		return n
	}
	before := cacheSize()
	if _, err := Send(ctx, st, SendOptions{Campaign: "cache", Identity: testIdentity(), Transport: smtpTransport(t, startServer(t))}); err != nil {
		t.Fatal(err)
	}
	if after := cacheSize(); after != before {
		t.Errorf("cache_size %d after the send, %d before", after, before)
	}
}

// Every path delivers a message byte for byte, lines that begin with a
// dot included (DATA stuffs them, BDAT sends them as they are).
func TestSMTPPathsDeliverExactBytes(t *testing.T) {
	data := []byte("Subject: dots\r\n\r\n.one\r\n..two\r\nthree.\r\n.\r\nend")
	for name, path := range map[string]func(*SMTP){
		"pipelined":      func(*SMTP) {},
		"pipelined-data": func(s *SMTP) { s.noChunking = true },
		"lockstep":       func(s *SMTP) { s.lockstep = true },
	} {
		t.Run(name, func(t *testing.T) {
			ms := startServer(t)
			tr := smtpTransport(t, ms)
			path(tr)
			conn, err := tr.Dial(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for _, to := range []string{"a@example.org", "b@example.org"} {
				if err := conn.Send(context.Background(), &Message{From: "s@example.org", To: to, Data: data}, nil); err != nil {
					t.Fatal(err)
				}
			}
			msgs := ms.messages()
			if len(msgs) != 2 {
				t.Fatalf("server got %d messages", len(msgs))
			}
			for _, m := range msgs {
				// Without a final line end, DATA adds one.
				if got := string(m.Data); got != string(data) && got != string(data)+"\r\n" {
					t.Errorf("server got %q", got)
				}
			}
		})
	}
}

// A run sends while it queues (queueFeed): with more eligible contacts
// than one queue batch holds, every one of them still gets exactly one
// message, and a limit that ends mid-batch is kept.
func TestSendWhileQueueingSendsEachOnce(t *testing.T) {
	ctx := context.Background()
	st := mustOpen(t)
	n := 2*queueBatch + 137
	seedMany(t, st, n)
	testCampaign(t, st, "big")
	ms := startServer(t)
	limit := queueBatch + 50
	res, err := Send(ctx, st, SendOptions{Campaign: "big", Identity: testIdentity(), Transport: smtpTransport(t, ms), Limit: limit})
	if err != nil || res.Sent != limit || res.Queued != limit || res.Eligible != n {
		t.Fatalf("limited run: %+v %v", res, err)
	}
	res, err = Send(ctx, st, SendOptions{Campaign: "big", Identity: testIdentity(), Transport: smtpTransport(t, ms)})
	if err != nil || res.Sent != n-limit || res.Queued != n-limit || res.Skipped != 0 {
		t.Fatalf("rest: %+v %v", res, err)
	}
	seen := map[string]int{}
	for _, m := range ms.messages() {
		seen[m.To]++
	}
	if len(seen) != n || ms.total() != n {
		t.Fatalf("%d messages to %d addresses for %d contacts", ms.total(), len(seen), n)
	}
	for to, k := range seen {
		if k != 1 {
			t.Fatalf("%s got %d messages", to, k)
		}
	}
}
