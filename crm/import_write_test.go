package crm

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"
)

// The importer encodes evidence and canonical event JSON by hand; consent
// verify recomputes them with encoding/json, so the bytes must be the same
// for any text an export can hold.
func TestImportEncodingMatchesLedger(t *testing.T) {
	odd := []string{"", "plain", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\r", "\x00\x1f\x7f",
		"Müller – Straße", "bad utf8 \xff\xfe", "line\u2028sep\u2029", "emoji 😀", "import:mailchimp"}
	for _, a := range odd {
		for _, b := range odd {
			kv := [][2]string{{"file", a}, {"line", "12"}, {"preset", b}, {"optin_ip", b + a}, {"status", a}}
			m := map[string]string{}
			for _, p := range kv {
				m[p[0]] = p[1]
			}
			got := encodeEvidence(kv)
			want := evidenceJSON(m)
			if !bytes.Equal(got, want) {
				t.Fatalf("evidence %q:\n got %s\nwant %s", kv, got, want)
			}
			e := &Event{ID: 42, ContactID: 7, Channel: ChannelEmail, Action: ActionGranted,
				At: time.Date(2023, 4, 21, 11, 16, 57, 0, time.UTC), RecordedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
				Method: a}
			want = canonicalWith(e, want)
			head := `{"id":42,"contact_id":7,"channel":"email","action":"granted","at":"` + FormatTime(e.At) +
				`","recorded_at":"` + FormatTime(e.RecordedAt) + `",`
			tail, ev := eventTail(a, got)
			if full := append([]byte(head), tail...); !bytes.Equal(full, want) || ev != string(got) {
				t.Fatalf("canonical:\n got %s\nwant %s", full, want)
			}
		}
	}
	if got := encodeEvidence(nil); string(got) != "{}" {
		t.Fatalf("empty evidence %s", got)
	}
}

// Events the importer writes verify, and read back as AppendEvent's would.
func TestImportedEventsVerify(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "subscribed_members_export_x.csv")
	writeMailchimpExport(t, src, 300)
	st, err := Open(context.Background(), filepath.Join(dir, "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sum, err := st.Import(context.Background(), []string{src}, ImportOptions{Rejects: &countRejects{}, BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Created != 300 || sum.Events != 300 {
		t.Fatalf("summary %+v", sum)
	}
	res, err := st.Verify(context.Background())
	if err != nil || !res.OK || res.Events != 300 {
		t.Fatalf("verify %+v %v", res, err)
	}
	c, err := st.ContactByEmail(context.Background(), "user18@example.com")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := st.Events(context.Background(), c.ID)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events %v %v", evs, err)
	}
	ev := evs[0]
	if ev.Action != ActionGranted || ev.Method != "import:mailchimp" || ev.Evidence["line"] != "20" ||
		ev.Evidence["confirm_ip"] != "198.51.100.18" || ev.Evidence["status"] != StatusSubscribed || digestOf(&ev) != ev.Digest {
		t.Fatalf("event %+v", ev)
	}
	if c.Phone == "" || c.Country != "GB" {
		t.Fatalf("contact %+v", c)
	}
	var ph string
	if err := st.DB().QueryRow(`SELECT phone_hash FROM contacts WHERE id = ?`, c.ID).Scan(&ph); err != nil || ph != st.HashPhone(c.Phone) {
		t.Fatalf("phone hash %q %v", ph, err)
	}
}

// The workers' hasher and tag/attribute encoding give the store's bytes.
func TestImportHasherAndTagsMatchStore(t *testing.T) {
	st, err := Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := newKeyedHasher(st.salt)
	for _, v := range []string{"", "a@b.example", "+4915112345678", "müller@exämple.de", "x"} {
		if got, want := h.email(v), st.HashEmail(v); got != want {
			t.Fatalf("email %q: %s, want %s", v, got, want)
		}
		if got, want := h.phone(v), st.HashPhone(v); got != want {
			t.Fatalf("phone %q: %s, want %s", v, got, want)
		}
	}
	odd := []string{"", "VIP", `a "quoted" tag`, "<b>&</b>", "tab\there", "Straße", "\xff"}
	for i := range odd {
		c := Contact{Tags: odd[:i], Attributes: map[string]string{}}
		for j, k := range odd[i:] {
			c.Attributes[k+"k"] = odd[j]
		}
		gt, ga := encodeTagsAttrsFast(c)
		wt, wa := encodeTagsAttrs(c)
		if gt != wt || ga != wa {
			t.Fatalf("tags/attrs:\n got %s %s\nwant %s %s", gt, ga, wt, wa)
		}
	}
}

// A bulkSelect copies exactly the rows it was given, by one id range when
// they are consecutive and by their ids when another row came between.
func TestBulkSelectCopiesGivenRows(t *testing.T) {
	st, err := Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Update(context.Background(), func(tx *Tx) error {
		if _, err := tx.Exec(`CREATE TEMP TABLE src (id INTEGER PRIMARY KEY, v TEXT);
			CREATE TEMP TABLE dst (id INTEGER, v TEXT);
			INSERT INTO src VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e'), (6, 'f')`); err != nil {
			return err
		}
		for _, ids := range [][]int64{{2, 3, 4}, {1, 5, 6}} {
			b := tx.bulkSelect("INSERT INTO dst (id, v)", "id, v FROM src", "", rankCurrent)
			for _, id := range ids {
				b.bulkAddID(id)
			}
			if err := tx.flushBulk(); err != nil {
				return err
			}
		}
		var got string
		if err := tx.QueryRow(`SELECT group_concat(v, '') FROM (SELECT v FROM dst ORDER BY rowid)`).Scan(&got); err != nil {
			return err
		}
		if got != "bcdaef" {
			t.Errorf("copied %q, want bcdaef", got)
		}
		_, err := tx.Exec(`DROP TABLE dst; DROP TABLE src`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
