package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite/internal/browsertest"
	"github.com/repermit/repermit/invite/web"
)

// buildRepermit builds the command, to read the proof back the way a user
// would (`contacts show --json`).
func buildRepermit(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "repermit")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/repermit/repermit/cmd/repermit").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/repermit: %v\n%s", err, out)
	}
	return bin
}

// TestBrowserConfirm is a person on a phone: open the link, see who asks
// and that it is about WhatsApp, tick two topics, press yes, see the
// success page; then the proof holds the statement's hash and this
// browser's user agent.
func TestBrowserConfirm(t *testing.T) {
	ctx := browsertest.New(t)
	bin := buildRepermit(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "repermit.db")
	st := openStore(t, dbPath)
	seedContact(t, st, crm.ContactInput{Email: "anna@example.com", FirstName: "Anna", Phone: "+4915123456678", Country: "DE", Language: "en"})
	h := web.New(st, web.Options{Business: testBusiness()})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()

	// The invitation as `campaign create` + `campaign send` write it.
	config := filepath.Join(dir, "repermit.toml")
	if err := os.WriteFile(config, []byte(`[business]
name = "Kaffee & Co"
address = "Beispielstraße 1, 10115 Berlin"
privacy_url = "https://kaffee.example/privacy"
whatsapp_number = "+49 30 1234567"

[sender]
from = "Kaffee & Co <hallo@kaffee.example>"

[web]
base_url = "`+srv.URL+`"

[statement]
version = "whatsapp-v1"
[statement.text]
en = "I agree that {{business}} may send me messages on WhatsApp about the topics I choose below. I can stop at any time by replying STOP."

[interests.offers]
en = "Offers and discounts"
[interests.recipes]
en = "Recipes and brewing tips"
[interests.events]
en = "Events and tastings"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	outbox := filepath.Join(dir, "outbox")
	repermit(t, bin, "--db", dbPath, "--config", config, "campaign", "create", "--interests", "offers,recipes,events", "spring-optin")
	repermit(t, bin, "--db", dbPath, "--config", config, "campaign", "send", "--outbox", outbox, "spring-optin")
	link := confirmLinkFromOutbox(t, outbox, srv.URL)

	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`button[value="confirm"]`)),
	); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Kaffee & Co", "on WhatsApp", stmtEN, "+49 151 ••• 678", "Yes, message me on WhatsApp", "No thanks"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not show %q:\n%s", want, text)
		}
	}
	// Mobile first: nothing wider than a phone's screen.
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || w > 390 {
		t.Errorf("page is %d px wide on a 390 px screen (%v)", w, err)
	}
	// Keyboard: focus the first topic and press space; click the label of another.
	if err := chromedp.Do(ctx,
		chromedp.Focus(chromedp.CSS(`#interest-0`)),
		chromedp.KeyEvent(" "),
		chromedp.Click(chromedp.CSS(`label[for="interest-2"]`)),
	); err != nil {
		t.Fatal(err)
	}
	checked, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('input[name=interest]:checked')].map(e => e.value)`))
	if err != nil || strings.Join(checked, ",") != "offers,events" {
		t.Fatalf("ticked %v (%v), want offers and events", checked, err)
	}
	ua, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.userAgent`))
	if err != nil || ua == "" {
		t.Fatalf("user agent: %q %v", ua, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button[value="confirm"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="https://wa.me/49301234567"]`)),
	); err != nil {
		t.Fatal(err)
	}
	done, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
	if !strings.Contains(done, "Thank you") {
		t.Fatalf("success page heading %q", done)
	}

	var show struct {
		Consent   map[string]string `json:"consent"`
		Events    []crm.Event       `json:"events"`
		Interests []string          `json:"interests"`
	}
	cmd := exec.Command(bin, "--db", dbPath, "contacts", "show", "--json", "anna@example.com")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("contacts show: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(out, &show); err != nil {
		t.Fatalf("contacts show --json: %v\n%s", err, out)
	}
	if show.Consent["whatsapp"] != "confirmed" {
		t.Fatalf("consent %v", show.Consent)
	}
	var found bool
	for _, e := range show.Events {
		if e.Channel == "whatsapp" && e.Action == "confirmed" {
			found = true
			if e.StatementSHA256 != crm.StatementHash(stmtEN) || e.StatementVersion != "whatsapp-v1" || e.UserAgent != ua ||
				e.Method != "invite:confirm-page" || e.Campaign != "spring-optin" || e.IP != "127.0.0.1" {
				t.Errorf("confirmed event lacks the proof (want statement %s, user agent %q): %+v", crm.StatementHash(stmtEN), ua, e)
			}
		}
	}
	if !found {
		t.Fatalf("no confirmed event in:\n%s", out)
	}
	if strings.Join(show.Interests, ",") != "events,offers" {
		t.Errorf("interests %v", show.Interests)
	}
}

// repermit runs the command and fails the test when it fails.
func repermit(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("repermit %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// confirmLinkFromOutbox reads the one invitation in the outbox and returns
// its confirm link (undoing quoted-printable soft line breaks).
func confirmLinkFromOutbox(t *testing.T, outbox, base string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(outbox, "*.eml"))
	if len(files) != 1 {
		t.Fatalf("outbox holds %d .eml files, want 1", len(files))
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("=\r\n", "", "=\n", "").Replace(string(raw))
	m := regexp.MustCompile(regexp.QuoteMeta(base) + `/c/[A-Za-z0-9_-]{20,64}`).FindString(text)
	if m == "" {
		t.Fatalf("no %s/c/TOKEN link in the invitation:\n%s", base, raw)
	}
	return m
}

// TestBrowserAndScannersNeverConsent loads the page ten times, the way
// link scanners do (GET, HEAD, and a real browser running the page's
// JavaScript, were there any), and proves that no consent changed.
func TestBrowserAndScannersNeverConsent(t *testing.T) {
	ctx := browsertest.New(t)
	f := newFixture(t, web.Options{})
	id, token := f.person("scanned@example.com", crm.ContactInput{Phone: "+4915123456678"})
	before := f.events(id)
	url := f.srv.URL + "/c/" + token

	for i := range 4 {
		if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`button[value="confirm"]`))); err != nil {
			t.Fatal(err)
		}
		// A scanner may "click" around: follow links, but no button.
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.scripts.length + document.querySelectorAll('[onload],[onclick],meta[http-equiv=refresh]').length`))
		if err != nil || n != 0 {
			t.Fatalf("load %d: the page has %d scripts or auto actions (%v)", i, n, err)
		}
	}
	for i := range 6 {
		method := "GET"
		if i%2 == 1 {
			method = "HEAD"
		}
		req, _ := http.NewRequest(method, url, nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (compatible; SafeLinks-Scanner)")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", method, resp, err)
		}
		resp.Body.Close()
	}
	after := f.events(id)
	if len(after) != len(before) {
		t.Fatalf("page loads changed consent: %d events before, %d after", len(before), len(after))
	}
	if f.consent(id, "whatsapp") != "none" || f.scalar(`SELECT response FROM invitations`) != "" {
		t.Fatal("page loads answered the invitation")
	}
	if got := f.scalar(`SELECT visits FROM invitations`); got != "10" {
		t.Fatalf("visits = %s, want 10", got)
	}
	if got := f.scalar(`SELECT count(*) FROM visits WHERE user_agent LIKE '%Chrome%'`); got != "4" {
		t.Fatalf("browser visits = %s, want 4", got)
	}
}
