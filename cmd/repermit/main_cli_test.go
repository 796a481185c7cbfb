package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/repermit/repermit/crm"
)

var (
	cliBinaryOnce sync.Once
	cliBinaryPath string
	cliBinaryErr  error
)

// cliBinary builds repermit once per test run; CLI tests run it as a user
// would and check exit codes, stdout and stderr.
func cliBinary(t *testing.T) string {
	t.Helper()
	cliBinaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "repermit-cli-")
		if err != nil {
			cliBinaryErr = err
			return
		}
		cliBinaryPath = filepath.Join(dir, "repermit")
		out, err := exec.Command("go", "build", "-o", cliBinaryPath, ".").CombinedOutput()
		if err != nil {
			cliBinaryErr = errors.New(string(out))
		}
	})
	if cliBinaryErr != nil {
		t.Fatalf("build: %v", cliBinaryErr)
	}
	return cliBinaryPath
}

type binResult struct {
	code           int
	stdout, stderr string
}

// runBinary runs the binary in dir with args.
func runBinary(t *testing.T, dir string, args ...string) binResult {
	t.Helper()
	cmd := exec.Command(cliBinary(t), args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REPERMIT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return binResult{code, out.String(), errb.String()}
}

func decodeOneJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, s)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON object:\n%s", s)
	}
	return m
}

func TestCLIImportShowVerify(t *testing.T) {
	dir := t.TempDir()
	real, _ := filepath.Abs("../../../shared/fixtures/real-exports/mailchimp")
	bad := filepath.Join(dir, "broken.csv")
	os.WriteFile(bad, []byte("email,consent\nok@example.com,yes\nbroken,yes\n"), 0o644)

	r := runBinary(t, dir, "import", "--json", "--rejects", "rej.csv", filepath.Join(real, "subscribed.csv"), filepath.Join(real, "unsubscribed.csv"), bad)
	if r.code != 0 {
		t.Fatalf("import exit %d: %s", r.code, r.stderr)
	}
	sum := decodeOneJSON(t, r.stdout)
	for key, want := range map[string]float64{"rows": 12, "created": 11, "updated": 0, "unchanged": 0, "rejected": 1, "eligible": 6} {
		if sum[key] != want {
			t.Errorf("import %s = %v, want %v", key, sum[key], want)
		}
	}
	rej, err := os.ReadFile(filepath.Join(dir, "rej.csv"))
	if err != nil || !strings.Contains(string(rej), "broken.csv,3,\"invalid email") {
		t.Errorf("rejects file = %q, %v", rej, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "repermit.db")); err != nil {
		t.Errorf("import did not create the default database: %v", err)
	}

	r = runBinary(t, dir, "contacts", "show", "U2@example.com", "--json")
	if r.code != 0 {
		t.Fatalf("contacts show exit %d: %s", r.code, r.stderr)
	}
	show := decodeOneJSON(t, r.stdout)
	for _, k := range []string{"email", "phone", "suppressed", "consent", "events"} {
		if _, ok := show[k]; !ok {
			t.Errorf("contacts show --json lacks %q", k)
		}
	}
	consent := show["consent"].(map[string]any)
	if consent["email"] != "withdrawn" || consent["whatsapp"] != "none" || show["suppressed"] != true {
		t.Errorf("u2 consent = %v, suppressed = %v", consent, show["suppressed"])
	}
	if evs := show["events"].([]any); len(evs) != 1 || evs[0].(map[string]any)["method"] != "import:mailchimp" {
		t.Errorf("u2 events = %v", evs)
	}

	r = runBinary(t, dir, "consent", "verify", "--json")
	v := decodeOneJSON(t, r.stdout)
	if r.code != 0 || v["ok"] != true || v["events"] != float64(11) {
		t.Errorf("consent verify: exit %d, %v, %s", r.code, v, r.stderr)
	}
}

func TestCLIErrorsAndExitCodes(t *testing.T) {
	dir := t.TempDir()
	latin := filepath.Join(dir, "excel.csv")
	os.WriteFile(latin, []byte("email;name;consent\nm@example.de;M\xfcller;yes\n"), 0o644)
	cases := []struct {
		args       []string
		code       int
		stderrWant []string
	}{
		{[]string{"import"}, 2, []string{"Error: import needs at least one file", "Try:"}},
		{[]string{"import", "--preset", "nope", "x.csv"}, 2, []string{"unknown preset", "--preset auto|mailchimp"}},
		{[]string{"import", "--map", "Email", "x.csv"}, 2, []string{"not Header=field"}},
		{[]string{"import", "missing.csv"}, 1, []string{"cannot read missing.csv", "Try:"}},
		{[]string{"import", latin}, 1, []string{"not UTF-8", "Try: repermit import --encoding windows-1252"}},
		{[]string{"--db", "nowhere.db", "contacts", "show", "a@example.com"}, 1, []string{"no database at nowhere.db", "Try:"}},
		{[]string{"contacts", "forget", "a@example.com"}, 2, []string{"--yes"}},
		{[]string{"frobnicate"}, 2, []string{"no command"}},
		{[]string{"import", "--bogus-flag", "x.csv"}, 2, []string{"flag provided but not defined", "Try: repermit import --help"}},
	}
	for _, tc := range cases {
		r := runBinary(t, dir, tc.args...)
		if r.code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, r.code, tc.code, r.stderr)
		}
		for _, w := range tc.stderrWant {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%v: stderr %q lacks %q", tc.args, r.stderr, w)
			}
		}
	}
	// With --encoding the same file imports.
	r := runBinary(t, dir, "import", "--encoding", "windows-1252", "--json", latin)
	if r.code != 0 || decodeOneJSON(t, r.stdout)["created"] != float64(1) {
		t.Errorf("import --encoding: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
}

func TestCLIInitWritesConfigAndDatabase(t *testing.T) {
	dir := t.TempDir()
	r := runBinary(t, dir, "init", "--business", "Acme \"Coffee\"", "--from", "Acme <news@acme.example>", "--base-url", "https://optin.acme.example/")
	if r.code != 0 {
		t.Fatalf("init: %d %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "repermit.toml"))
	if err != nil || !strings.Contains(string(b), `name = "Acme \"Coffee\""`) || !strings.Contains(string(b), `base_url = "https://optin.acme.example"`) {
		t.Fatalf("config = %s, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "repermit.db")); err != nil {
		t.Error("init did not create the database")
	}
	// The written file loads (a later command reads it) and init refuses to overwrite it.
	if r := runBinary(t, dir, "consent", "verify"); r.code != 0 {
		t.Errorf("verify with the written config: %d %s", r.code, r.stderr)
	}
	if r := runBinary(t, dir, "init"); r.code != 1 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("second init: %d %s", r.code, r.stderr)
	}
	os.WriteFile(filepath.Join(dir, "repermit.toml"), []byte("[business]\nnmae = \"typo\"\n"), 0o644)
	if r := runBinary(t, dir, "import", "x.csv"); r.code != 1 || !strings.Contains(r.stderr, "unknown setting") {
		t.Errorf("typo in config: %d %s", r.code, r.stderr)
	}
}

func TestCLIDemo(t *testing.T) {
	dir := t.TempDir()
	r := runBinary(t, dir, "demo", "--dir", filepath.Join(dir, "demo"))
	if r.code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"contacts may be invited", "hash chain ok=true", "rows rejected", "invitations sent",
		"pressed \"Yes, message me on WhatsApp\"", "offers-dach", "confirmation rate"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	demo := filepath.Join(dir, "demo")
	for _, f := range []string{"report.html", "proof-pack.json", "consent-receipts.jsonl", "segments/offers-dach.csv",
		"segments/offers-dach.csv.manifest.json", "segments/everyone-interakt.csv", "rejects.csv"} {
		if st, err := os.Stat(filepath.Join(demo, f)); err != nil || st.Size() == 0 {
			t.Errorf("demo did not write %s: %v", f, err)
		}
	}
	emls, _ := filepath.Glob(filepath.Join(demo, "outbox", "*.eml"))
	if len(emls) != 180 {
		t.Errorf("outbox holds %d invitations, want 180", len(emls))
	}
	// The answers went through the pages: the evidence carries the demo's agent.
	v := runBinary(t, dir, "--db", filepath.Join(demo, "repermit.db"), "consent", "verify", "--json")
	if v.code != 0 || !strings.Contains(v.stdout, `"ok": true`) {
		t.Errorf("consent verify of the demo: %s %s", v.stdout, v.stderr)
	}
	b, _ := os.ReadFile(filepath.Join(demo, "consent-receipts.jsonl"))
	if !strings.Contains(string(b), "KI-CR-v1.1.0") {
		t.Error("no consent receipt in the demo")
	}
}

// openTestStore opens (creating) the database at path for seeding; it is
// closed when the test ends.
func openTestStore(t *testing.T, path string) *crm.Store {
	t.Helper()
	st, err := crm.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
