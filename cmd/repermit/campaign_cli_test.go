package main

import (
	"bytes"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// campaignKeys checks that a JSON summary has exactly the contract's keys.
func campaignKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	var got []string
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s JSON keys %v, want %v", what, got, want)
	}
}

// campaignNumbers checks numeric fields of a JSON summary.
func campaignNumbers(t *testing.T, what string, m map[string]any, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s %s = %v, want %v (%v)", what, k, m[k], v, m)
		}
	}
}

// The campaign commands run as a user runs them: init, import a real
// export, create a campaign, dry-run, send into an outbox (flags after the
// campaign name), send again (nothing), and read the funnel; JSON keys and
// exit codes as the contract has them.
func TestCampaignCLICreateSendStatus(t *testing.T) {
	dir := t.TempDir()
	if r := runBinary(t, dir, "init", "--business", "Example Roasters", "--from", "Example Roasters <hello@shop.example>",
		"--base-url", "https://optin.shop.example"); r.code != 0 {
		t.Fatalf("init: %d %s", r.code, r.stderr)
	}
	real, _ := filepath.Abs("../../../shared/fixtures/real-exports/mailchimp")
	r := runBinary(t, dir, "import", "--json", filepath.Join(real, "subscribed.csv"), filepath.Join(real, "unsubscribed.csv"))
	if r.code != 0 {
		t.Fatalf("import: %d %s", r.code, r.stderr)
	}
	n, _ := decodeOneJSON(t, r.stdout)["eligible"].(float64)
	if n < 2 {
		t.Fatalf("the fixture has %v eligible contacts", n)
	}

	r = runBinary(t, dir, "campaign", "create", "spring", "--json", "--interests", "offers,recipes")
	if r.code != 0 {
		t.Fatalf("campaign create: %d %s", r.code, r.stderr)
	}
	if c := decodeOneJSON(t, r.stdout); c["name"] != "spring" || c["created"] != true {
		t.Errorf("create: %v", c)
	}
	r = runBinary(t, dir, "campaign", "create", "spring", "--json")
	if c := decodeOneJSON(t, r.stdout); r.code != 0 || c["created"] != false {
		t.Errorf("second create: %d %v", r.code, c)
	}

	r = runBinary(t, dir, "campaign", "send", "spring", "--dry-run", "--json", "--sample", "sample.eml")
	if r.code != 0 {
		t.Fatalf("dry run: %d %s", r.code, r.stderr)
	}
	dry := decodeOneJSON(t, r.stdout)
	campaignKeys(t, "dry run", dry, "eligible", "queued", "sent", "failed", "skipped")
	campaignNumbers(t, "dry run", dry, map[string]float64{"eligible": n, "queued": 0, "sent": 0})
	if _, err := os.Stat(filepath.Join(dir, "sample.eml")); err != nil {
		t.Errorf("dry run wrote no sample: %v", err)
	}

	r = runBinary(t, dir, "campaign", "send", "spring", "--json", "--outbox", "out", "--concurrency", "2")
	if r.code != 0 {
		t.Fatalf("send: %d %s", r.code, r.stderr)
	}
	sent := decodeOneJSON(t, r.stdout)
	campaignKeys(t, "send", sent, "eligible", "queued", "sent", "failed", "skipped")
	campaignNumbers(t, "send", sent, map[string]float64{"eligible": n, "queued": n, "sent": n, "failed": 0, "skipped": 0})
	if strings.Contains(r.stderr, "@") {
		t.Errorf("send's log carries an address:\n%s", r.stderr)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*.eml"))
	if len(files) != int(n) {
		t.Fatalf("%d files in the outbox, want %v", len(files), n)
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		m, err := mail.ReadMessage(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !regexp.MustCompile(`^<https://optin\.shop\.example/u/[A-Za-z0-9_-]{32}>$`).MatchString(m.Header.Get("List-Unsubscribe")) ||
			m.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
			t.Errorf("%s: List-Unsubscribe %q", f, m.Header.Get("List-Unsubscribe"))
		}
	}

	// Again: everyone is invited already.
	r = runBinary(t, dir, "campaign", "send", "spring", "--outbox", "out", "--json")
	campaignNumbers(t, "second send", decodeOneJSON(t, r.stdout), map[string]float64{"eligible": 0, "queued": 0, "sent": 0})

	r = runBinary(t, dir, "campaign", "status", "spring", "--json")
	if r.code != 0 {
		t.Fatalf("status: %d %s", r.code, r.stderr)
	}
	st := decodeOneJSON(t, r.stdout)
	campaignKeys(t, "status", st, "invited", "sent", "failed", "visited", "confirmed", "declined", "unsubscribed", "pending", "expired")
	campaignNumbers(t, "status", st, map[string]float64{"invited": n, "sent": n, "failed": 0, "visited": 0, "confirmed": 0, "pending": n, "expired": 0})

	r = runBinary(t, dir, "campaign", "remind", "spring", "--outbox", "out", "--json")
	rem := decodeOneJSON(t, r.stdout)
	campaignKeys(t, "remind", rem, "due", "sent", "failed", "skipped")
	campaignNumbers(t, "remind (too early)", rem, map[string]float64{"due": 0, "sent": 0})

	r = runBinary(t, dir, "campaign", "list", "--json")
	if l, ok := decodeOneJSON(t, r.stdout)["campaigns"].([]any); r.code != 0 || !ok || len(l) != 1 {
		t.Errorf("list: %d %s", r.code, r.stdout)
	}

	// Exit codes: 1 with what went wrong and what to do, 2 for usage.
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"campaign", "send", "nosuch", "--json", "--outbox", "out"}, 1, "campaign list"},
		{[]string{"campaign", "status", "nosuch", "--json"}, 1, "campaign create"},
		{[]string{"campaign", "send"}, 2, "campaign name"},
		{[]string{"campaign", "send", "spring", "--concurrency", "-1"}, 2, "must not be negative"},
		{[]string{"campaign", "send", "spring", "--smtp", "http://x"}, 2, "smtp://"},
		{[]string{"campaign", "send", "spring", "--no-such-flag"}, 2, ""},
	} {
		r := runBinary(t, dir, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, "Error:") || !strings.Contains(r.stderr, tc.err) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.err)
		}
		if tc.code == 1 && !strings.Contains(r.stderr, "Try:") {
			t.Errorf("%v: no hint in %q", tc.args, r.stderr)
		}
	}
}
