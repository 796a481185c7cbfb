package main

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite"
	"github.com/repermit/repermit/invite/web"
	"github.com/repermit/repermit/segments"
	"golang.org/x/time/rate"
)

// testClock is a clock the test moves; the store and the pages read it.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// timeline is one store, the real pages on a loopback HTTP server and an
// outbox, driven through runJob day by day.
type timeline struct {
	t      *testing.T
	ctx    context.Context
	clock  *testClock
	st     *crm.Store
	dir    string
	outbox string
	cfg    Config
	seen   map[string]bool // .eml files already read
	tokens map[string]string
}

func newTimeline(t *testing.T, start time.Time) *timeline {
	dir := t.TempDir()
	tl := &timeline{t: t, ctx: context.Background(), clock: &testClock{t: start}, dir: dir,
		outbox: filepath.Join(dir, "outbox"), seen: map[string]bool{}, tokens: map[string]string{}}
	st, err := crm.Open(tl.ctx, filepath.Join(dir, "repermit.db"))
	if err != nil {
		t.Fatal(err)
	}
	st.Now = tl.clock.Now
	tl.st = st
	pages := web.New(st, web.Options{Business: web.Business{Name: "Example Coffee"}, PostRate: rate.Inf})
	hs := httptest.NewServer(pages)
	t.Cleanup(func() { hs.Close(); pages.Close(); st.Close() })
	tl.cfg = defaultConfig()
	tl.cfg.Web.BaseURL = hs.URL
	tl.cfg.Sender.Outbox = tl.outbox
	tl.cfg.Run.SegmentsDir = filepath.Join(dir, "segments")
	tl.cfg.Run.Rejects = filepath.Join(dir, "rejects")
	tl.cfg.Run.Segments = []string{"everyone"}
	if _, err := segments.Create(tl.ctx, st, "everyone", "confirmed:<100y"); err != nil {
		t.Fatal(err)
	}
	return tl
}

func (tl *timeline) at(day time.Time) { tl.clock.Set(day) }

// importFile sets the CRM export the next run imports.
func (tl *timeline) export(name, body string) {
	p := filepath.Join(tl.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		tl.t.Fatal(err)
	}
	tl.cfg.Run.Imports = []string{p}
}

func (tl *timeline) run() jobSummary {
	tl.t.Helper()
	j, err := jobFromConfig(tl.cfg)
	if err != nil {
		tl.t.Fatal(err)
	}
	sum, err := runJob(tl.ctx, tl.st, j)
	if err != nil {
		tl.t.Fatalf("run at %s: %v", tl.clock.Now().Format("2006-01-02"), err)
	}
	tl.cfg.Run.Imports = nil
	return sum
}

// mail returns the recipients of the messages written since the last call,
// remembering each one's token.
func (tl *timeline) mail() []string {
	tl.t.Helper()
	files, _ := filepath.Glob(filepath.Join(tl.outbox, "*.eml"))
	var to []string
	for _, f := range files {
		if tl.seen[f] {
			continue
		}
		tl.seen[f] = true
		r, err := os.Open(f)
		if err != nil {
			tl.t.Fatal(err)
		}
		m, err := mail.ReadMessage(r)
		if err != nil {
			tl.t.Fatal(err)
		}
		addr, err := mail.ParseAddress(m.Header.Get("To"))
		if err != nil {
			tl.t.Fatal(err)
		}
		lu := strings.Trim(m.Header.Get("List-Unsubscribe"), "<>")
		tl.tokens[addr.Address] = lu[strings.LastIndex(lu, "/")+1:]
		to = append(to, addr.Address)
		r.Close()
	}
	slices.Sort(to)
	return to
}

// answer posts to a page as a person pressing its button would.
func (tl *timeline) answer(email, page string, form url.Values) {
	tl.t.Helper()
	tok := tl.tokens[email]
	if tok == "" {
		tl.t.Fatalf("no invitation for %s", email)
	}
	resp, err := http.PostForm(tl.cfg.Web.BaseURL+"/"+page+"/"+tok, form)
	if err != nil {
		tl.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSeeOther {
		tl.t.Fatalf("POST /%s for %s: %d", page, email, resp.StatusCode)
	}
}

func (tl *timeline) confirm(email string, extra ...string) {
	form := url.Values{"decision": {"confirm"}, "interest": {"offers"}}
	if len(extra) > 0 {
		form.Set("phone", extra[0])
	}
	tl.answer(email, "c", form)
}

// segment reads the exported segment file: the emails of its rows.
func (tl *timeline) segment() []string {
	tl.t.Helper()
	f, err := os.Open(filepath.Join(tl.cfg.Run.SegmentsDir, "everyone.csv"))
	if err != nil {
		tl.t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		tl.t.Fatal(err)
	}
	var phones []string
	for _, r := range rows[1:] {
		phones = append(phones, r[0])
	}
	byPhone := map[string]string{
		"+4915100000001": "a1", "+4915100000002": "a2", "+4915100000003": "a3",
		"+4915100000007": "a7", "+4915100000011": "n1", "+4915100000012": "n2",
	}
	var out []string
	for _, p := range phones {
		out = append(out, byPhone[p])
	}
	slices.Sort(out)
	return out
}

func (tl *timeline) state(email string) string {
	tl.t.Helper()
	c, err := tl.st.ContactByEmail(tl.ctx, email)
	if err != nil {
		tl.t.Fatal(err)
	}
	cs, err := tl.st.Consent(tl.ctx, c.ID)
	if err != nil {
		tl.t.Fatal(err)
	}
	return cs[crm.ChannelEmail].Action + "/" + cs[crm.ChannelWhatsApp].Action
}

func expectList(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got == nil {
		got = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func emails(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, n+"@example.com")
	}
	return out
}

// TestRunTimeline drives the periodic job through two years with a
// controllable clock: invitations, answers on the real pages, reminders,
// expiry, a later export with new and unsubscribed people, WhatsApp STOP
// replies, and the refresh of ageing consent; at every step the messages
// sent, the consent states and the segment are exactly as the rules say.
func TestRunTimeline(t *testing.T) {
	day0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return day0.AddDate(0, 0, n) }
	tl := newTimeline(t, day0)
	header := "email,first name,phone,country,consent\n"
	tl.export("crm-2026-01.csv", header+
		"a1@example.com,A1,+4915100000001,DE,yes\n"+
		"a2@example.com,A2,+4915100000002,DE,yes\n"+
		"a3@example.com,A3,+4915100000003,DE,yes\n"+
		"a4@example.com,A4,+4915100000004,DE,yes\n"+
		"a5@example.com,A5,+4915100000005,DE,yes\n"+
		"a6@example.com,A6,+4915100000006,DE,yes\n"+
		"a7@example.com,A7,,DE,yes\n"+
		"u1@example.com,U1,+4915100000009,DE,unsubscribed\n"+
		"x1@example.com,X1,+4915100000010,DE,\n")

	// Day 0: import and invite everyone with email consent, nobody else.
	sum := tl.run()
	if sum.Import == nil || sum.Import.Created != 9 || sum.Invitations.Sent != 7 || sum.Reminders.Sent != 0 {
		t.Fatalf("day 0: %+v", sum)
	}
	expectList(t, "day 0 mail", tl.mail(), emails("a1", "a2", "a3", "a4", "a5", "a6", "a7")...)
	expectList(t, "day 0 segment", tl.segment())

	// Day 1: answers on the pages. a7 gives the missing number.
	tl.at(day(1))
	tl.confirm("a1@example.com")
	tl.confirm("a2@example.com")
	tl.confirm("a3@example.com")
	tl.confirm("a7@example.com", "+49 151 00000007")
	tl.answer("a4@example.com", "c", url.Values{"decision": {"decline"}})
	tl.answer("a5@example.com", "u", url.Values{"List-Unsubscribe": {"One-Click"}})
	tl.run()
	expectList(t, "day 1 mail", tl.mail())
	expectList(t, "day 1 segment", tl.segment(), "a1", "a2", "a3", "a7")
	if s := tl.state("a5@example.com"); s != "withdrawn/none" {
		t.Errorf("a5 after one-click unsubscribe = %s", s)
	}

	// Day 8: one reminder, to the only one who has not answered.
	tl.at(day(8))
	sum = tl.run()
	expectList(t, "day 8 mail", tl.mail(), emails("a6")...)
	if sum.Reminders.Sent != 1 || sum.Invitations.Sent != 0 {
		t.Errorf("day 8: %+v", sum)
	}
	// Day 9: the policy's one reminder was sent; nothing more.
	tl.at(day(9))
	tl.run()
	expectList(t, "day 9 mail", tl.mail())

	// Day 31: the unanswered invitation expires.
	tl.at(day(31))
	if sum = tl.run(); sum.InvitationsExpired != 1 {
		t.Errorf("day 31 expired = %d, want 1", sum.InvitationsExpired)
	}
	expectList(t, "day 31 mail", tl.mail())

	// Day 40: a new export with two new people; a1 unsubscribed from email
	// (WhatsApp stays confirmed), a6 unsubscribed too, a5 "subscribed" again.
	tl.at(day(40))
	tl.export("crm-2026-02.csv", header+
		"a1@example.com,A1,+4915100000001,DE,unsubscribed\n"+
		"a5@example.com,A5,+4915100000005,DE,yes\n"+
		"a6@example.com,A6,+4915100000006,DE,unsubscribed\n"+
		"n1@example.com,N1,+4915100000011,DE,yes\n"+
		"n2@example.com,N2,+4915100000012,DE,yes\n")
	sum = tl.run()
	expectList(t, "day 40 mail", tl.mail(), emails("n1", "n2")...)
	if s := tl.state("a1@example.com"); s != "withdrawn/confirmed" {
		t.Errorf("a1 after an email unsubscribe = %s, want withdrawn/confirmed", s)
	}
	if s := tl.state("a5@example.com"); s != "withdrawn/none" {
		t.Errorf("a5 re-imported as subscribed = %s: an opt-out must win", s)
	}
	tl.at(day(41))
	tl.confirm("n1@example.com")
	tl.run()
	expectList(t, "day 41 segment", tl.segment(), "a1", "a2", "a3", "a7", "n1")

	// Day 45: a2 replies STOP on WhatsApp.
	tl.at(day(45))
	res, err := tl.st.ImportOptouts(tl.ctx, strings.NewReader("phone,time\n+4915100000002,2026-02-19T10:00:00Z\n"), crm.OptoutOptions{})
	if err != nil || res.Withdrawn != 1 {
		t.Fatalf("STOP import: %+v %v", res, err)
	}
	tl.run()
	expectList(t, "day 45 segment", tl.segment(), "a1", "a3", "a7", "n1")
	expectList(t, "day 45 mail", tl.mail())

	// Two years on: consents confirmed on day 1 are asked for again (by
	// email, where email consent still stands: a3 and a7, not a1); the
	// people stay in the segment until the deadline. n1 is not due yet.
	tl.at(time.Date(2028, 1, 10, 9, 0, 0, 0, time.UTC))
	sum = tl.run()
	if sum.RefreshFlagged != 3 || sum.RefreshInvitations.Sent != 2 || sum.Invitations.Sent != 0 {
		t.Errorf("refresh run: flagged %d, refresh sent %d, invitations %d; want 3, 2, 0", sum.RefreshFlagged, sum.RefreshInvitations.Sent, sum.Invitations.Sent)
	}
	expectList(t, "refresh mail", tl.mail(), emails("a3", "a7")...)
	expectList(t, "refresh segment", tl.segment(), "a1", "a3", "a7", "n1")
	// Running again the same day changes nothing.
	if again := tl.run(); again.RefreshFlagged != 0 || again.RefreshInvitations.Sent != 0 {
		t.Errorf("second refresh run: %+v", again)
	}
	expectList(t, "refresh mail again", tl.mail())

	// a3 confirms again; the deadline passes for a1 and a7.
	tl.at(time.Date(2028, 1, 11, 9, 0, 0, 0, time.UTC))
	tl.confirm("a3@example.com")
	tl.at(time.Date(2028, 2, 10, 9, 0, 0, 0, time.UTC))
	sum = tl.run()
	if sum.ConsentsExpired != 2 {
		t.Errorf("consents expired = %d, want 2", sum.ConsentsExpired)
	}
	expectList(t, "after refresh deadline segment", tl.segment(), "a3", "n1")
	for email, want := range map[string]string{"a1@example.com": "withdrawn/expired", "a7@example.com": "granted/expired",
		"a3@example.com": "granted/confirmed", "a2@example.com": "granted/withdrawn", "u1@example.com": "withdrawn/none",
		"x1@example.com": "none/none", "a4@example.com": "granted/declined"} {
		if got := tl.state(email); got != want {
			t.Errorf("%s = %s, want %s", email, got, want)
		}
	}
	expectList(t, "after refresh mail", tl.mail())
	if v, err := tl.st.Verify(tl.ctx); err != nil || !v.OK {
		t.Errorf("consent verify: %+v %v", v, err)
	}
	// The funnel of the rolling campaign.
	f, err := invite.Status(tl.ctx, tl.st, tl.cfg.Run.Campaign)
	if err != nil || f.Invited != 9 || f.Confirmed != 5 || f.Declined != 1 || f.Unsubscribed != 1 {
		t.Errorf("funnel = %+v, %v", f, err)
	}
}
