package segments

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// TestBaseCondition walks through each way a contact can fall outside the
// base condition; no rule, however wide, reaches them.
func TestBaseCondition(t *testing.T) {
	st := mustOpen(t)
	ctx := context.Background()
	at := testNow.AddDate(0, -1, 0)
	in := map[string]int64{}
	out := map[string]int64{}
	add := func(name, phone string) int64 {
		return addPerson(t, st, person{ContactInput: crm.ContactInput{Email: name + "@example.com", FirstName: name,
			Phone: phone, Country: "DE"}, Interests: []string{"offers"}})
	}
	// In: confirmed; confirmed then unsubscribed from email only.
	in["confirmed"] = add("confirmed", "+4915550000001")
	whatsapp(t, st, in["confirmed"], crm.ActionConfirmed, at, "spring")
	in["emailunsub"] = add("emailunsub", "+4915550000002")
	whatsapp(t, st, in["emailunsub"], crm.ActionConfirmed, at, "spring")
	if _, err := st.Suppress(ctx, []string{"emailunsub@example.com"}, crm.ReasonUnsubscribed, "one-click-unsubscribe"); err != nil {
		t.Fatal(err)
	}
	// Out.
	out["never"] = add("never", "+4915550000003")
	for _, action := range []string{crm.ActionDeclined, crm.ActionWithdrawn, crm.ActionExpired} {
		id := add(action, "+4915550000004")
		whatsapp(t, st, id, crm.ActionConfirmed, at, "spring")
		whatsapp(t, st, id, action, at.Add(time.Hour), "spring")
		out[action] = id
	}
	out["nophone"] = add("nophone", "")
	whatsapp(t, st, out["nophone"], crm.ActionConfirmed, at, "spring")
	for i, bad := range []string{"+49 1555 0000005", "4915550000005", "+0915550000005", "+12345", "+4915550000005123456", "+49155500000x5"} {
		id := add("badphone"+string(rune('a'+i)), bad)
		whatsapp(t, st, id, crm.ActionConfirmed, at, "spring")
		out["badphone "+bad] = id
	}
	out["complained"] = add("complained", "+4915550000006")
	whatsapp(t, st, out["complained"], crm.ActionConfirmed, at, "spring")
	if _, err := st.Suppress(ctx, []string{"complained@example.com"}, crm.ReasonComplained, "fbl"); err != nil {
		t.Fatal(err)
	}
	out["stop"] = add("stop", "+4915550000007")
	whatsapp(t, st, out["stop"], crm.ActionConfirmed, at, "spring")
	out["erased"] = add("erased", "+4915550000008")
	whatsapp(t, st, out["erased"], crm.ActionConfirmed, at, "spring")
	// Someone else confirmed with the number the erased person had: the
	// erasure suppressed that number everywhere.
	out["samephone"] = add("samephone", "+4915550000008")
	whatsapp(t, st, out["samephone"], crm.ActionConfirmed, at, "spring")
	if err := st.Update(ctx, func(tx *crm.Tx) error {
		_, err := tx.SuppressPhone("+4915550000007", crm.ReasonStop, "whatsapp:stop")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Forget(ctx, "erased@example.com"); err != nil {
		t.Fatal(err)
	}

	for _, rule := range []string{"", "interest:offers", "NOT interest:offers OR interest:offers", "country:DE OR NOT country:DE",
		"confirmed:<100y", "NOT confirmed:<1h OR confirmed:<1h"} {
		res, err := ExportRule(ctx, st, MustParse(rule), ExportOptions{Format: "jsonl", Columns: []string{"contact_id"},
			Out: filepath.Join(t.TempDir(), "out.jsonl")})
		if err != nil {
			t.Fatal(err)
		}
		got := readIDs(t, res.Files[0].Path)
		want := []int64{in["confirmed"], in["emailunsub"]}
		if !slices.Equal(got, want) {
			t.Errorf("rule %q exported contacts %v, want only %v (out: %v)", rule, got, want, out)
		}
		if res.Rows != 2 || mustCount(t, st, rule) != 2 {
			t.Errorf("rule %q: %d rows, count %d, want 2", rule, res.Rows, mustCount(t, st, rule))
		}
	}
}

func readIDs(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var row struct {
			ContactID int64 `json:"contact_id"`
		}
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		ids = append(ids, row.ContactID)
	}
	return ids
}

// goldenStore is a small audience with every kind of field an export
// writes: names that need CSV quoting, tags, attributes, several countries
// and calling codes.
func goldenStore(t *testing.T) *crm.Store {
	st := mustOpen(t)
	people := []person{
		{crm.ContactInput{Email: "anna@example.com", FirstName: "Anna", LastName: "Müller", Phone: "+4915550000001",
			Country: "DE", Language: "de", Tags: []string{"vip", "newsletter"}, Attributes: map[string]string{"city": "Berlin", "plan": "gold"},
			Source: "mailchimp"}, []string{"offers", "recipes"}},
		{crm.ContactInput{Email: "ben@example.com", FirstName: "Ben", LastName: `O"Neil, Jr.`, Phone: "+43660000002",
			Country: "AT", Language: "de-AT", Attributes: map[string]string{"city": "Wien"}, Source: "hubspot"}, []string{"offers"}},
		{crm.ContactInput{Email: "chloe@example.com", FirstName: " Chloé", LastName: "Line\nBreak", Phone: "+14155550003",
			Country: "US", Language: "en", Tags: []string{"summer sale"}, Source: "mailchimp"}, []string{"events"}},
		{crm.ContactInput{Email: "dev@example.com", FirstName: "Dev", Phone: "+919800000004", Country: "IN", Language: "hi"}, nil},
		{crm.ContactInput{Email: "eve@example.com", FirstName: "Eve", Phone: "+4915550000005", Country: "DE", Language: "de"},
			[]string{"recipes"}},
	}
	for i, p := range people {
		id := addPerson(t, st, p)
		if i < 4 {
			whatsapp(t, st, id, crm.ActionConfirmed, testNow.Add(-time.Duration(i+1)*24*time.Hour), "spring-2025")
		}
	}
	return st
}

func TestExportGolden(t *testing.T) {
	st := goldenStore(t)
	ctx := context.Background()
	if _, err := Create(ctx, st, "everyone", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ctx, st, "offers-dach", "interest:offers AND (country:DE OR country:AT)"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		golden  string
		segment string
		opts    ExportOptions
	}{
		{"everyone.csv", "everyone", ExportOptions{}},
		{"everyone.jsonl", "everyone", ExportOptions{Format: "jsonl"}},
		{"everyone-interakt.csv", "everyone", ExportOptions{Format: "interakt"}},
		{"everyone-twilio.csv", "everyone", ExportOptions{Format: "twilio"}},
		{"everyone-digits.csv", "everyone", ExportOptions{Format: "digits"}},
		{"offers-dach-columns.csv", "offers-dach", ExportOptions{Columns: []string{"first_name", "phone_e164", "attr.city", "campaign", "interests"}}},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), c.golden)
			c.opts.Out = out
			res, err := Export(ctx, st, c.segment, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", c.golden)
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", out, golden, got, want)
			}
			checkManifest(t, res, got)
		})
	}
}

// checkManifest checks the manifest beside an export against the file.
func checkManifest(t *testing.T, res ExportResult, file []byte) {
	t.Helper()
	b, err := os.ReadFile(res.Manifest)
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	var m ExportResult
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(file)
	if len(m.Files) != 1 || m.Files[0].SHA256 != hex.EncodeToString(sum[:]) || m.Files[0].Rows != res.Rows ||
		m.Rows != res.Rows || m.Rule != res.Rule || !m.At.Equal(testNow) || m.Files[0].Path != filepath.Base(res.Files[0].Path) {
		t.Errorf("manifest %s does not describe the export: %+v", b, res)
	}
}

func TestExportBatchesAndStdout(t *testing.T) {
	st := goldenStore(t)
	ctx := context.Background()
	if _, err := Create(ctx, st, "everyone", ""); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := Export(ctx, st, "everyone", ExportOptions{BatchSize: 3, Out: filepath.Join(dir, "all.csv")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 4 || len(res.Files) != 2 || res.Files[0].Rows != 3 || res.Files[1].Rows != 1 ||
		filepath.Base(res.Files[0].Path) != "all-001.csv" || filepath.Base(res.Files[1].Path) != "all-002.csv" {
		t.Fatalf("batches: %+v", res)
	}
	var joined []string
	for i, f := range res.Files {
		b, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("file %d: sha256 in result does not match", i)
		}
		lines := strings.SplitAfter(string(b), "\n")
		if !strings.HasPrefix(lines[0], "phone_e164,") {
			t.Errorf("batch %d has no header: %q", i, lines[0])
		}
		joined = append(joined, lines[1:]...)
	}
	var stdout bytes.Buffer
	one, err := Export(ctx, st, "everyone", ExportOptions{Out: "-", Stdout: &stdout})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.SplitAfterN(stdout.String(), "\n", 2)[1]; got != strings.Join(joined, "") {
		t.Errorf("the batches together differ from the whole export:\n%s\nvs\n%s", strings.Join(joined, ""), got)
	}
	if one.Manifest != "" || len(one.Files) != 1 || one.Files[0].Path != "" {
		t.Errorf("stdout export: %+v", one)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"all-001.csv", "all-002.csv", "all.csv.manifest.json"}; !slices.Equal(names, want) {
		t.Errorf("directory holds %v, want %v (no temporary files left)", names, want)
	}
	d, err := Show(ctx, st, "everyone", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Exports) != 2 || d.Exports[0].Rows != 4 || d.Exports[1].Format != "csv" || len(d.Exports[1].Files) != 2 {
		t.Errorf("the audit trail holds %+v", d.Exports)
	}

	for _, bad := range []ExportOptions{
		{Out: "-", BatchSize: 10, Stdout: &stdout},
		{Format: "whatsapp-web", Out: filepath.Join(dir, "x")},
		{Format: "interakt", Columns: []string{"phone_e164"}, Out: filepath.Join(dir, "x")},
		{Columns: []string{"phone", "password"}, Out: filepath.Join(dir, "x")},
		{Out: ""},
	} {
		if _, err := Export(ctx, st, "everyone", bad); !errors.Is(err, ErrUsage) {
			t.Errorf("Export(%+v) = %v, want ErrUsage", bad, err)
		}
	}
	if _, err := Export(ctx, st, "everyone", ExportOptions{Out: filepath.Join(dir, "missing", "x.csv")}); err == nil ||
		!strings.Contains(err.Error(), "writable") {
		t.Errorf("export into a missing directory: %v", err)
	}
}

func TestCreateListShow(t *testing.T) {
	st := goldenStore(t)
	ctx := context.Background()
	if _, err := Create(ctx, st, "offers", "interest:offers"); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ctx, st, "offers", "interest:recipes"); !errors.Is(err, ErrExists) {
		t.Errorf("second create: %v, want ErrExists", err)
	}
	var pe *ParseError
	if _, err := Create(ctx, st, "broken", "interest:"); !errors.As(err, &pe) {
		t.Errorf("create with a bad rule: %v, want a ParseError", err)
	}
	if _, err := Create(ctx, st, "../etc", "interest:offers"); err == nil {
		t.Error("a name with a path in it was accepted")
	}
	if _, err := Get(ctx, st, "broken"); !errors.Is(err, crm.ErrNotFound) {
		t.Errorf("a rejected segment was stored: %v", err)
	}
	if _, err := Create(ctx, st, "recent", "confirmed:<36h"); err != nil {
		t.Fatal(err)
	}
	list, err := List(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "offers" || list[0].Count != 2 || list[1].Name != "recent" || list[1].Count != 1 {
		t.Errorf("list: %+v", list)
	}
	// The clock moves: nobody confirmed in the last 36 hours any more.
	st.Now = func() time.Time { return testNow.Add(48 * time.Hour) }
	if n := mustCount(t, st, "confirmed:<36h"); n != 0 {
		t.Errorf("two days later confirmed:<36h counts %d, want 0", n)
	}
	st.Now = func() time.Time { return testNow }

	d, err := Show(ctx, st, "offers", 5)
	if err != nil {
		t.Fatal(err)
	}
	if d.Count != 2 || len(d.Samples) != 2 || d.Canonical != "interest:offers" {
		t.Fatalf("show: %+v", d)
	}
	for _, s := range d.Samples {
		if !strings.Contains(s.Phone, "•") || strings.Contains(s.Phone, "0000001") || strings.Contains(s.Phone, "0000002") {
			t.Errorf("sample phone %q is not masked", s.Phone)
		}
	}
	wantInterests := []InterestCount{{"offers", 2}, {"recipes", 1}}
	if !slices.Equal(d.Interests, wantInterests) {
		t.Errorf("interest breakdown %+v, want %+v", d.Interests, wantInterests)
	}
	if _, err := Replace(ctx, st, "offers", "interest:recipes"); err != nil {
		t.Fatal(err)
	}
	if d, _ := Show(ctx, st, "offers", 0); d.Count != 1 || d.Rule != "interest:recipes" || len(d.Samples) != 0 {
		t.Errorf("after replace: %+v", d)
	}
	if _, err := Show(ctx, st, "nope", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("show of an unknown segment: %v", err)
	}
}

func TestMaskPhone(t *testing.T) {
	for in, want := range map[string]string{"+4915550000001": "+491••••••••01", "+123": "••••", "": ""} {
		if got := MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}
