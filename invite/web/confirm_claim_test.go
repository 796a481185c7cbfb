package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/repermit/repermit/crm"
	"github.com/repermit/repermit/invite/web"
)

// TestConfirmReplacesEarlierInterests: the writer's fast path learns from
// its claim whether the contact already has interests; when it has, the
// confirmation's choice still replaces them.
func TestConfirmReplacesEarlierInterests(t *testing.T) {
	f := newFixture(t, web.Options{})
	id, token := f.person("anna@example.com", crm.ContactInput{Phone: "+4915123456678"})
	err := f.st.Update(context.Background(), func(tx *crm.Tx) error { return tx.SetInterests(id, []string{"events", "old"}) })
	if err != nil {
		t.Fatal(err)
	}
	if r := f.post("/c/"+token, confirmForm("offers")); r.status != 200 {
		t.Fatalf("POST: %d\n%s", r.status, r.body)
	}
	interests, _ := f.st.Interests(context.Background(), id)
	if strings.Join(interests, ",") != "offers" {
		t.Errorf("interests after confirming = %v, want offers only", interests)
	}
	f.verify()
}
