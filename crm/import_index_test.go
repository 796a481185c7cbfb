package crm

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func phoneIndexState(t *testing.T, st *Store) (index bool, pending bool) {
	t.Helper()
	var n, m int
	if err := st.DB().QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'contacts_phone_hash'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := st.DB().QueryRow(`SELECT count(*) FROM meta WHERE key = ?`, deferredIndexKey).Scan(&m); err != nil {
		t.Fatal(err)
	}
	return n == 1, m == 1
}

// A first import that builds the phone index at the end leaves the same
// store as one that maintains it: the index is there and used.
func TestImportDefersPhoneIndexOnlyWhenEmpty(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "subscribed_members_export_x.csv")
	writeMailchimpExport(t, src, 500)
	st, err := Open(ctx, filepath.Join(dir, "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	opts := ImportOptions{Rejects: &countRejects{}, deferIndexMin: 1}
	if _, err := st.Import(ctx, []string{src}, opts); err != nil {
		t.Fatal(err)
	}
	if idx, pending := phoneIndexState(t, st); !idx || pending {
		t.Fatalf("after the first import: index %v, pending %v", idx, pending)
	}
	var plan string
	rows, err := st.DB().Query(`EXPLAIN QUERY PLAN SELECT id FROM contacts WHERE phone_hash = ? AND phone_hash <> ''`, "x")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a, b, c int
		var d string
		rows.Scan(&a, &b, &c, &d)
		plan += d
	}
	rows.Close()
	if !strings.Contains(plan, "contacts_phone_hash") {
		t.Fatalf("plan %q does not use the index", plan)
	}
	// A STOP reply finds its contact through the rebuilt index.
	c, err := st.ContactByEmail(ctx, "user3@example.com")
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.ImportOptouts(ctx, strings.NewReader("phone\n"+c.Phone+"\n"), OptoutOptions{})
	if err != nil || res.Matched != 1 {
		t.Fatalf("optout %+v %v", res, err)
	}
	// A second import into a store that has contacts keeps the index.
	restore, err := st.deferIndexForImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if idx, pending := phoneIndexState(t, st); !idx || pending {
		t.Fatalf("non-empty store: index %v, pending %v", idx, pending)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if res, err := st.Verify(ctx); err != nil || !res.OK {
		t.Fatalf("verify %+v %v", res, err)
	}
}

// An import whose process dies after dropping the index leaves a store
// that the next Open repairs; a cancelled import restores it itself.
func TestImportDeferredIndexSurvivesInterruption(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "t.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.deferIndexForImport(ctx); err != nil { // and never restore: the process "dies"
		t.Fatal(err)
	}
	if idx, pending := phoneIndexState(t, st); idx || !pending {
		t.Fatalf("deferred: index %v, pending %v", idx, pending)
	}
	st.Close()
	st, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if idx, pending := phoneIndexState(t, st); !idx || pending {
		t.Fatalf("reopened: index %v, pending %v", idx, pending)
	}

	src := filepath.Join(dir, "subscribed_members_export_x.csv")
	writeMailchimpExport(t, src, 3000)
	cctx, cancel := context.WithCancel(ctx)
	n := 0
	_, err = st.Import(cctx, []string{src}, ImportOptions{Rejects: &countRejects{}, deferIndexMin: 1, BatchSize: 500,
		CommitRows: 500, Progress: func(string, int64, int64, int64) {
			if n++; n == 3 {
				cancel()
			}
		}})
	if err == nil {
		t.Fatal("a cancelled import returned no error")
	}
	if idx, pending := phoneIndexState(t, st); !idx || pending {
		t.Fatalf("after a cancelled import: index %v, pending %v", idx, pending)
	}
	st.Close()
}
