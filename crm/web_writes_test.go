package crm

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestPreparedDigestIsTheCanonicalForm: the canonical form joined from
// PrepareDigest's parts is byte for byte canonicalWith's, whatever the
// strings hold (quotes, HTML, control characters, invalid UTF-8, line
// separators) and whether At was given.
func TestPreparedDigestIsTheCanonicalForm(t *testing.T) {
	odd := []string{"", `"quoted" \\ back`, "<script>&amp;</script>", "tab\tnew\nline\x00\x1f", "bad \xff\xfe utf-8",
		"line\u2028sep\u2029", "Grüße ••• 😀", `","at":"0001-01-01T00:00:00.000000Z","recorded_at":"`}
	now := time.Date(2026, 11, 29, 4, 35, 1, 123456789, time.UTC)
	for i, s := range odd {
		for _, at := range []time.Time{{}, now.Add(-time.Hour)} {
			e := &Event{ContactID: int64(i + 1), Channel: ChannelWhatsApp, Action: ActionConfirmed, At: at, Method: "m" + s,
				IP: s, UserAgent: s, Campaign: s, InvitationID: 7, StatementVersion: s, StatementSHA256: s,
				Evidence: map[string]string{"k" + s: s, "interests": "a,b"}}
			e.PrepareDigest()
			if e.canonical == nil {
				t.Fatalf("%q: not prepared", s)
			}
			// What AppendEvent assigns.
			e.ID = int64(1000 + i)
			if e.At.IsZero() {
				e.At = now
			}
			e.RecordedAt = now
			want := canonicalWith(e, evidenceJSON(e.Evidence))
			if got := e.canonical.build(e, FormatTime(e.At), FormatTime(e.RecordedAt)); !bytes.Equal(got, want) {
				t.Fatalf("%q at %v:\n got %s\nwant %s", s, at, got, want)
			}
		}
	}
}

// TestEncodedEvidenceIsEvidenceJSON: the evidence EncodeEvidence stores
// is evidenceJSON's, empty or not.
func TestEncodedEvidenceIsEvidenceJSON(t *testing.T) {
	for _, ev := range []map[string]string{nil, {}, {"b": "2", "a": "<1>", "\xff": "\u2028"}} {
		e := &Event{Evidence: ev}
		e.EncodeEvidence()
		if want := evidenceJSON(ev); !bytes.Equal(e.encodedEvidence, want) {
			t.Errorf("%v: got %s, want %s", ev, e.encodedEvidence, want)
		}
	}
}

// TestPreparedDigestVerifies: events appended with a prepared digest pass
// Verify, which recomputes every digest the ordinary way.
func TestPreparedDigestVerifies(t *testing.T) {
	st := openGroupTestStore(t)
	ids := seedGroupContacts(t, st, 3)
	err := st.Update(t.Context(), func(tx *Tx) error {
		for _, id := range ids {
			e := &Event{ContactID: id, Channel: ChannelWhatsApp, Action: ActionConfirmed, Method: "test", UserAgent: "<ua \"x\">",
				Evidence: map[string]string{"interests": "offers"}}
			e.PrepareDigest()
			if err := tx.AppendEvent(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := st.Verify(t.Context()); err != nil || !res.OK {
		t.Fatalf("verify: %+v %v", res, err)
	}
}

// BenchmarkPrepareDigest is the confirmation handler's share of the ledger
// work: a confirmation's event prepared before it queues for the writer.
func BenchmarkPrepareDigest(b *testing.B) {
	for b.Loop() {
		e := &Event{ContactID: 123456, Channel: ChannelWhatsApp, Action: ActionConfirmed, Method: "invite:confirm-page",
			IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15",
			Campaign: "spring-2026", InvitationID: 98765, StatementVersion: "v3", StatementSHA256: strings.Repeat("ab", 32),
			Evidence: map[string]string{"page_language": "de", "statement_language": "de", "interests": "offers,recipes"}}
		e.PrepareDigest()
	}
}
