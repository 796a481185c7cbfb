package crm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func openGroupTestStore(tb testing.TB) *Store {
	tb.Helper()
	st, err := Open(context.Background(), filepath.Join(tb.TempDir(), "gc.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

func seedGroupContacts(tb testing.TB, st *Store, n int) []int64 {
	tb.Helper()
	ids := make([]int64, n)
	err := st.Update(context.Background(), func(tx *Tx) error {
		for i := range ids {
			id, _, err := tx.UpsertContact(ContactInput{Email: fmt.Sprintf("p%d@example.com", i)})
			if err != nil {
				return err
			}
			ids[i] = id
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return ids
}

// TestGroupCommitIsolatesFailures runs many concurrent callers, some of
// which fail or panic after appending to the ledger: their work must vanish,
// everyone else's must be committed, and the hash chain must still verify.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	st := openGroupTestStore(t)
	ids := seedGroupContacts(t, st, 60)
	g := st.NewGroupCommit(GroupCommitOptions{})
	defer g.Close()

	errBoom := errors.New("boom")
	var wg sync.WaitGroup
	results := make([]error, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = g.Update(ctx, func(tx *Tx) error {
				if err := tx.AppendEvent(&Event{ContactID: id, Channel: ChannelWhatsApp, Action: ActionConfirmed, Method: "test"}); err != nil {
					return err
				}
				if err := tx.SetInterests(id, []string{"offers"}); err != nil {
					return err
				}
				switch i % 10 {
				case 3:
					return errBoom
				case 7:
					panic("bad caller")
				}
				return nil
			})
		}()
	}
	wg.Wait()

	for i, id := range ids {
		cs, err := st.Consent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		interests, err := st.Interests(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		switch i % 10 {
		case 3:
			if !errors.Is(results[i], errBoom) {
				t.Errorf("caller %d: got %v, want its own error", i, results[i])
			}
		case 7:
			if results[i] == nil {
				t.Errorf("caller %d panicked but got nil", i)
			}
		default:
			if results[i] != nil {
				t.Errorf("caller %d: %v", i, results[i])
			}
			if cs[ChannelWhatsApp].Action != ActionConfirmed || len(interests) != 1 {
				t.Errorf("caller %d: committed work missing: %v %v", i, cs[ChannelWhatsApp], interests)
			}
			continue
		}
		if cs[ChannelWhatsApp].Action != StateNone || len(interests) != 0 {
			t.Errorf("caller %d failed but its work stayed: %v %v", i, cs[ChannelWhatsApp], interests)
		}
	}
	res, err := st.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Events != 48 {
		t.Fatalf("ledger after failed calls: %+v, want 48 events and ok", res)
	}
	if s := g.Stats(); s.Calls != 60 || s.Batches < 1 || s.Batches > 60 {
		t.Errorf("stats %+v", s)
	}
}

// TestGroupCommitSeesEarlierCallsOfItsBatch: a call sees the work of the
// calls committed before it, as with one transaction per call.
func TestGroupCommitSeesEarlierCallsOfItsBatch(t *testing.T) {
	ctx := context.Background()
	st := openGroupTestStore(t)
	ids := seedGroupContacts(t, st, 1)
	g := st.NewGroupCommit(GroupCommitOptions{})
	defer g.Close()
	var wg sync.WaitGroup
	appended := make(chan bool, 40)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := g.Update(ctx, func(tx *Tx) error {
				cur, err := tx.CurrentConsent(ids[0], ChannelWhatsApp)
				if err != nil || cur.Action == ActionConfirmed {
					appended <- false
					return err
				}
				appended <- true
				return tx.AppendEvent(&Event{ContactID: ids[0], Channel: ChannelWhatsApp, Action: ActionConfirmed, Method: "test"})
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	close(appended)
	n := 0
	for a := range appended {
		if a {
			n++
		}
	}
	evs, err := st.Events(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || len(evs) != 1 {
		t.Fatalf("%d callers appended, %d events; want exactly one", n, len(evs))
	}
}

func TestGroupCommitCancelAndClose(t *testing.T) {
	st := openGroupTestStore(t)
	ids := seedGroupContacts(t, st, 1)
	g := st.NewGroupCommit(GroupCommitOptions{})

	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := g.Update(cctx, func(tx *Tx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("cancelled call: err %v, ran %v", err, ran)
	}
	if err := g.Update(context.Background(), func(tx *Tx) error { return tx.SetInterests(ids[0], []string{"x"}) }); err != nil {
		t.Fatal(err)
	}
	g.Close()
	g.Close()
	if err := g.Update(context.Background(), func(tx *Tx) error { return nil }); !errors.Is(err, ErrGroupCommitClosed) {
		t.Fatalf("after Close: %v", err)
	}
	got, _ := st.Interests(context.Background(), ids[0])
	if len(got) != 1 {
		t.Fatalf("committed call lost: %v", got)
	}
}

// TestGroupCommitCheckpointsInTheBackground: with SQLite's own checkpoints
// off the commit path, the WAL must still be copied back and stay small,
// and Close must give the store its default back.
func TestGroupCommitCheckpointsInTheBackground(t *testing.T) {
	ctx := context.Background()
	st := openGroupTestStore(t)
	ids := seedGroupContacts(t, st, 200)
	g := st.NewGroupCommit(GroupCommitOptions{})
	var wg sync.WaitGroup
	for round := range 20 {
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := g.Update(ctx, func(tx *Tx) error {
					return tx.SetInterests(id, []string{fmt.Sprintf("topic-%d-%s", round, strings.Repeat("x", 200))})
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	time.Sleep(200 * time.Millisecond)
	var busy, frames, done int
	if err := st.write.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done); err != nil {
		t.Fatal(err)
	}
	if frames > 4000 {
		t.Errorf("WAL holds %d frames: the background checkpointer is not keeping up", frames)
	}
	g.Close()
	var auto int
	if err := st.write.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != 1000 {
		t.Fatalf("wal_autocheckpoint after Close = %d (%v), want 1000", auto, err)
	}
	g.Close()
}

// BenchmarkGroupCommit compares durable single-row writes from 32 parallel
// callers: one transaction each (Store.Update) against group commit.
func BenchmarkGroupCommit(b *testing.B) {
	for _, mode := range []string{"update", "group"} {
		b.Run(mode, func(b *testing.B) {
			st := openGroupTestStore(b)
			ids := seedGroupContacts(b, st, 1000)
			g := st.NewGroupCommit(GroupCommitOptions{})
			defer g.Close()
			write := st.Update
			if mode == "group" {
				write = g.Update
			}
			var mu sync.Mutex
			next := 0
			b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0))) // 32 concurrent callers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					mu.Lock()
					id := ids[next%len(ids)]
					next++
					mu.Unlock()
					err := write(context.Background(), func(tx *Tx) error {
						return tx.AppendEvent(&Event{ContactID: id, Channel: ChannelWhatsApp, Action: ActionConfirmed, Method: "bench"})
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if mode == "group" {
				s := g.Stats()
				b.ReportMetric(float64(s.Calls)/float64(max(1, s.Batches)), "calls/commit")
			}
		})
	}
}

// TestGroupCommitKeepsStatementsAcrossBatches: a statement prepared in one
// batch is prepared once on the write connection and reused by later
// batches; one that fails to prepare reports its error and is not kept, and
// the cache stays bounded.
func TestGroupCommitKeepsStatementsAcrossBatches(t *testing.T) {
	ctx := context.Background()
	st := openGroupTestStore(t)
	ids := seedGroupContacts(t, st, 3)
	g := st.NewGroupCommit(GroupCommitOptions{})
	defer g.Close()
	for i := range 3 {
		err := g.Update(ctx, func(tx *Tx) error {
			_, err := tx.ExecCached(`UPDATE contacts SET first_name = ? WHERE id = ?`, fmt.Sprint("n", i), ids[0])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Update(ctx, func(tx *Tx) error {
		_, err := tx.ExecCached(`UPDATE no_such_table SET x = 1`)
		return err
	}); err == nil {
		t.Fatal("a bad statement succeeded")
	}
	for i := range maxCachedStatements + 10 {
		if err := g.Update(ctx, func(tx *Tx) error {
			_, err := tx.ExecCached(fmt.Sprintf(`UPDATE contacts SET last_name = 'x%d' WHERE id = ?`, i), ids[1])
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	g.Close() // the writer is done: its cache may be read
	if len(g.stmts) != maxCachedStatements {
		t.Errorf("%d statements kept, want the bound %d", len(g.stmts), maxCachedStatements)
	}
	if _, ok := g.stmts[`UPDATE contacts SET first_name = ? WHERE id = ?`]; !ok {
		t.Error("the repeated statement was not kept")
	}
	c, err := st.ContactByID(ctx, ids[0])
	if err != nil || c.FirstName != "n2" {
		t.Errorf("contact after three batches: %+v %v", c, err)
	}
}

// TestGroupCommitSurvivesAFailedBatch: a batch that fails after its calls
// ran (here the chain head cannot be written, or the commit breaks a
// deferred foreign key) reports the error to its callers, and the writer
// goes on serving the next batch (it once waited forever for the write
// connection its own failed transaction still held).
func TestGroupCommitSurvivesAFailedBatch(t *testing.T) {
	ctx := context.Background()
	st := openGroupTestStore(t)
	ids := seedGroupContacts(t, st, 1)
	g := st.NewGroupCommit(GroupCommitOptions{})
	defer g.Close()
	failures := map[string]func(tx *Tx) error{
		"chain head": func(tx *Tx) error {
			if err := tx.AppendEvent(&Event{ContactID: ids[0], Channel: ChannelWhatsApp, Action: ActionConfirmed, Method: "test"}); err != nil {
				return err
			}
			_, err := tx.ExecCached(`CREATE TEMP TRIGGER no_meta BEFORE INSERT ON meta BEGIN SELECT RAISE(ABORT, 'no'); END`)
			return err
		},
		"commit": func(tx *Tx) error {
			if _, err := tx.ExecCached(`PRAGMA defer_foreign_keys = ON`); err != nil {
				return err
			}
			_, err := tx.ExecCached(`INSERT INTO contact_interests (contact_id, interest, set_at) VALUES (999999, 'x', 'now')`)
			return err
		},
	}
	for name, fail := range failures {
		if err := g.Update(ctx, fail); err == nil {
			t.Fatalf("%s: a failing batch succeeded", name)
		}
		done := make(chan error, 1)
		go func() {
			done <- g.Update(ctx, func(tx *Tx) error { return tx.SetInterests(ids[0], []string{"offers"}) })
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: the next batch: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the writer hangs after a failed batch", name)
		}
	}
	if res, err := st.Verify(ctx); err != nil || !res.OK {
		t.Fatalf("ledger: %+v %v", res, err)
	}
}

// TestGroupCommitRerunsABatchWithAFailedCall: a batch runs without
// savepoints until a call fails; then it is rolled back and run again with
// a savepoint per call. The calls around the failure commit exactly once
// (their first run was rolled back), and the failed call's work is gone.
func TestGroupCommitRerunsABatchWithAFailedCall(t *testing.T) {
	ctx := context.Background()
	st := openGroupTestStore(t)
	ids := seedGroupContacts(t, st, 3)
	g := st.NewGroupCommit(GroupCommitOptions{MaxWait: time.Second, MaxBatch: 3})
	defer g.Close()
	errBoom := errors.New("boom")
	var runs [3]atomic.Int32
	var wg sync.WaitGroup
	results := make([]error, 3)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = g.Update(ctx, func(tx *Tx) error {
				runs[i].Add(1)
				if err := tx.AppendEvent(&Event{ContactID: id, Channel: ChannelWhatsApp, Action: ActionConfirmed, Method: "test"}); err != nil {
					return err
				}
				if i == 1 {
					return errBoom
				}
				return nil
			})
		}()
	}
	wg.Wait()
	if s := g.Stats(); s.Batches != 1 {
		t.Fatalf("the three calls took %d batches, want 1", s.Batches)
	}
	for i, id := range ids {
		evs, err := st.Events(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if i == 1 {
			want = 0
			if !errors.Is(results[i], errBoom) {
				t.Errorf("failed call got %v", results[i])
			}
		} else if results[i] != nil {
			t.Errorf("call %d: %v", i, results[i])
		}
		if len(evs) != want {
			t.Errorf("call %d: %d events, want %d", i, len(evs), want)
		}
	}
	// The batch ran up to the failure, then again in full: the failed call
	// ran twice, each other call twice if it came before it, else once.
	for i := range runs {
		if n := runs[i].Load(); n < 1 || n > 2 || i == 1 && n != 2 {
			t.Errorf("call %d ran %d times", i, n)
		}
	}
	if res, err := st.Verify(ctx); err != nil || !res.OK || res.Events != 2 {
		t.Fatalf("ledger: %+v %v", res, err)
	}
}

// TestGroupCommitRestoresTheCacheSize: the small cache is the group
// commit's; after Close the store's writes get the store's cache back.
func TestGroupCommitRestoresTheCacheSize(t *testing.T) {
	st := openGroupTestStore(t)
	size := func() int {
		var n int
		if err := st.write.QueryRow(`PRAGMA cache_size`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := size()
	g := st.NewGroupCommit(GroupCommitOptions{})
	if got := size(); strconv.Itoa(got) != groupCommitCacheSize {
		t.Errorf("cache_size under group commit %d, want %s", got, groupCommitCacheSize)
	}
	g.Close()
	if got := size(); got != before {
		t.Errorf("cache_size after Close %d, want %d", got, before)
	}
}

// TestGroupCommitCatchUpRestartsTheWAL: after the writer's catch-up
// checkpoint has copied every frame, the next batches write the WAL from
// its start again instead of growing it (under a steady stream of commits
// the background checkpointer alone never gets there; see catchUpWAL).
// SQLite's own checkpoints are left on here, at their 1,000 frames, so
// that nothing else checkpoints these few hundred.
func TestGroupCommitCatchUpRestartsTheWAL(t *testing.T) {
	ctx := context.Background()
	st := openGroupTestStore(t)
	ids := seedGroupContacts(t, st, 50)
	g := st.NewGroupCommit(GroupCommitOptions{InlineCheckpoints: true})
	defer g.Close()
	writes := func(from int) int64 {
		for i := from; i < from+100; i++ {
			err := g.Update(ctx, func(tx *Tx) error {
				return tx.SetInterests(ids[i%len(ids)], []string{fmt.Sprintf("t%d", i)})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		fi, err := os.Stat(st.Path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	writes(0)
	grown := writes(100)
	if !g.catchUpWAL() {
		t.Fatal("catch-up checkpoint did not copy every frame with no reader about")
	}
	if size := writes(200); size != grown {
		t.Fatalf("the WAL grew from %d to %d bytes after the catch-up: it was not restarted", grown, size)
	}
}

// The writer holds a P through its cgo calls, so a group commit gives the
// scheduler one more while it runs, and takes it back on Close.
func TestGroupCommitTakesOneMoreProc(t *testing.T) {
	st := openGroupTestStore(t)
	before := runtime.GOMAXPROCS(0)
	g := st.NewGroupCommit(GroupCommitOptions{})
	if got := runtime.GOMAXPROCS(0); got != before+1 {
		g.Close()
		t.Fatalf("GOMAXPROCS %d while the group commit runs, want %d", got, before+1)
	}
	g.Close()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("GOMAXPROCS %d after Close, want %d back", got, before)
	}
}
