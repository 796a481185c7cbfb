package web

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite"
)

// staleFixture is a store with one invitation, and its page as the
// handler read it (inv) before anything below changed the state.
func staleFixture(t *testing.T) (*Server, *crm.Store, *invitation) {
	t.Helper()
	ctx := context.Background()
	st, err := crm.Open(ctx, filepath.Join(t.TempDir(), "claim.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	token, hash := invite.NewToken()
	err = st.Update(ctx, func(tx *crm.Tx) error {
		if _, err := tx.SaveStatement(crm.Statement{Channel: "whatsapp", Version: "v1", Language: "en", Text: "I agree."}); err != nil {
			return err
		}
		res, err := tx.Exec(`INSERT INTO campaigns (name, settings, statement_version, expiry_seconds, created_at)
			VALUES ('c', '{"interests":[{"name":"offers"}]}', 'v1', 86400, ?)`, crm.FormatTime(tx.Now))
		if err != nil {
			return err
		}
		campaign, _ := res.LastInsertId()
		id, _, err := tx.UpsertContact(crm.ContactInput{Email: "anna@example.com", Phone: "+4915123456678"})
		if err != nil {
			return err
		}
		if err := tx.AppendEvent(&crm.Event{ContactID: id, Channel: "email", Action: "granted", Method: "import:test"}); err != nil {
			return err
		}
		_, err = tx.Exec(`INSERT INTO invitations (campaign_id, contact_id, token_hash, status, expires_at, created_at)
			VALUES (?, ?, ?, 'sent', ?, ?)`, campaign, id, hash, crm.FormatTime(tx.Now.Add(time.Hour)), crm.FormatTime(tx.Now))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s := New(st, Options{})
	t.Cleanup(func() { s.Close() })
	inv, err := s.load(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	return s, st, inv
}

func confirmDecision() decision {
	return decision{action: crm.ActionConfirmed, interests: []string{"offers"}, lang: "en",
		statement: crm.Statement{Version: "v1", SHA256: crm.StatementHash("I agree."), Language: "en"}}
}

func whatsappEvents(t *testing.T, st *crm.Store, contact int64) int {
	t.Helper()
	evs, err := st.Events(context.Background(), contact)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Channel == crm.ChannelWhatsApp {
			n++
		}
	}
	return n
}

// TestClaimFailsOnStateChangedSinceTheRead: the writer's one-statement
// claim must not trust the handler's read. A complaint, an erasure or
// another answer that landed after the read makes the claim fail, and the
// slow path then says why, recording nothing.
func TestClaimFailsOnStateChangedSinceTheRead(t *testing.T) {
	ctx := context.Background()
	// A change that blocks the claim outright: the slow path names it and
	// nothing is recorded.
	for _, c := range []struct {
		name   string
		change func(*crm.Store) error
		want   outcome
	}{
		{"suppressed", func(st *crm.Store) error {
			_, err := st.Suppress(ctx, []string{"anna@example.com"}, "complained", "test")
			return err
		}, blocked},
		{"erased", func(st *crm.Store) error { return st.Forget(ctx, "anna@example.com") }, gone},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, st, inv := staleFixture(t)
			if err := c.change(st); err != nil {
				t.Fatal(err)
			}
			out, err := s.recordDecision(ctx, inv, confirmDecision())
			if err != nil || out != c.want {
				t.Fatalf("outcome %v %v, want %v", out, err, c.want)
			}
			if n := whatsappEvents(t, st, inv.ContactID); n != 0 {
				t.Fatalf("%d WhatsApp events", n)
			}
		})
	}
	t.Run("interests set since the read", func(t *testing.T) {
		s, st, inv := staleFixture(t)
		err := st.Update(ctx, func(tx *crm.Tx) error { return tx.SetInterests(inv.ContactID, []string{"old"}) })
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.recordDecision(ctx, inv, confirmDecision())
		if err != nil || out != recorded {
			t.Fatalf("outcome %v %v, want recorded", out, err)
		}
		if got, _ := st.Interests(ctx, inv.ContactID); len(got) != 1 || got[0] != "offers" {
			t.Fatalf("interests %v, want the confirmation's only", got)
		}
	})
	t.Run("answered twice from one read", func(t *testing.T) {
		s, st, inv := staleFixture(t)
		for i, want := range []outcome{recorded, repeated, repeated} {
			out, err := s.recordDecision(ctx, inv, confirmDecision())
			if err != nil || out != want {
				t.Fatalf("answer %d: outcome %v %v, want %v", i, out, err, want)
			}
		}
		if n := whatsappEvents(t, st, inv.ContactID); n != 1 {
			t.Fatalf("%d WhatsApp events, want 1", n)
		}
		if res, err := st.Verify(ctx); err != nil || !res.OK {
			t.Fatalf("ledger: %+v %v", res, err)
		}
	})
}

// BenchmarkRecordDecision is the writer's side of a confirmation without
// HTTP: 32 callers record confirmations of invitations already read, as
// the handlers do, through the group commit writer.
func BenchmarkRecordDecision(b *testing.B) {
	ctx := context.Background()
	st, err := crm.Open(ctx, filepath.Join(b.TempDir(), "record.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var tokens []string
	err = st.Update(ctx, func(tx *crm.Tx) error {
		if _, err := tx.SaveStatement(crm.Statement{Channel: "whatsapp", Version: "v1", Language: "en", Text: "I agree."}); err != nil {
			return err
		}
		res, err := tx.Exec(`INSERT INTO campaigns (name, settings, statement_version, expiry_seconds, created_at)
			VALUES ('c', '{"interests":[{"name":"offers"},{"name":"recipes"}]}', 'v1', 86400, ?)`, crm.FormatTime(tx.Now))
		if err != nil {
			return err
		}
		campaign, _ := res.LastInsertId()
		tokens, err = SeedSentInvitations(tx, campaign, b.N, crm.FormatTime(tx.Now.Add(time.Hour)))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	s := New(st, Options{})
	defer s.Close()
	invs := make([]*invitation, len(tokens))
	for i, tok := range tokens {
		if invs[i], err = s.load(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	d := confirmDecision()
	d.interests = []string{"offers", "recipes"}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := selfCPU()
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(invs) {
					return
				}
				if out, err := s.recordDecision(ctx, invs[i], d); err != nil || out != recorded {
					b.Errorf("%v %v", out, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((selfCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	if s.gc != nil {
		stats := s.gc.Stats()
		b.ReportMetric(float64(stats.Calls)/float64(max(stats.Batches, 1)), "calls/batch")
	}
}

// selfCPU is the user and system CPU time this process has used: a
// figure that the neighbours' load on a shared machine does not swing.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
