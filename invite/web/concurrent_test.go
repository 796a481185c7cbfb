package web_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite"
	"github.com/repermit/repermit/invite/web"
	"golang.org/x/time/rate"
)

// otherWriterEnv makes the test binary a second writer process on the
// database, writing the way `campaign send` does: many short transactions
// that add and update invitations.
const otherWriterEnv = "REPERMIT_WEB_TEST_OTHER_WRITER"

func otherWriter(db string) int {
	ctx := context.Background()
	st, err := crm.Open(ctx, db)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	for i := range 300 {
		err := st.Update(ctx, func(tx *crm.Tx) error {
			id, _, err := tx.UpsertContact(crm.ContactInput{Email: fmt.Sprintf("sender%d@example.com", i)})
			if err != nil {
				return err
			}
			_, hash := invite.NewToken()
			now := crm.FormatTime(tx.Now)
			res, err := tx.Exec(`INSERT INTO invitations (campaign_id, contact_id, token_hash, status, expires_at, created_at)
				VALUES (1, ?, ?, 'sending', ?, ?)`, id, hash, now, now)
			if err != nil {
				return err
			}
			inv, _ := res.LastInsertId()
			_, err = tx.Exec(`UPDATE invitations SET status = 'sent', sent_at = ? WHERE id = ?`, now, inv)
			return err
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "writer transaction %d: %v\n", i, err)
			return 1
		}
	}
	return 0
}

// TestServeBesideAnotherWriter: `serve` and `campaign send` run at the same
// time on one database. Neither may fail with "database is locked".
func TestServeBesideAnotherWriter(t *testing.T) {
	f := newFixture(t, web.Options{PostRate: rate.Inf})
	var tokens []string
	for i := range 100 {
		_, tok := f.person(fmt.Sprintf("p%d@example.com", i), crm.ContactInput{Phone: "+4915123456678"})
		tokens = append(tokens, tok)
	}
	writer := exec.Command(os.Args[0], "-test.run=^$")
	writer.Env = append(os.Environ(), otherWriterEnv+"="+filepath.Clean(f.st.Path))
	out := &syncBuffer{}
	writer.Stderr = out
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(tokens)*2)
	for i, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := f.get("/c/" + tok); r.status != 200 {
				errs <- fmt.Sprintf("GET %d: %d", i, r.status)
			}
			if r := f.post("/c/"+tok, confirmForm("offers")); r.status != 200 {
				errs <- fmt.Sprintf("POST %d: %d", i, r.status)
			}
			if i%10 == 0 {
				f.post("/u/"+tok, url.Values{"List-Unsubscribe": {"One-Click"}})
			}
		}()
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if err := writer.Wait(); err != nil {
		t.Fatalf("the other writer failed: %v\n%s", err, out.String())
	}
	if got := f.scalar(`SELECT count(*) FROM consent_events WHERE channel = 'whatsapp' AND action = 'confirmed'`); got != "100" {
		t.Fatalf("%s confirmations, want 100", got)
	}
	if got := f.scalar(`SELECT count(*) FROM invitations WHERE status = 'sent'`); got != "400" {
		t.Fatalf("%s sent invitations, want 400", got)
	}
	f.verify()
	if logs := f.logs.String(); containsAny(logs, "locked", "busy") {
		t.Fatalf("server logged lock errors:\n%s", logs)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
