package web_test

import (
	"context"
	"html"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite/web"
	"golang.org/x/time/rate"
)

func checkSecurityHeaders(t *testing.T, r response) {
	t.Helper()
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q: must forbid framing and inline script", csp)
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
}

func TestConfirmPageShowsTheInvitationAndOnlyLogsTheVisit(t *testing.T) {
	f := newFixture(t, web.Options{})
	id, token := f.person("anna@example.com", crm.ContactInput{FirstName: "Anna", Phone: "+4915123456678", Language: "en"})

	r := f.get("/c/" + token)
	if r.status != 200 {
		t.Fatalf("GET: %d\n%s", r.status, r.body)
	}
	checkSecurityHeaders(t, r)
	mustContain(t, r.body, "Kaffee &amp; Co", "on WhatsApp", html.EscapeString(stmtEN), "+49 151 ••• 678",
		"Hi Anna,", "Offers and discounts", "Recipes and brewing tips", "Yes, message me on WhatsApp", "No thanks",
		`name="phone"`, `href="https://kaffee.example/privacy"`, `lang="en"`)
	mustNotContain(t, r.body, "<script", " checked", "anna@example.com", "+4915123456678", "https://fonts", "http://")

	h := f.do("HEAD", "/c/"+token, nil)
	if h.status != 200 || h.body != "" {
		t.Fatalf("HEAD: %d %q", h.status, h.body)
	}
	checkSecurityHeaders(t, h)
	if got := f.scalar(`SELECT count(*) FROM visits WHERE page = 'confirm'`); got != "2" {
		t.Errorf("visits = %s, want 2", got)
	}
	if got := f.scalar(`SELECT visits || ' ' || (first_visit_at <> '') || ' ' || response FROM invitations`); got != "2 1 " {
		t.Errorf("invitation counters = %q", got)
	}
	if got := f.scalar(`SELECT user_agent FROM visits LIMIT 1`); got != "repermit-test/1.0" {
		t.Errorf("visit user agent = %q", got)
	}
	if evs := f.whatsappEvents(id); len(evs) != 0 {
		t.Fatalf("a GET recorded consent: %+v", evs)
	}
}

func TestConfirmPageInGermanWithFallback(t *testing.T) {
	f := newFixture(t, web.Options{})
	_, de := f.person("de@example.com", crm.ContactInput{Language: "de", Phone: "+4915123456678"})
	r := f.get("/c/" + de)
	mustContain(t, r.body, `lang="de"`, "auf WhatsApp", html.EscapeString(stmtDE), "Ja, schreiben Sie mir auf WhatsApp", "Nein, danke", "Angebote und Rabatte")

	_, fr := f.person("fr@example.com", crm.ContactInput{Language: "fr", Phone: "+4915123456678"})
	r = f.get("/c/" + fr)
	mustContain(t, r.body, `lang="en"`, html.EscapeString(stmtEN), "Yes, message me on WhatsApp")
	r = f.get("/c/"+fr, "Accept-Language", "fr-FR, de;q=0.8, en;q=0.5")
	mustContain(t, r.body, `lang="de"`, "Ja, schreiben Sie mir auf WhatsApp")
}

func TestUnknownAndExpiredLinks(t *testing.T) {
	f := newFixture(t, web.Options{})
	r := f.get("/c/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	if r.status != 404 || !strings.Contains(r.body, "could not find this link") || !strings.Contains(r.body, "copy the whole link") {
		t.Fatalf("unknown token: %d\n%s", r.status, r.body)
	}
	checkSecurityHeaders(t, r)
	for _, p := range []string{"/c/short", "/c/" + strings.Repeat("x", 300), "/p/%3Cscript%3E", "/nope"} {
		if r := f.get(p); r.status != 404 {
			t.Errorf("%s: %d", p, r.status)
		}
	}
	if r := f.post("/c/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", confirmForm()); r.status != 404 {
		t.Errorf("POST unknown: %d", r.status)
	}

	id := seedContact(t, f.st, crm.ContactInput{Email: "late@example.com", Phone: "+4915123456678", Country: "DE"})
	token := seedInvitation(t, f.st, f.campaign, id, time.Now().Add(-time.Hour))
	r = f.get("/c/" + token)
	if r.status != 410 || !strings.Contains(r.body, "expired") || !strings.Contains(r.body, "Nothing was changed") {
		t.Fatalf("expired GET: %d\n%s", r.status, r.body)
	}
	r = f.post("/c/"+token, confirmForm("offers"))
	if r.status != 410 {
		t.Fatalf("expired POST: %d", r.status)
	}
	if evs := f.whatsappEvents(id); len(evs) != 0 {
		t.Fatalf("expired invitation recorded consent: %+v", evs)
	}
	// An expired invitation still unsubscribes: opt-outs win.
	if r := f.post("/u/"+token, url.Values{"List-Unsubscribe": {"One-Click"}}); r.status != 200 {
		t.Fatalf("one-click on expired invitation: %d", r.status)
	}
	if got := f.consent(id, "email"); got != "withdrawn" {
		t.Fatalf("email consent after unsubscribe = %s", got)
	}
}

func TestConfirmRecordsEvidenceInOneTransaction(t *testing.T) {
	f := newFixture(t, web.Options{})
	id, token := f.person("anna@example.com", crm.ContactInput{FirstName: "Anna", Phone: "+4915123456678", Language: "en"})
	r := f.post("/c/"+token, confirmForm("offers", "events", "not-offered", "offers"))
	if r.status != 200 {
		t.Fatalf("POST: %d\n%s", r.status, r.body)
	}
	checkSecurityHeaders(t, r)
	mustContain(t, r.body, "Thank you", "+49 151 ••• 678", `href="https://wa.me/49301234567"`, "/p/"+token)

	evs := f.whatsappEvents(id)
	if len(evs) != 1 {
		t.Fatalf("events: %+v", evs)
	}
	e := evs[0]
	if e.Action != "confirmed" || e.Method != "invite:confirm-page" || e.IP != "127.0.0.1" || e.UserAgent != "repermit-test/1.0" ||
		e.Campaign != "spring-optin" || e.InvitationID == 0 || e.StatementVersion != "whatsapp-v1" ||
		e.StatementSHA256 != crm.StatementHash(stmtEN) || e.Evidence["interests"] != "offers,events" {
		t.Fatalf("event does not carry the evidence: %+v", e)
	}
	interests, _ := f.st.Interests(context.Background(), id)
	if strings.Join(interests, ",") != "events,offers" {
		t.Errorf("interests = %v", interests)
	}
	if got := f.scalar(`SELECT response || ' ' || (responded_at <> '') FROM invitations`); got != "confirmed 1" {
		t.Errorf("invitation = %q", got)
	}
	if got := f.scalar(`SELECT count(*) FROM whatsapp_optins WHERE contact_id = ?`, id); got != "1" {
		t.Errorf("not in whatsapp_optins")
	}
	f.verify()
}

func TestConfirmTwiceIsHarmless(t *testing.T) {
	f := newFixture(t, web.Options{})
	id, token := f.person("anna@example.com", crm.ContactInput{Phone: "+4915123456678"})
	for range 3 {
		if r := f.post("/c/"+token, confirmForm("offers")); r.status != 200 {
			t.Fatalf("POST: %d", r.status)
		}
	}
	// Concurrent repeats land in the same group-commit batch: still one event.
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.post("/c/"+token, confirmForm("recipes"))
		}()
	}
	wg.Wait()
	if evs := f.whatsappEvents(id); len(evs) != 1 {
		t.Fatalf("%d events after repeats, want 1", len(evs))
	}
	interests, _ := f.st.Interests(context.Background(), id)
	if strings.Join(interests, ",") != "offers" {
		t.Errorf("a repeat changed interests: %v", interests)
	}
}

func TestDeclinedThenConfirmed(t *testing.T) {
	f := newFixture(t, web.Options{})
	id, token := f.person("anna@example.com", crm.ContactInput{Phone: "+4915123456678"})
	r := f.post("/c/"+token, url.Values{"decision": {"decline"}, "interest": {"offers"}})
	if r.status != 200 || !strings.Contains(r.body, "No problem") {
		t.Fatalf("decline: %d\n%s", r.status, r.body)
	}
	if got := f.consent(id, "whatsapp"); got != "declined" {
		t.Fatalf("after decline: %s", got)
	}
	if r := f.post("/c/"+token, url.Values{"decision": {"decline"}}); r.status != 200 {
		t.Fatal(r.status)
	}
	// The page says so and offers to change the answer.
	if r := f.get("/c/" + token); !strings.Contains(r.body, "You said no thanks") {
		t.Errorf("page does not show the earlier answer")
	}
	if r := f.post("/c/"+token, confirmForm("recipes")); r.status != 200 {
		t.Fatal(r.status)
	}
	evs := f.whatsappEvents(id)
	if len(evs) != 2 || evs[0].Action != "declined" || evs[1].Action != "confirmed" || evs[0].StatementSHA256 == "" {
		t.Fatalf("events: %+v", evs)
	}
	if got := f.scalar(`SELECT response FROM invitations`); got != "confirmed" {
		t.Errorf("response %s", got)
	}
	f.verify()
}

func TestUnsubscribedThenConfirmAndBack(t *testing.T) {
	f := newFixture(t, web.Options{})
	id, token := f.person("anna@example.com", crm.ContactInput{Phone: "+4915123456678"})
	r := f.post("/u/"+token, url.Values{"List-Unsubscribe": {"One-Click"}})
	if r.status != 200 || r.header.Get("Location") != "" {
		t.Fatalf("one-click: %d %v", r.status, r.header)
	}
	checkSecurityHeaders(t, r)
	if f.consent(id, "email") != "withdrawn" || f.scalar(`SELECT response FROM invitations`) != "unsubscribed" {
		t.Fatal("one-click did not withdraw email consent")
	}
	// Email and WhatsApp are separate choices: an email unsubscriber may
	// still say yes to WhatsApp.
	if r := f.post("/c/"+token, confirmForm("offers")); r.status != 200 {
		t.Fatalf("confirm after unsubscribe: %d\n%s", r.status, r.body)
	}
	if f.consent(id, "whatsapp") != "confirmed" || f.consent(id, "email") != "withdrawn" {
		t.Fatalf("consent: whatsapp %s email %s", f.consent(id, "whatsapp"), f.consent(id, "email"))
	}
	// An unsubscribe does not undo a WhatsApp confirmation.
	f.post("/u/"+token, url.Values{"via": {"page"}})
	if f.consent(id, "whatsapp") != "confirmed" || f.scalar(`SELECT response FROM invitations`) != "confirmed" {
		t.Fatal("unsubscribe touched WhatsApp")
	}
	f.verify()
}

func TestBadPhoneReRendersTheForm(t *testing.T) {
	f := newFixture(t, web.Options{})
	id, token := f.person("nophone@example.com", crm.ContactInput{Language: "en"})
	r := f.get("/c/" + token)
	mustContain(t, r.body, "Mobile number you use WhatsApp with", "required")

	form := confirmForm("recipes")
	form.Set("phone", `12"><script>alert(1)</script>`)
	r = f.post("/c/"+token, form)
	if r.status != 422 {
		t.Fatalf("bad phone: %d", r.status)
	}
	mustContain(t, r.body, "does not look like a mobile number", `aria-invalid="true"`, "&lt;script&gt;", `value="recipes" checked`, `role="alert"`)
	mustNotContain(t, r.body, "<script>alert")

	if r := f.post("/c/"+token, confirmForm()); r.status != 422 || !strings.Contains(r.body, "Please enter the mobile number") {
		t.Fatalf("missing phone: %d", r.status)
	}
	form.Set("phone", "030 1234567") // a landline cannot do WhatsApp
	if r := f.post("/c/"+token, form); r.status != 422 {
		t.Fatalf("landline: %d", r.status)
	}
	if evs := f.whatsappEvents(id); len(evs) != 0 {
		t.Fatalf("a refused form recorded consent: %+v", evs)
	}
	// A national number is read in the contact's country.
	form.Set("phone", "0151 2345 6789")
	if r := f.post("/c/"+token, form); r.status != 200 {
		t.Fatalf("good phone: %d\n%s", r.status, r.body)
	}
	c, _ := f.st.ContactByID(context.Background(), id)
	if c.Phone != "+4915123456789" || c.PhoneRaw != "0151 2345 6789" {
		t.Fatalf("stored phone %q raw %q", c.Phone, c.PhoneRaw)
	}
	if r := f.post("/c/"+token, url.Values{"decision": {"maybe"}}); r.status != 400 || !strings.Contains(r.body, "Please choose") {
		t.Fatalf("bad decision: %d", r.status)
	}
}

func TestOversizedBody(t *testing.T) {
	f := newFixture(t, web.Options{})
	id, token := f.person("anna@example.com", crm.ContactInput{Phone: "+4915123456678"})
	form := confirmForm("offers")
	form.Set("padding", strings.Repeat("x", 64<<10))
	r := f.post("/c/"+token, form)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized: %d", r.status)
	}
	checkSecurityHeaders(t, r)
	if evs := f.whatsappEvents(id); len(evs) != 0 {
		t.Fatal("oversized body recorded consent")
	}
}

func TestEverythingEchoedIsEscaped(t *testing.T) {
	f := newFixture(t, web.Options{Business: web.Business{Name: `<b>Evil</b> "Co"`, PrivacyURL: "javascript:alert(1)"}})
	_, token := f.person("x@example.com", crm.ContactInput{FirstName: `<script>alert("name")</script>`, Phone: "+4915123456678"})
	r := f.get("/c/" + token)
	if r.status != 200 {
		t.Fatal(r.status)
	}
	mustContain(t, r.body, "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;", "&lt;b&gt;Evil&lt;/b&gt;")
	mustNotContain(t, r.body, "<script", "<b>Evil", "javascript:alert")
}

func TestSuppressedAndErasedCannotConfirm(t *testing.T) {
	f := newFixture(t, web.Options{})
	ctx := context.Background()
	complained, tokC := f.person("complained@example.com", crm.ContactInput{Phone: "+4915123456678"})
	if _, err := f.st.Suppress(ctx, []string{"complained@example.com"}, crm.ReasonComplained, "test"); err != nil {
		t.Fatal(err)
	}
	if r := f.get("/c/" + tokC); r.status != 403 || !strings.Contains(r.body, "not to contact you") {
		t.Fatalf("complained GET: %d", r.status)
	}
	if r := f.post("/c/"+tokC, confirmForm()); r.status != 403 {
		t.Fatalf("complained POST: %d", r.status)
	}
	erased, tokE := f.person("erased@example.com", crm.ContactInput{Phone: "+4915123456678"})
	if err := f.st.Forget(ctx, "erased@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/c/", "/p/"} {
		if r := f.get(p + tokE); r.status != 410 || strings.Contains(r.body, "erased@example.com") {
			t.Fatalf("erased GET %s: %d", p, r.status)
		}
	}
	if r := f.post("/c/"+tokE, confirmForm()); r.status != 410 {
		t.Fatalf("erased POST: %d", r.status)
	}
	if r := f.post("/u/"+tokE, url.Values{"List-Unsubscribe": {"One-Click"}}); r.status != 200 {
		t.Fatalf("erased one-click: %d", r.status)
	}
	// A number that said STOP cannot be confirmed again; another can.
	stopped, tokS := f.person("stop@example.com", crm.ContactInput{Phone: "+4915123456678"})
	if err := f.st.Update(ctx, func(tx *crm.Tx) error {
		_, err := tx.SuppressPhone("+4915123456678", crm.ReasonStop, "test")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if r := f.post("/c/"+tokS, confirmForm()); r.status != 422 {
		t.Fatalf("STOP number: %d", r.status)
	}
	form := confirmForm()
	form.Set("phone", "+4915123456678")
	if r := f.post("/c/"+tokS, form); r.status != 422 || !strings.Contains(r.body, "asked us not to send") {
		t.Fatalf("STOP number typed: %d", r.status)
	}
	form.Set("phone", "+4915199999999")
	if r := f.post("/c/"+tokS, form); r.status != 200 {
		t.Fatalf("other number: %d", r.status)
	}
	for _, id := range []int64{complained, erased} {
		if evs := f.whatsappEvents(id); len(evs) != 0 {
			t.Fatalf("contact %d: %+v", id, evs)
		}
	}
	if f.consent(stopped, "whatsapp") != "confirmed" {
		t.Fatal("new number not confirmed")
	}
	f.verify()
}

func TestUnsubscribe(t *testing.T) {
	f := newFixture(t, web.Options{})
	id, token := f.person("anna@example.com", crm.ContactInput{Phone: "+4915123456678"})
	r := f.get("/u/" + token)
	if r.status != 200 || !strings.Contains(r.body, `<button type="submit" class="primary">Unsubscribe</button>`) {
		t.Fatalf("GET /u: %d\n%s", r.status, r.body)
	}
	if f.consent(id, "email") != "granted" || f.scalar(`SELECT count(*) FROM suppressions`) != "0" {
		t.Fatal("GET /u changed something")
	}
	if r := f.post("/u/"+token, url.Values{"something": {"else"}}); r.status != 400 {
		t.Fatalf("POST without one-click body: %d", r.status)
	}
	for range 2 {
		r = f.post("/u/"+token, url.Values{"List-Unsubscribe": {"One-Click"}})
		if r.status != 200 || r.header.Get("Location") != "" || !strings.Contains(r.body, "unsubscribed") {
			t.Fatalf("one-click: %d", r.status)
		}
	}
	evs := f.events(id)
	if len(evs) != 2 || evs[1].Channel != "email" || evs[1].Action != "withdrawn" || evs[1].Method != "one-click-unsubscribe" || evs[1].InvitationID == 0 {
		t.Fatalf("events: %+v", evs)
	}
	if got := f.scalar(`SELECT channel || ' ' || reason FROM suppressions`); got != "email unsubscribed" {
		t.Fatalf("suppression %q", got)
	}
	if got := f.scalar(`SELECT count(*) FROM invite_eligible WHERE contact_id = ?`, id); got != "0" {
		t.Fatal("still eligible for invitations")
	}

	id2, token2 := f.person("page@example.com", crm.ContactInput{})
	f.post("/u/"+token2, url.Values{"via": {"page"}})
	if evs := f.events(id2); len(evs) != 2 || evs[1].Method != "unsubscribe-page" {
		t.Fatalf("page unsubscribe: %+v", evs)
	}

	// RFC 8058 allows multipart bodies too.
	id3, token3 := f.person("multi@example.com", crm.ContactInput{})
	body := "--XX\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XX--\r\n"
	req, _ := http.NewRequest("POST", f.srv.URL+"/u/"+token3, strings.NewReader(body))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=XX")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("multipart one-click: %v %v", resp, err)
	}
	resp.Body.Close()
	if f.consent(id3, "email") != "withdrawn" {
		t.Fatal("multipart one-click did not unsubscribe")
	}
}

func TestPreferences(t *testing.T) {
	f := newFixture(t, web.Options{})
	id, token := f.person("anna@example.com", crm.ContactInput{Phone: "+4915123456678"})
	if r := f.get("/p/" + token); r.status != 200 || !strings.Contains(r.body, "You do not get WhatsApp messages") || !strings.Contains(r.body, "/c/"+token) {
		t.Fatalf("GET /p before: %d\n%s", r.status, r.body)
	}
	f.post("/c/"+token, confirmForm("offers"))
	r := f.get("/p/" + token)
	mustContain(t, r.body, "You get WhatsApp messages", "+49 151 ••• 678", `value="offers" checked`, "Stop WhatsApp messages")

	r = f.post("/p/"+token, url.Values{"action": {"save"}, "interest": {"recipes", "events", "bogus"}})
	if r.status != 200 || !strings.Contains(r.body, "Saved") {
		t.Fatalf("save: %d", r.status)
	}
	interests, _ := f.st.Interests(context.Background(), id)
	if strings.Join(interests, ",") != "events,recipes" {
		t.Fatalf("interests %v", interests)
	}
	r = f.post("/p/"+token, url.Values{"action": {"withdraw"}})
	if r.status != 200 || !strings.Contains(r.body, "no more WhatsApp messages") {
		t.Fatalf("withdraw: %d", r.status)
	}
	f.post("/p/"+token, url.Values{"action": {"withdraw"}})
	evs := f.whatsappEvents(id)
	if len(evs) != 2 || evs[1].Action != "withdrawn" || evs[1].Method != "preference-page" {
		t.Fatalf("events %+v", evs)
	}
	if f.scalar(`SELECT count(*) FROM whatsapp_optins`) != "0" {
		t.Fatal("still opted in")
	}
	if f.scalar(`SELECT count(*) FROM visits WHERE page = 'preferences'`) != "2" {
		t.Fatal("preference visits not logged")
	}
	f.verify()
}

func TestPostRateLimitPerIP(t *testing.T) {
	f := newFixture(t, web.Options{PostRate: rate.Every(time.Hour), PostBurst: 3, TrustProxy: true})
	_, token := f.person("anna@example.com", crm.ContactInput{Phone: "+4915123456678"})
	codes := []int{}
	for range 5 {
		codes = append(codes, f.post("/c/"+token, confirmForm(), "X-Forwarded-For", "203.0.113.9").status)
	}
	if codes[2] != 200 || codes[3] != 429 || codes[4] != 429 {
		t.Fatalf("codes %v", codes)
	}
	// Another client is not affected, nor are GETs, nor one-click unsubscribes.
	if r := f.post("/c/"+token, confirmForm(), "X-Forwarded-For", "203.0.113.10"); r.status != 200 {
		t.Fatalf("other ip: %d", r.status)
	}
	if r := f.get("/c/"+token, "X-Forwarded-For", "203.0.113.9"); r.status != 200 {
		t.Fatalf("GET: %d", r.status)
	}
	if r := f.post("/u/"+token, url.Values{"List-Unsubscribe": {"One-Click"}}, "X-Forwarded-For", "203.0.113.9"); r.status != 200 {
		t.Fatalf("one-click: %d", r.status)
	}
}

func TestForwardedIPOnlyBehindTrustProxy(t *testing.T) {
	for _, trust := range []bool{false, true} {
		f := newFixture(t, web.Options{TrustProxy: trust})
		id, token := f.person("anna@example.com", crm.ContactInput{Phone: "+4915123456678"})
		f.post("/c/"+token, confirmForm(), "X-Forwarded-For", "198.51.100.1, 203.0.113.7")
		want := "127.0.0.1"
		if trust {
			want = "203.0.113.7"
		}
		if evs := f.whatsappEvents(id); len(evs) != 1 || evs[0].IP != want {
			t.Fatalf("trust %v: %+v", trust, evs)
		}
	}
}

func TestHealthzAndLogsCarryNoPersonalData(t *testing.T) {
	f := newFixture(t, web.Options{})
	if r := f.get("/healthz"); r.status != 200 {
		t.Fatal(r.status)
	}
	_, token := f.person("secret.person@example.com", crm.ContactInput{Phone: "+4915123456678", FirstName: "Zelda"})
	f.get("/c/" + token)
	form := confirmForm("offers")
	form.Set("phone", "+49 151 2345 6789x")
	f.post("/c/"+token, form)
	form.Set("phone", "+49 151 2345 6789")
	f.post("/c/"+token, form)
	f.post("/u/"+token, url.Values{"List-Unsubscribe": {"One-Click"}})
	f.get("/p/" + token)
	logs := f.logs.String()
	if !strings.Contains(logs, "route=\"POST /c/{token}\"") {
		t.Fatalf("no request log:\n%s", logs)
	}
	for _, secret := range []string{"secret.person", "example.com", "4915123456678", "151 2345", "Zelda", token} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "s.db"))
	h := web.New(st, web.Options{})
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- web.Serve(ctx, ln, h, nil) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not shut down")
	}
}

func TestSuccessPageOffersTheConsentReceipt(t *testing.T) {
	f := newFixture(t, web.Options{Receipt: &crm.ReceiptOptions{Controller: crm.Controller{Name: "Kaffee & Co", Jurisdiction: "EU"}}})
	_, token := f.person("anna@example.com", crm.ContactInput{FirstName: "Anna", Phone: "+4915123456678", Language: "en"})
	// Before a confirmation there is nothing to give a receipt for.
	if r := f.get("/r/" + token); r.status != 404 {
		t.Errorf("receipt before confirming: %d", r.status)
	}
	r := f.post("/c/"+token, confirmForm("offers"))
	mustContain(t, r.body, `href="/r/`+token+`"`)
	r = f.get("/r/" + token)
	if r.status != 200 {
		t.Fatalf("receipt: %d %s", r.status, r.body)
	}
	checkSecurityHeaders(t, r)
	mustContain(t, r.body, `"version": "KI-CR-v1.1.0"`, `"jurisdiction": "EU"`, `"consentReceiptID"`)
	mustContain(t, r.body, `Kaffee \u0026 Co`)
	f.verify()
}
