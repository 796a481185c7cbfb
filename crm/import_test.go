package crm

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const realExports = "../../shared/fixtures/real-exports"

// importCase is testdata/import/<case>/case.json: how to import the other
// files of the folder and what must come out.
type importCase struct {
	Preset        string `json:"preset"`
	Map           string `json:"map"`
	DefaultRegion string `json:"default_region"`
	Want          struct {
		Rows, Created, Updated, Unchanged, Rejected, Eligible int64
	} `json:"want"`
	Rejects  [][2]any `json:"rejects"` // [line, reason prefix]
	Contacts map[string]struct {
		Email      *string           `json:"email"`
		Phone      *string           `json:"phone"`
		PhoneRaw   *string           `json:"phone_raw"`
		Country    *string           `json:"country"`
		Language   *string           `json:"language"`
		FirstName  *string           `json:"first_name"`
		LastName   *string           `json:"last_name"`
		Source     *string           `json:"source"`
		Suppressed *bool             `json:"suppressed"`
		Tags       []string          `json:"tags"`
		Attr       map[string]string `json:"attr"`
		Events     *int              `json:"events"`
		Evidence   map[string]string `json:"evidence"`
	} `json:"contacts"`
}

func TestImportCases(t *testing.T) {
	dirs, err := filepath.Glob("testdata/import/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var tc importCase
			b, err := os.ReadFile(filepath.Join(dir, "case.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &tc); err != nil {
				t.Fatal(err)
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*"))
			files = slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, "case.json") })
			mapping, err := ParseMap(tc.Map)
			if err != nil {
				t.Fatal(err)
			}
			st := MustOpen(t)
			opts := ImportOptions{Preset: tc.Preset, Map: mapping, DefaultRegion: tc.DefaultRegion}
			sum, rejects := mustImport(t, st, files, opts)
			got := [6]int64{sum.Rows, sum.Created, sum.Updated, sum.Unchanged, sum.Rejected, sum.Eligible}
			want := [6]int64{tc.Want.Rows, tc.Want.Created, tc.Want.Updated, tc.Want.Unchanged, tc.Want.Rejected, tc.Want.Eligible}
			if got != want {
				t.Errorf("rows created updated unchanged rejected eligible = %v, want %v\nrejects: %+v", got, want, rejects)
			}
			if sum.Rows != sum.Created+sum.Updated+sum.Unchanged+sum.Rejected {
				t.Errorf("rows are lost: %+v", sum)
			}
			for i, r := range tc.Rejects {
				if i >= len(rejects) {
					t.Errorf("missing reject %v", r)
					continue
				}
				if int(r[0].(float64)) != rejects[i].Line || !strings.HasPrefix(rejects[i].Reason, r[1].(string)) {
					t.Errorf("reject %d = line %d %q, want line %v %q", i, rejects[i].Line, rejects[i].Reason, r[0], r[1])
				}
				if len(rejects[i].Fields) == 0 {
					t.Errorf("reject %d carries no original row", i)
				}
			}
			for email, w := range tc.Contacts {
				c, cs := mustContact(t, st, email)
				check := func(what string, got string, want *string) {
					if want != nil && got != *want {
						t.Errorf("%s %s = %q, want %q", email, what, got, *want)
					}
				}
				check("email consent", cs[ChannelEmail].Action, w.Email)
				check("phone", c.Phone, w.Phone)
				check("phone_raw", c.PhoneRaw, w.PhoneRaw)
				check("country", c.Country, w.Country)
				check("language", c.Language, w.Language)
				check("first name", c.FirstName, w.FirstName)
				check("last name", c.LastName, w.LastName)
				check("source", c.Source, w.Source)
				if w.Suppressed != nil {
					sup, err := st.Suppressions(context.Background(), c)
					if err != nil {
						t.Fatal(err)
					}
					if (len(sup) > 0) != *w.Suppressed {
						t.Errorf("%s suppressed = %v, want %v", email, sup, *w.Suppressed)
					}
				}
				if w.Tags != nil && !slices.Equal(c.Tags, w.Tags) {
					t.Errorf("%s tags = %q, want %q", email, c.Tags, w.Tags)
				}
				for k, v := range w.Attr {
					if c.Attributes[k] != v {
						t.Errorf("%s attribute %q = %q, want %q", email, k, c.Attributes[k], v)
					}
				}
				evs, err := st.Events(context.Background(), c.ID)
				if err != nil {
					t.Fatal(err)
				}
				if w.Events != nil && len(evs) != *w.Events {
					t.Errorf("%s has %d events, want %d", email, len(evs), *w.Events)
				}
				for k, v := range w.Evidence {
					if len(evs) == 0 || evs[0].Evidence[k] != v {
						t.Errorf("%s evidence %q: events %+v, want %q", email, k, evs, v)
					}
				}
			}
			mustVerify(t, st)
			// Idempotent: the same files again change nothing and add no events.
			before := mustVerify(t, st).Events
			again, _ := mustImport(t, st, files, opts)
			if again.Created != 0 || again.Updated != 0 || again.Events != 0 || again.Suppressed != 0 ||
				again.Unchanged != sum.Created+sum.Updated+sum.Unchanged {
				t.Errorf("second import changed something: %+v", again)
			}
			if after := mustVerify(t, st).Events; after != before {
				t.Errorf("second import added %d events", after-before)
			}
		})
	}
}

// TestImportRealExports imports every real export as it is.
func TestImportRealExports(t *testing.T) {
	st := MustOpen(t)
	mc := filepath.Join(realExports, "mailchimp")
	files := []string{
		filepath.Join(mc, "subscribed.csv"), filepath.Join(mc, "unsubscribed.csv"), filepath.Join(mc, "cleaned.csv"),
		filepath.Join(mc, "mailchimp-export.csv"), filepath.Join(mc, "members_export_0d46a7760f.csv"),
	}
	sum, rejects := mustImport(t, st, files, ImportOptions{})
	if sum.Rows != 21 || sum.Created != 21 || sum.Rejected != 0 || len(rejects) != 0 {
		t.Fatalf("summary %+v, rejects %+v", sum, rejects)
	}
	if sum.Eligible != 11 { // subscribed (5) + the two older single-file exports (4 + 2)
		t.Errorf("eligible = %d, want 11", sum.Eligible)
	}
	for _, f := range sum.Files {
		if f.Preset != PresetMailchimp {
			t.Errorf("%s detected as %s", f.File, f.Preset)
		}
	}
	cases := map[string]struct{ consent, suppressedAs string }{
		"s2@example.com":                      {ActionGranted, ""},
		"u3@example.com":                      {ActionWithdrawn, ReasonUnsubscribed},
		"c2@example.com":                      {StateNone, ReasonBounced},
		"alice.apple@company-one.com":         {ActionGranted, ""},
		"bob.banana@noop.org":                 {ActionGranted, ""},
		"cheri.cherry@corp.company-three.com": {ActionGranted, ""},
	}
	for email, want := range cases {
		c, cs := mustContact(t, st, email)
		if cs[ChannelEmail].Action != want.consent {
			t.Errorf("%s email consent = %s, want %s", email, cs[ChannelEmail].Action, want.consent)
		}
		sup, _ := st.Suppressions(context.Background(), c)
		if want.suppressedAs == "" && len(sup) > 0 || want.suppressedAs != "" && (len(sup) != 1 || sup[0].Reason != want.suppressedAs) {
			t.Errorf("%s suppressions = %+v, want %q", email, sup, want.suppressedAs)
		}
	}
	// Padded values are trimmed; quoted tags are unwrapped.
	c, _ := mustContact(t, st, "u3@example.com")
	if c.FirstName != "Lorem" || c.LastName != "Ipsum" || !slices.Equal(c.Tags, []string{"Lorem Editors"}) ||
		c.Attributes["Company"] != "Example foundation" {
		t.Errorf("u3 = %+v", c)
	}
	// The opt-in evidence of the older export is the export's own.
	c, _ = mustContact(t, st, "bob.banana@noop.org")
	evs, _ := st.Events(context.Background(), c.ID)
	if len(evs) != 1 || evs[0].Method != "import:mailchimp" || evs[0].Evidence["confirm_ip"] != "203.0.113.99" ||
		evs[0].At.Format("2006-01-02 15:04:05") != "2015-04-16 18:54:42" {
		t.Errorf("bob's evidence = %+v", evs)
	}
	mustVerify(t, st)
}

// TestImportSalesforceDataLoaderFile reads Data Loader's own CSV
// conventions (every value quoted, upper-case API names). The sample is an
// Opportunity file with no email column, so it must fail with advice.
func TestImportSalesforceDataLoaderFile(t *testing.T) {
	st := MustOpen(t)
	_, err := st.Import(context.Background(), []string{filepath.Join(realExports, "salesforce", "success0413060133.csv")},
		ImportOptions{Preset: PresetSalesforce, Rejects: &sliceRejects{}})
	if err == nil || !strings.Contains(err.Error(), "no email column") || !strings.Contains(err.Error(), "--map") {
		t.Fatalf("err = %v, want a missing email column with a --map hint", err)
	}
}

// TestOptOutsWinInAnyOrder imports subscribed and unsubscribed files in
// both orders: the end state is the same and nobody unsubscribed is
// eligible.
func TestOptOutsWinInAnyOrder(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "subscribed_members_export_1.csv")
	unsub := filepath.Join(dir, "unsubscribed_members_export_1.csv")
	header := "Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,CC,LAST_CHANGED,LEID,EUID,NOTES\n"
	os.WriteFile(sub, []byte(header+"a@example.com,A,,2,,,2020-01-01 00:00:00,,,,1,e,\nb@example.com,B,,2,,,2020-01-01 00:00:00,,,,2,f,\n"), 0o644)
	os.WriteFile(unsub, []byte(strings.Replace(header, "LAST_CHANGED", "UNSUB_TIME", 1)+"a@example.com,A,,2,,,2020-01-01 00:00:00,,,2021-01-01 00:00:00,1,e,\n"), 0o644)
	state := func(order ...string) map[string]string {
		st := MustOpen(t)
		for _, f := range order {
			mustImport(t, st, []string{f}, ImportOptions{})
		}
		// The subscribed file again, last: still no resubscription.
		mustImport(t, st, []string{sub}, ImportOptions{})
		out := map[string]string{}
		for _, e := range []string{"a@example.com", "b@example.com"} {
			c, cs := mustContact(t, st, e)
			var n int
			st.read.QueryRow(`SELECT count(*) FROM invite_eligible WHERE contact_id = ?`, c.ID).Scan(&n)
			out[e] = cs[ChannelEmail].Action + map[bool]string{true: " eligible", false: ""}[n > 0]
		}
		mustVerify(t, st)
		return out
	}
	a := state(sub, unsub)
	b := state(unsub, sub)
	want := map[string]string{"a@example.com": ActionWithdrawn, "b@example.com": ActionGranted + " eligible"}
	for e, w := range want {
		if a[e] != w || b[e] != w {
			t.Errorf("%s: sub→unsub %q, unsub→sub %q, want %q", e, a[e], b[e], w)
		}
	}
	// A suppression from elsewhere (e.g. `suppress`) also wins over a re-import.
	st := MustOpen(t)
	if _, err := st.Suppress(context.Background(), []string{"b@example.com"}, ReasonComplained, "test"); err != nil {
		t.Fatal(err)
	}
	sum, _ := mustImport(t, st, []string{sub}, ImportOptions{})
	if sum.Eligible != 1 {
		t.Errorf("eligible = %d after importing a suppressed address, want 1", sum.Eligible)
	}
}

func TestImportWindows1252(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "excel.csv")
	// "Müller" and "Zoë" in Windows-1252, as Excel saves them.
	os.WriteFile(f, []byte("email;first name;last name;consent\r\nm@example.de;J\xfcrgen;M\xfcller;yes\r\nz@example.com;Zo\xeb;Smith;yes\r\n"), 0o644)
	st := MustOpen(t)
	_, err := st.Import(context.Background(), []string{f}, ImportOptions{Rejects: &sliceRejects{}})
	var ee *EncodingError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "--encoding windows-1252") {
		t.Fatalf("err = %v, want an EncodingError naming --encoding", err)
	}
	sum, _ := mustImport(t, st, []string{f}, ImportOptions{Encoding: "windows-1252"})
	if sum.Created != 2 {
		t.Fatalf("%+v", sum)
	}
	c, _ := mustContact(t, st, "m@example.de")
	if c.FirstName != "Jürgen" || c.LastName != "Müller" {
		t.Errorf("transcoded name = %q %q", c.FirstName, c.LastName)
	}
}

func TestImportUTF16WithBOM(t *testing.T) {
	// Excel's "Unicode text": UTF-16LE with a byte-order mark, tab-separated.
	text := "email\tfirst name\tconsent\r\nk@example.com\tKä\tyes\r\n"
	b := []byte{0xFF, 0xFE}
	for _, r := range text {
		b = append(b, byte(r), byte(r>>8))
	}
	f := filepath.Join(t.TempDir(), "unicode.txt")
	os.WriteFile(f, b, 0o644)
	st := MustOpen(t)
	sum, rej := mustImport(t, st, []string{f}, ImportOptions{})
	if sum.Created != 1 || len(rej) != 0 {
		t.Fatalf("%+v %+v", sum, rej)
	}
	if c, _ := mustContact(t, st, "k@example.com"); c.FirstName != "Kä" {
		t.Errorf("name = %q", c.FirstName)
	}
}

// TestImportMailchimpZip reads a zip of status files as Mailchimp sends it.
func TestImportMailchimpZip(t *testing.T) {
	zpath := filepath.Join(t.TempDir(), "export.zip")
	zf, _ := os.Create(zpath)
	zw := zip.NewWriter(zf)
	for _, name := range []string{"unsubscribed.csv", "subscribed.csv", "cleaned.csv"} {
		w, _ := zw.Create("audience_export_123/" + strings.TrimSuffix(name, ".csv") + "_members_export_123.csv")
		src, err := os.Open(filepath.Join(realExports, "mailchimp", name))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(w, src)
		src.Close()
	}
	zw.Close()
	zf.Close()
	st := MustOpen(t)
	sum, _ := mustImport(t, st, []string{zpath}, ImportOptions{})
	if sum.Rows != 15 || len(sum.Files) != 3 || sum.Eligible != 5 {
		t.Fatalf("%+v", sum)
	}
	_, cs := mustContact(t, st, "u1@example.com")
	if cs[ChannelEmail].Action != ActionWithdrawn {
		t.Errorf("u1 = %s, want withdrawn", cs[ChannelEmail].Action)
	}
}

func TestImportErrorsSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.csv")
	os.WriteFile(empty, nil, 0o644)
	noEmail := filepath.Join(dir, "names.csv")
	os.WriteFile(noEmail, []byte("name,city\nA,B\n"), 0o644)
	st := MustOpen(t)
	for path, want := range map[string]string{empty: "empty", noEmail: "--map"} {
		_, err := st.Import(context.Background(), []string{path}, ImportOptions{Rejects: &sliceRejects{}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to mention %q", filepath.Base(path), err, want)
		}
	}
	if _, err := ParseMap("Email"); err == nil {
		t.Error("ParseMap accepted an entry without =")
	}
	if _, err := ParseMap("Email=e-mail"); err == nil || !strings.Contains(err.Error(), "attr.NAME") {
		t.Errorf("ParseMap unknown field: %v", err)
	}
}

// FuzzImport feeds arbitrary bytes as a CSV export: the import must not
// panic, and every data row must be imported or rejected (nothing lost).
func FuzzImport(f *testing.F) {
	f.Add([]byte("email,first name,consent\na@example.com,A,yes\n"))
	f.Add([]byte("Email Address;First Name\n\"x@example.com\";\"multi\nline\"\n"))
	f.Add([]byte("\xef\xbb\xbfEMAIL;SMS;BLACKLISTED\nb@example.com;+4915112345678;1\n"))
	f.Add([]byte("email\n\"unterminated@example.com\n"))
	f.Add([]byte("email,phone\nc@example.com,+1 (415) 555-0132,extra\n"))
	st := MustOpen(f)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.csv")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		rej := &sliceRejects{}
		sum, err := st.Import(context.Background(), []string{path}, ImportOptions{Rejects: rej})
		if err != nil {
			return // a file-level error (no header, no email column, encoding) is reported, not lost
		}
		if sum.Rows != sum.Created+sum.Updated+sum.Unchanged+sum.Rejected || int64(len(rej.got)) != sum.Rejected {
			t.Fatalf("rows lost: %+v, %d rejects", sum, len(rej.got))
		}
	})
}

// TestImportExistingBeforeNewInOneBatch: a row that only adds an event for
// a known contact, then a new contact, in one batch (a regression: the
// gathered events were flushed before the gathered contacts).
func TestImportExistingBeforeNewInOneBatch(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first.csv")
	second := filepath.Join(dir, "second.csv")
	os.WriteFile(first, []byte("email,consent\nold@example.com,yes\n"), 0o644)
	os.WriteFile(second, []byte("email,consent\nold@example.com,unsubscribed\nnew@example.com,yes\n"), 0o644)
	st := MustOpen(t)
	mustImport(t, st, []string{first}, ImportOptions{})
	sum, _ := mustImport(t, st, []string{second}, ImportOptions{})
	if sum.Created != 1 || sum.Events != 2 || sum.Eligible != 1 {
		t.Errorf("%+v", sum)
	}
	mustVerify(t, st)
}

// TestImportProgress: progress starts at 0 and climbs to the file's size
// with the rows, from the writer's side (no race with the reader).
func TestImportProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subscribed_members_export_p.csv")
	writeMailchimpExport(t, path, 12000)
	st, _ := os.Stat(path)
	var calls [][2]int64
	s := MustOpen(t)
	_, err := s.Import(context.Background(), []string{path}, ImportOptions{Rejects: &sliceRejects{},
		Progress: func(file string, done, size, rows int64) {
			if size != st.Size() {
				t.Errorf("size %d, want %d", size, st.Size())
			}
			calls = append(calls, [2]int64{done, rows})
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) < 3 || calls[0] != [2]int64{0, 0} || calls[len(calls)-1] != [2]int64{st.Size(), 12000} {
		t.Fatalf("progress calls %v", calls)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i][0] < calls[i-1][0] || calls[i][1] < calls[i-1][1] {
			t.Fatalf("progress went back: %v", calls)
		}
	}
}
