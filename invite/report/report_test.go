package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite/report"
)

// day0 is when the seeded campaign was sent.
var day0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

func openReportStore(tb testing.TB) *crm.Store {
	tb.Helper()
	st, err := crm.Open(context.Background(), filepath.Join(tb.TempDir(), "repermit.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	st.Now = func() time.Time { return day0 }
	return st
}

// invite describes one seeded invitation.
type invite struct {
	status    string        // queued sending sent failed
	visited   bool          // opened the page
	response  string        // confirmed declined unsubscribed ""
	after     time.Duration // from sending to the response
	expires   time.Duration // from sending
	interests []string
}

// seedReport builds a campaign the way the sender and the pages leave it:
// contacts with email consent, a campaign with interests, invitations in
// every state, WhatsApp confirmations in the ledger with interests.
func seedReport(tb testing.TB, st *crm.Store, name string, created time.Time, invs []invite, uninvited int) {
	tb.Helper()
	ctx := context.Background()
	settings := `{"interests":[{"name":"offers","labels":{"en":"Offers and discounts"}},{"name":"recipes","labels":{"en":"Recipes"}},{"name":"events"}]}`
	err := st.Update(ctx, func(tx *crm.Tx) error {
		res, err := tx.Exec(`INSERT INTO campaigns (name, settings, statement_version, expiry_seconds, created_at) VALUES (?, ?, 'whatsapp-v1', 2592000, ?)`,
			name, settings, crm.FormatTime(created))
		if err != nil {
			return err
		}
		campaign, _ := res.LastInsertId()
		for i := range len(invs) + uninvited {
			id, _, err := tx.UpsertContact(crm.ContactInput{Email: fmt.Sprintf("%s-%d@example.com", name, i),
				Phone: fmt.Sprintf("+49151234%05d", i), Language: "en"})
			if err != nil {
				return err
			}
			if err := tx.AppendEvent(&crm.Event{ContactID: id, Channel: crm.ChannelEmail, Action: crm.ActionGranted,
				Method: "import:test", At: day0.AddDate(-1, 0, 0)}); err != nil {
				return err
			}
			if i >= len(invs) {
				continue
			}
			in := invs[i]
			sent, visit, responded := "", "", ""
			if in.status == "sent" {
				sent = crm.FormatTime(day0)
			}
			if in.visited {
				visit = crm.FormatTime(day0.Add(in.after / 2))
			}
			if in.response != "" {
				responded = crm.FormatTime(day0.Add(in.after))
			}
			visits := 0
			if in.visited {
				visits = 1
			}
			_, err = tx.Exec(`INSERT INTO invitations (campaign_id, contact_id, token_hash, status, sent_at, expires_at,
				first_visit_at, visits, response, responded_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				campaign, id, fmt.Sprintf("%s-token-%d", name, i), in.status, sent, crm.FormatTime(day0.Add(in.expires)),
				visit, visits, in.response, responded, crm.FormatTime(day0))
			if err != nil {
				return err
			}
			if in.response == "confirmed" || in.response == "declined" {
				if err := tx.AppendEvent(&crm.Event{ContactID: id, Channel: crm.ChannelWhatsApp, Action: in.response,
					At: day0.Add(in.after), Method: "invite:confirm-page", Campaign: name}); err != nil {
					return err
				}
			}
			if err := tx.SetInterests(id, in.interests); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// springInvites: 10 invitations: 1 failed, 1 queued, 8 delivered of which 4
// confirmed, 1 declined, 1 unsubscribed, 1 pending, 1 expired.
var springInvites = []invite{
	{status: "sent", visited: true, response: "confirmed", after: time.Hour, expires: 30 * 24 * time.Hour, interests: []string{"offers", "recipes"}},
	{status: "sent", visited: true, response: "confirmed", after: 2 * time.Hour, expires: 30 * 24 * time.Hour, interests: []string{"offers"}},
	{status: "sent", visited: true, response: "confirmed", after: 48 * time.Hour, expires: 30 * 24 * time.Hour, interests: []string{"offers"}},
	{status: "sent", visited: true, response: "confirmed", after: 51 * time.Hour, expires: 30 * 24 * time.Hour},
	{status: "sent", visited: true, response: "declined", after: 3 * time.Hour, expires: 30 * 24 * time.Hour},
	{status: "sent", response: "unsubscribed", after: 5 * time.Hour, expires: 30 * 24 * time.Hour},
	{status: "sent", visited: true, after: time.Hour, expires: 30 * 24 * time.Hour},
	{status: "sent", expires: 24 * time.Hour},
	{status: "failed", expires: 30 * 24 * time.Hour},
	{status: "queued", expires: 30 * 24 * time.Hour},
}

func TestBuildFunnelRatesDaysInterests(t *testing.T) {
	ctx := context.Background()
	st := openReportStore(t)
	seedReport(t, st, "spring", day0.AddDate(0, 0, -1), springInvites, 2)
	// One who confirmed said STOP later: no longer reachable.
	if _, err := st.ImportOptouts(ctx, strings.NewReader("phone,time\n+4915123400000,2026-01-20T00:00:00Z\n"), crm.OptoutOptions{}); err != nil {
		t.Fatal(err)
	}
	now := day0.Add(10 * 24 * time.Hour)
	rep, err := report.Build(ctx, st.DB(), report.Options{Campaign: "spring", Now: now, Business: "Example Coffee"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Campaigns) != 1 {
		t.Fatalf("%d campaigns", len(rep.Campaigns))
	}
	c := rep.Campaigns[0]
	want := report.Funnel{Eligible: 12, Invited: 10, Delivered: 8, Failed: 1, Queued: 1, Visited: 6, Confirmed: 4,
		Declined: 1, Unsubscribed: 1, Pending: 1, Expired: 1}
	if c.Funnel != want {
		t.Fatalf("funnel = %+v\nwant     %+v", c.Funnel, want)
	}
	if c.ConfirmationRate != 0.5 {
		t.Errorf("confirmation rate = %v, want 4/8", c.ConfirmationRate)
	}
	// Confirmations after 1 h, 2 h, 48 h, 51 h: the median is 25 h.
	if c.MedianToConfirm != 25*time.Hour || report.HumanDuration(c.MedianToConfirm) != "1 d 1 h" {
		t.Errorf("median = %v (%s), want 25h", c.MedianToConfirm, report.HumanDuration(c.MedianToConfirm))
	}
	if c.ReachableNow != 3 {
		t.Errorf("reachable now = %d, want 3 (one said STOP)", c.ReachableNow)
	}
	days := fmt.Sprint(c.Days)
	if days != "[{2026-01-05 2} {2026-01-06 0} {2026-01-07 2}]" {
		t.Errorf("confirmations per day = %s", days)
	}
	ins := fmt.Sprint(c.Interests)
	if ins != "[{offers Offers and discounts 3 0.75} {recipes Recipes 1 0.25} {events events 0 0}]" {
		t.Errorf("interests = %s", ins)
	}

	// The JSON carries the funnel under the contract's names.
	b, _ := json.Marshal(rep)
	for _, k := range []string{`"eligible":12`, `"invited":10`, `"delivered":8`, `"failed":1`, `"visited":6`, `"confirmed":4`,
		`"declined":1`, `"unsubscribed":1`, `"pending":1`, `"expired":1`, `"confirmation_rate":0.5`, `"median_seconds_to_confirm":90000`} {
		if !bytes.Contains(b, []byte(k)) {
			t.Errorf("JSON lacks %s: %s", k, b)
		}
	}

	// Before the pending invitation's expiry passes, the expired one was pending.
	early, err := report.Build(ctx, st.DB(), report.Options{Campaign: "spring", Now: day0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if f := early.Campaigns[0].Funnel; f.Pending != 2 || f.Expired != 0 {
		t.Errorf("an hour in: pending %d expired %d, want 2 and 0", f.Pending, f.Expired)
	}

	if _, err := report.Build(ctx, st.DB(), report.Options{Campaign: "nope"}); !errors.Is(err, report.ErrNoCampaign) {
		t.Errorf("unknown campaign: err = %v", err)
	}
}

func TestWriteTextAligned(t *testing.T) {
	ctx := context.Background()
	st := openReportStore(t)
	seedReport(t, st, "spring", day0.AddDate(0, 0, -1), springInvites, 2)
	seedReport(t, st, "autumn", day0, nil, 0)
	rep, err := report.Build(ctx, st.DB(), report.Options{Now: day0.Add(10 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := report.WriteText(&buf, rep); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"Campaign spring", "Campaign autumn", "confirmation rate", "50.0% of delivered",
		"1 d 1 h", "Offers and discounts 75.0% (3)"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	// In each campaign's table the counts end in one column.
	for _, block := range strings.Split(out, "Campaign ")[1:] {
		col := -1
		for _, line := range strings.Split(block, "\n") {
			fields := strings.Fields(line)
			if len(fields) < 2 || !isStage(fields[0]) {
				continue
			}
			end := strings.Index(line, " "+fields[1]) + 1 + len(fields[1])
			if col == -1 {
				col = end
			} else if end != col {
				t.Errorf("misaligned row %q: count ends at %d, want %d", line, end, col)
			}
		}
		if col == -1 {
			t.Errorf("no funnel table in %q", block)
		}
	}
}

func isStage(s string) bool {
	switch s {
	case "eligible", "invited", "delivered", "failed", "visited", "confirmed", "declined", "unsubscribed", "pending", "expired":
		return true
	}
	return false
}

func TestWriteHTMLSelfContained(t *testing.T) {
	ctx := context.Background()
	st := openReportStore(t)
	seedReport(t, st, "spring <b>&", day0.AddDate(0, 0, -1), springInvites, 2)
	rep, err := report.Build(ctx, st.DB(), report.Options{Now: day0.Add(10 * 24 * time.Hour), Business: "Kaffee & Co"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := report.WriteHTML(&buf, rep); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if n := strings.Count(page, "<svg"); n != 3 {
		t.Errorf("%d charts, want 3 (funnel, per day, interests)", n)
	}
	for _, bad := range []string{"<script", "src=", "href=\"http", "@import", "url(", "spring <b>"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q: it must be self-contained and escape what it shows", bad)
		}
	}
	for _, want := range []string{"Kaffee &amp; Co", "spring &lt;b&gt;&amp;", "50.0%", "Offers and discounts"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

// BenchmarkBuild measures the report over a campaign of 20,000 invitations.
func BenchmarkBuild(b *testing.B) {
	ctx := context.Background()
	st := openReportStore(b)
	invs := make([]invite, 20000)
	for i := range invs {
		invs[i] = springInvites[i%len(springInvites)]
		invs[i].after += time.Duration(i) * time.Minute
	}
	seedReport(b, st, "big", day0, invs, 1000)
	b.ResetTimer()
	for b.Loop() {
		if _, err := report.Build(ctx, st.DB(), report.Options{Now: day0.Add(60 * 24 * time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
}
