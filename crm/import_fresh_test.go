package crm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The filter never says "certainly not" for a contact it was told about,
// and turns itself off when another writer adds a contact.
func TestFreshContactsFilter(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := newFreshContacts()
	h := newKeyedHasher(st.salt)
	for i := range 20000 {
		f.created(h.email(fmt.Sprintf("u%d@example.com", i)), int64(i+1))
	}
	falsePos := 0
	for i := range 20000 {
		if !f.mayExist(h.email(fmt.Sprintf("u%d@example.com", i))) {
			t.Fatalf("u%d: false negative", i)
		}
		if f.mayExist(h.email(fmt.Sprintf("other%d@example.com", i))) {
			falsePos++
		}
	}
	if falsePos > 20 {
		t.Fatalf("%d false positives in 20000", falsePos)
	}
	if !f.mayExist("not a hash") {
		t.Fatal("an odd key must be looked up")
	}

	// A store whose newest contact is not the import's own turns it off.
	f = newFreshContacts()
	if err := st.Update(ctx, func(tx *Tx) error { return f.check(tx) }); err != nil || f.off {
		t.Fatalf("empty store: off %v, %v", f.off, err)
	}
	if err := st.Update(ctx, func(tx *Tx) error {
		_, _, err := tx.UpsertContact(ContactInput{Email: "someone@example.com"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, func(tx *Tx) error { return f.check(tx) }); err != nil || !f.off {
		t.Fatalf("after another writer: off %v, %v", f.off, err)
	}
	if !f.mayExist(h.email("u1@example.com")) {
		t.Fatal("an off filter must look every row up")
	}
}

// The same address again, batches and commits later, is found and merged,
// never created twice (the rows in between are new to the filter).
func TestImportFreshStoreFindsRepeatsAcrossBatches(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("Email Address,First Name,Last Name,Phone Number,TAGS\n")
	for i := range 1300 {
		fmt.Fprintf(&b, "user%d@example.com,First%d,,,\n", i, i)
	}
	b.WriteString("USER5@example.com,First5,Again,,VIP\n") // updated
	b.WriteString("user250@example.com,First250,,,\n")     // unchanged
	b.WriteString("User5@Example.com,First5,Again,,VIP\n") // unchanged
	src := filepath.Join(dir, "subscribed_members_export_x.csv")
	if err := os.WriteFile(src, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := Open(ctx, filepath.Join(dir, "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sum, err := st.Import(ctx, []string{src}, ImportOptions{Rejects: &countRejects{}, BatchSize: 20, CommitRows: 60})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Created != 1300 || sum.Updated != 1 || sum.Unchanged != 2 {
		t.Fatalf("summary %+v", sum)
	}
	c, err := st.ContactByEmail(ctx, "user5@example.com")
	if err != nil || c.LastName != "Again" || len(c.Tags) != 1 {
		t.Fatalf("contact %+v %v", c, err)
	}
	if res, err := st.Verify(ctx); err != nil || !res.OK {
		t.Fatalf("verify %+v %v", res, err)
	}
}
