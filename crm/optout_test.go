package crm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openStopStore opens a fresh store in t.TempDir() with a fixed clock.
func openStopStore(tb testing.TB) *Store {
	tb.Helper()
	st, err := Open(context.Background(), filepath.Join(tb.TempDir(), "repermit.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	st.Now = func() time.Time { return time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC) }
	return st
}

// addStopContact creates a contact with a phone, email consent granted and,
// when whatsapp is not "", a WhatsApp event with that action.
func addStopContact(tb testing.TB, st *Store, email, phone, whatsapp string, at time.Time) int64 {
	tb.Helper()
	var id int64
	err := st.Update(context.Background(), func(tx *Tx) error {
		var err error
		id, _, err = tx.UpsertContact(ContactInput{Email: email, Phone: phone, Source: "test"})
		if err != nil {
			return err
		}
		if err := tx.AppendEvent(&Event{ContactID: id, Channel: ChannelEmail, Action: ActionGranted, Method: "import:test"}); err != nil {
			return err
		}
		if whatsapp == "" {
			return nil
		}
		return tx.AppendEvent(&Event{ContactID: id, Channel: ChannelWhatsApp, Action: whatsapp, At: at, Method: "invite:confirm-page"})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func stopCount(tb testing.TB, st *Store, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := st.DB().QueryRow(query, args...).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestImportOptoutsWithdrawsSuppressesAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	st := openStopStore(t)
	confirmedAt := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	anna := addStopContact(t, st, "anna@example.com", "+4915123456789", ActionConfirmed, confirmedAt)
	ben := addStopContact(t, st, "ben@example.com", "+4915123456790", "", time.Time{})
	// Cleo confirmed after the STOP she sent from this number: her later
	// decision stands in the ledger (the number stays suppressed).
	cleo := addStopContact(t, st, "cleo@example.com", "+33612345678", ActionConfirmed, time.Date(2026, 2, 20, 0, 0, 0, 0, time.UTC))
	dora := addStopContact(t, st, "dora@example.com", "+4915123456791", ActionConfirmed, confirmedAt)

	// A semicolon export with German headers, national numbers, mixed times.
	file := "Telefon;Nachricht;Zeitpunkt\n" +
		"0151 23456789;STOP;2026-02-01 10:30:00\n" + // anna, national → +49
		"+49 151 23456790;stop;2026-02-02T08:00:00+01:00\n" + // ben, no WhatsApp decision yet
		"\n" +
		"0033 6 12 34 56 78;STOP;1769904000\n" + // cleo, Unix seconds = 2026-02-01
		"+49 151 99999999;STOP;2026-02-03\n" + // nobody has it
		"not a number;STOP;2026-02-03\n" +
		"0151 23456789;STOP;2026-02-05 10:00\n" + // anna again in the same file
		"+4915123456791;STOP;yesterday-ish\n" // dora, time not understood

	opt := OptoutOptions{DefaultRegion: "DE", Source: "stops.csv", BatchSize: 2}
	res, err := st.ImportOptouts(ctx, strings.NewReader(file), opt)
	if err != nil {
		t.Fatal(err)
	}
	want := OptoutResult{Rows: 7, Matched: 5, Withdrawn: 3, Unmatched: 1, Rejected: 1, Suppressed: 5}
	if res.Rows != want.Rows || res.Matched != want.Matched || res.Withdrawn != want.Withdrawn ||
		res.Unmatched != want.Unmatched || res.Rejected != want.Rejected || res.Suppressed != want.Suppressed {
		t.Fatalf("result = %+v, want counts %+v", res, want)
	}
	lines := map[int]string{}
	for _, is := range res.Issues {
		lines[is.Line] = is.Problem
		if strings.Contains(is.Phone, "99999999") || strings.Contains(is.Phone, "23456791") {
			t.Errorf("issue shows a whole number: %+v", is)
		}
	}
	for line, words := range map[int]string{6: "no contact", 7: "not a phone number", 9: "not understood"} {
		if !strings.Contains(lines[line], words) {
			t.Errorf("issue on line %d = %q, want it to say %q (all: %+v)", line, lines[line], words, res.Issues)
		}
	}

	events, err := st.Events(ctx, anna)
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if last.Channel != ChannelWhatsApp || last.Action != ActionWithdrawn || last.Method != MethodWhatsAppStop ||
		!last.At.Equal(time.Date(2026, 2, 1, 10, 30, 0, 0, time.UTC)) || last.Evidence["line"] != "2" {
		t.Fatalf("anna's last event = %+v, want whatsapp withdrawn by whatsapp:stop at the reply's time, line 2", last)
	}
	for id, state := range map[int64]string{anna: ActionWithdrawn, ben: ActionWithdrawn, cleo: ActionConfirmed, dora: ActionWithdrawn} {
		c, err := st.Consent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if c[ChannelWhatsApp].Action != state {
			t.Errorf("contact %d whatsapp = %s, want %s", id, c[ChannelWhatsApp].Action, state)
		}
		if c[ChannelEmail].Action != ActionGranted {
			t.Errorf("contact %d email = %s: a WhatsApp STOP must not touch email consent", id, c[ChannelEmail].Action)
		}
	}
	// Nobody who said STOP is a WhatsApp opt-in, Cleo included (her number is suppressed).
	if n := stopCount(t, st, `SELECT count(*) FROM whatsapp_optins`); n != 0 {
		t.Fatalf("%d contacts still opted in after their STOP", n)
	}
	// Ben may no longer be invited: his WhatsApp decision is on record.
	if n := stopCount(t, st, `SELECT count(*) FROM invite_eligible WHERE contact_id = ?`, ben); n != 0 {
		t.Fatal("ben is still invite-eligible after saying STOP")
	}

	// Re-running changes nothing.
	before := stopCount(t, st, `SELECT count(*) FROM consent_events`)
	again, err := st.ImportOptouts(ctx, strings.NewReader(file), opt)
	if err != nil {
		t.Fatal(err)
	}
	if again.Withdrawn != 0 || again.Suppressed != 0 || again.Matched != 5 {
		t.Fatalf("re-run = %+v, want nothing new", again)
	}
	if after := stopCount(t, st, `SELECT count(*) FROM consent_events`); after != before {
		t.Fatalf("re-run added %d events", after-before)
	}

	// Someone who gets a STOPped number later stays out of segments.
	eve := addStopContact(t, st, "eve@example.com", "+4915199999999", ActionConfirmed, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	if n := stopCount(t, st, `SELECT count(*) FROM whatsapp_optins WHERE contact_id = ?`, eve); n != 0 {
		t.Fatal("a later holder of a STOPped number is in the WhatsApp opt-ins")
	}
	if v, err := st.Verify(ctx); err != nil || !v.OK {
		t.Fatalf("verify = %+v, %v", v, err)
	}
}

func TestStopReaderColumnsAndDelimiters(t *testing.T) {
	cases := []struct {
		name, file string
		want       []StopReply
		intl       bool
	}{
		{
			name: "meta wa_id, comma, times in milliseconds",
			file: "\xef\xbb\xbfname,wa_id,timestamp\nAnna,4915123456789,1769941800000\n",
			want: []StopReply{{Line: 2, Phone: "4915123456789", At: time.Date(2026, 2, 1, 10, 30, 0, 0, time.UTC)}},
			intl: true,
		},
		{
			name: "twilio export, From/To, tab",
			file: "To\tFrom\tBody\tDateSent\nwhatsapp:+14155238886\twhatsapp:+4915123456789\tSTOP\t2026-02-01T10:30:00Z\n",
			want: []StopReply{{Line: 2, Phone: "whatsapp:+4915123456789", At: time.Date(2026, 2, 1, 10, 30, 0, 0, time.UTC)}},
		},
		{
			name: "no header, quoted fields",
			file: "\"+49 151 23456789\",\"01.02.2026 10:30\"\n+4915123456790\n",
			want: []StopReply{
				{Line: 1, Phone: "+49 151 23456789", At: time.Date(2026, 2, 1, 10, 30, 0, 0, time.UTC)},
				{Line: 2, Phone: "+4915123456790"},
			},
		},
		{
			name: "loose header names",
			file: "Customer Mobile No.;Opt-out date\n+4915123456789;2026/02/01 10:30\n",
			want: []StopReply{{Line: 2, Phone: "+4915123456789", At: time.Date(2026, 2, 1, 10, 30, 0, 0, time.UTC)}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sr, err := NewStopReader(strings.NewReader(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var got []StopReply
			for {
				r, err := sr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, r)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				w := tc.want[i]
				w.International = tc.intl
				if got[i] != w {
					t.Errorf("row %d = %+v, want %+v", i, got[i], w)
				}
			}
		})
	}
	if _, err := NewStopReader(strings.NewReader("name,email\nAnna,anna@example.com\n")); err == nil ||
		!strings.Contains(err.Error(), "no phone column") {
		t.Fatalf("a file without a phone column: err = %v", err)
	}
	if _, err := NewStopReader(strings.NewReader("")); err == nil {
		t.Fatal("an empty file was accepted")
	}
}

func TestParseReplyTime(t *testing.T) {
	want := time.Date(2026, 2, 1, 10, 30, 0, 0, time.UTC)
	for _, s := range []string{"2026-02-01T10:30:00Z", "2026-02-01T11:30:00+01:00", "2026-02-01 10:30:00", "2026-02-01 10:30",
		"1769941800", "1769941800000", "01.02.2026 10:30", "Sun, 01 Feb 2026 10:30:00 +0000", "2026/02/01 10:30:00"} {
		got, ok := ParseReplyTime(s)
		if !ok || !got.Equal(want) {
			t.Errorf("ParseReplyTime(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "02/01/2026", "yesterday", "12345"} {
		if got, ok := ParseReplyTime(s); ok {
			t.Errorf("ParseReplyTime(%q) = %v, want refused", s, got)
		}
	}
}

func TestNormalizeStopNumber(t *testing.T) {
	for _, tc := range []struct {
		raw, region string
		intl        bool
		want        string
	}{
		{"0151 23456789", "DE", false, "+4915123456789"},
		{"whatsapp:+4915123456789", "", false, "+4915123456789"},
		{"0049 151 23456789", "", false, "+4915123456789"},
		{"4915123456789", "", true, "+4915123456789"},
		{"4915123456789", "", false, "+4915123456789"},
		{"+1 (415) 555-2671", "DE", false, "+14155552671"},
	} {
		got, err := NormalizeStopNumber(tc.raw, tc.region, tc.intl)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeStopNumber(%q, %q) = %q, %v; want %q", tc.raw, tc.region, got, err, tc.want)
		}
	}
	if _, err := NormalizeStopNumber("0151 23456789", "", false); err == nil || !strings.Contains(err.Error(), "--default-region") {
		t.Errorf("a national number without a region: err = %v, want advice to pass --default-region", err)
	}
}

// FuzzStopReader feeds arbitrary files to the STOP-file parser: it must
// never panic or loop, line numbers must grow, and every number it accepts
// must be E.164 and stable under a second normalisation.
func FuzzStopReader(f *testing.F) {
	for _, s := range []string{
		"phone,time\n+4915123456789,2026-02-01T10:30:00Z\n",
		"Telefon;Zeitpunkt\n0151 23456789;01.02.2026 10:30\n",
		"wa_id\ttimestamp\n4915123456789\t1769941800\n",
		"\"+49 151\n23456789\",\"x\"\"y\"\n",
		"+4915123456789\n\n\n+33612345678,1769941800000\n",
		"from,body\n\"unterminated,STOP\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		sr, err := NewStopReader(strings.NewReader(file))
		if err != nil {
			return
		}
		lastLine := 0
		for i := 0; ; i++ {
			if i > len(file)+1 {
				t.Fatalf("more rows than bytes: the reader loops")
			}
			r, err := sr.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				return // a CSV error ends the file for the reader
			}
			if r.Line < lastLine || r.Line < 1 {
				t.Fatalf("line %d after line %d", r.Line, lastLine)
			}
			lastLine = r.Line
			if !r.At.IsZero() && r.At.Location() != time.UTC {
				t.Fatalf("time %v not in UTC", r.At)
			}
			e, err := NormalizeStopNumber(r.Phone, "DE", r.International)
			if err != nil {
				continue
			}
			if !strings.HasPrefix(e, "+") || strings.TrimLeft(e[1:], "0123456789") != "" {
				t.Fatalf("%q normalised to %q, not E.164", r.Phone, e)
			}
			if again, err := NormalizeStopNumber(e, "", false); err != nil || again != e {
				t.Fatalf("%q → %q → %q, %v: not stable", r.Phone, e, again, err)
			}
			_ = MaskNumber(r.Phone)
		}
	})
}

// BenchmarkImportOptouts measures a STOP file of 10,000 replies against a
// store of 10,000 contacts with numbers (half of them match).
func BenchmarkImportOptouts(b *testing.B) {
	ctx := context.Background()
	st := openStopStore(b)
	const n = 10000
	err := st.Update(ctx, func(tx *Tx) error {
		for i := range n {
			if _, _, err := tx.UpsertContact(ContactInput{Email: fmt.Sprintf("p%d@example.com", i),
				Phone: fmt.Sprintf("+49151%08d", 2*i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	var file strings.Builder
	file.WriteString("wa_id,timestamp\n")
	for i := range n {
		fmt.Fprintf(&file, "49151%08d,%d\n", i, 1769941800+i)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := st.ImportOptouts(ctx, strings.NewReader(file.String()), OptoutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rows/s")
}
