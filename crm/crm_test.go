package crm

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// MustOpen opens a fresh store in a temporary directory with a fixed clock.
func MustOpen(tb testing.TB) *Store {
	tb.Helper()
	st, err := Open(context.Background(), filepath.Join(tb.TempDir(), "repermit.db"))
	if err != nil {
		tb.Fatal(err)
	}
	st.Now = func() time.Time { return time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC) }
	tb.Cleanup(func() { st.Close() })
	return st
}

// sliceRejects collects rejected rows.
type sliceRejects struct{ got []Reject }

func (s *sliceRejects) Reject(r Reject) error { s.got = append(s.got, r); return nil }

func mustImport(tb testing.TB, st *Store, paths []string, opts ImportOptions) (ImportSummary, []Reject) {
	tb.Helper()
	rej := &sliceRejects{}
	opts.Rejects = rej
	sum, err := st.Import(context.Background(), paths, opts)
	if err != nil {
		tb.Fatalf("import %v: %v", paths, err)
	}
	return sum, rej.got
}

func mustContact(tb testing.TB, st *Store, email string) (Contact, map[string]CurrentState) {
	tb.Helper()
	c, err := st.ContactByEmail(context.Background(), email)
	if err != nil {
		tb.Fatalf("contact %s: %v", email, err)
	}
	cs, err := st.Consent(context.Background(), c.ID)
	if err != nil {
		tb.Fatal(err)
	}
	return c, cs
}

func mustVerify(tb testing.TB, st *Store) VerifyResult {
	tb.Helper()
	res, err := st.Verify(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	if !res.OK {
		tb.Fatalf("consent verify failed: %+v", res)
	}
	return res
}
