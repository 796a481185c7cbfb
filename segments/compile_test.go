package segments

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestInterestAlternatives checks that interest terms ORed together select
// exactly what the same terms written without OR select,
// case-insensitively and mixed with other terms, and that an interest
// matches whole items of the list only.
func TestInterestAlternatives(t *testing.T) {
	st := goldenStore(t) // Anna offers+recipes DE, Ben offers AT, Chloé events US, Dev none IN
	for _, c := range []struct {
		rule, same string
		want       int64
	}{
		{"interest:offers OR interest:recipes", "NOT (NOT interest:offers AND NOT interest:recipes)", 2},
		{"interest:RECIPES OR interest:Events", "NOT (NOT interest:recipes AND NOT interest:events)", 2},
		{"interest:offers OR interest:events OR country:IN", "NOT (NOT interest:offers AND NOT interest:events AND NOT country:IN)", 4},
		{"(interest:recipes OR interest:events) AND country:US", "NOT (NOT interest:recipes AND NOT interest:events) AND country:US", 1},
		{"NOT (interest:offers OR interest:recipes)", "NOT interest:offers AND NOT interest:recipes", 2},
		{"interest:none OR interest:other", "NOT (NOT interest:none AND NOT interest:other)", 0},
		{"interest:offer OR interest:ffers OR interest:recipe", "interest:OFFE", 0},
		{"interest:\"offers\x1frecipes\"", "interest:offers AND interest:recipes AND interest:none", 0},
		{"interest:OFFERS AND interest:Recipes", "interest:offers AND country:de", 1},
	} {
		if got, same := mustCount(t, st, c.rule), mustCount(t, st, c.same); got != c.want || same != c.want {
			t.Errorf("rule %q: %d rows, %q: %d rows, want %d", c.rule, got, c.same, same, c.want)
		}
	}
}

// TestChunkedExportSameBytes checks that an export evaluated in many small
// chunks, by several workers, writes exactly the bytes of one evaluated in
// one chunk, batches included.
func TestChunkedExportSameBytes(t *testing.T) {
	st := goldenStore(t)
	ctx := context.Background()
	for _, opts := range []ExportOptions{
		{Format: "csv"},
		{Format: "jsonl"},
		{Format: "interakt"},
		{Format: "csv", BatchSize: 2},
		{Format: "csv", Columns: []string{"contact_id", "interests", "tags"}, BatchSize: 1},
	} {
		var want [][]byte
		for _, span := range []int64{chunkIDs, 1, 2, 3} {
			opts := opts
			opts.Out = filepath.Join(t.TempDir(), "seg.csv")
			res, err := export(ctx, st, "", MustParse(""), opts, span)
			if err != nil {
				t.Fatal(err)
			}
			var got [][]byte
			for _, f := range res.Files {
				b, err := os.ReadFile(f.Path)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, b)
			}
			if span == chunkIDs {
				want = got
				if res.Rows != 4 {
					t.Fatalf("%+v: %d rows, want 4", opts, res.Rows)
				}
				continue
			}
			if !slices.EqualFunc(got, want, bytes.Equal) {
				t.Errorf("%+v: chunks of %d ids wrote\n%q\nwant\n%q", opts, span, got, want)
			}
		}
	}
}

// TestReadSnapshotShared checks that the transactions of a parallel export
// see one state: a segment saved after they begin is in none of them.
func TestReadSnapshotShared(t *testing.T) {
	st := mustOpen(t)
	ctx := context.Background()
	txs, err := readSnapshot(ctx, st, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, tx := range txs {
			tx.Rollback()
		}
	}()
	if len(txs) != 3 {
		t.Fatalf("%d transactions, want 3", len(txs))
	}
	if _, err := Create(ctx, st, "later", "interest:offers"); err != nil {
		t.Fatal(err) // the snapshot must not hold the write lock
	}
	for i, tx := range txs {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM segments`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("transaction %d sees %d segments, want the state before they began (0)", i, n)
		}
	}
}

// TestPlainRunsMatchJSONL checks that CSV columns joined in SQL (runs of
// fields that need no quoting, see plan.addPlainRun) hold the same values
// as the JSON Lines export, which never joins them.
func TestPlainRunsMatchJSONL(t *testing.T) {
	st := goldenStore(t)
	ctx := context.Background()
	cols := []string{"contact_id", "consent_event_id", "first_name", "phone_e164", "opted_in_at", "consent_statement_sha256", "country"}
	dir := t.TempDir()
	if _, err := export(ctx, st, "", MustParse(""), ExportOptions{Format: "csv", Columns: cols, Out: filepath.Join(dir, "a.csv")}, chunkIDs); err != nil {
		t.Fatal(err)
	}
	if _, err := export(ctx, st, "", MustParse(""), ExportOptions{Format: "jsonl", Columns: cols, Out: filepath.Join(dir, "a.jsonl")}, chunkIDs); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "a.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	lines, err := os.ReadFile(filepath.Join(dir, "a.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	objs := bytes.Split(bytes.TrimSpace(lines), []byte("\n"))
	if !slices.Equal(records[0], cols) || len(records)-1 != len(objs) || len(objs) == 0 {
		t.Fatalf("csv header %v and %d rows, jsonl %d rows", records[0], len(records)-1, len(objs))
	}
	for i, obj := range objs {
		var m map[string]any
		if err := json.Unmarshal(obj, &m); err != nil {
			t.Fatal(err)
		}
		for j, c := range cols {
			if got, want := records[i+1][j], fmt.Sprint(m[c]); got != want {
				t.Errorf("row %d column %s: csv %q, jsonl %q", i+1, c, got, want)
			}
		}
	}
}
