package invite

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/repermit/repermit/crm"
)

// QueueResult counts what Queue found and added.
type QueueResult struct {
	Eligible int // eligible and not yet invited in the campaign, before queueing
	Queued   int // invitations added now
}

// notInvited is the campaign half of eligibility; the other half is the view
// invite_eligible (crm/migrations/0001_core.sql), the one definition of who
// may get an invitation at all. Every query here joins the two.
// Its two parameters are the campaign's audience() and its id: a refresh
// campaign reaches only the contacts flagged for it, an ordinary one only
// the others.
const notInvited = `e.refresh_campaign_id IS ? AND NOT EXISTS (SELECT 1 FROM invitations i WHERE i.campaign_id = ? AND i.contact_id = e.contact_id)`

// audience is the refresh_campaign_id of the contacts the campaign may
// invite: its own id for a refresh campaign, NULL for any other.
func (c Campaign) audience() any {
	if c.Settings.Refresh {
		return c.ID
	}
	return nil
}

// queueRows is how many invitations one INSERT adds: one statement per
// invitation cost ~10 µs each in the driver alone, a third of queueing
// (BenchmarkSend100k's queue phase, which runs before sending starts).
const queueRows = 100

// queueInsert is the INSERT of n invitations: n rows of (contact_id,
// token_hash, expires_at), then the campaign id and the time for all.
func queueInsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO invitations (campaign_id, contact_id, token_hash, expires_at, created_at)
		SELECT ?` + strconv.Itoa(3*n+1) + `, column1, column2, column3, ?` + strconv.Itoa(3*n+2) + ` FROM (VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(?%d, ?%d, ?%d)", 3*i+1, 3*i+2, 3*i+3)
	}
	b.WriteString(`) WHERE true ON CONFLICT (campaign_id, contact_id) DO NOTHING`)
	return b.String()
}

// queueBatch bounds one write transaction of Queue, so the page and web
// writers are never blocked for long (2,000 rows take ~40 ms). A send
// queues while it sends (see queueFeed), and its results reach the store
// through the journal's applier, off the path of the messages, so a batch
// does not hold up the connections; smaller batches would: each commit
// rewrites the token index's pages that its random keys touched (500 rows
// per batch cost ~10 µs per row in commits alone).
const queueBatch = 2000

// CountEligible returns how many contacts could be invited in the campaign
// now (eligible and not yet invited).
func CountEligible(ctx context.Context, st *crm.Store, c Campaign) (int, error) {
	var n int
	err := st.DB().QueryRowContext(ctx, `SELECT count(*) FROM invite_eligible e WHERE `+notInvited, c.audience(), c.ID).Scan(&n)
	return n, err
}

// Queue adds an invitation for every eligible contact not yet invited in
// the campaign, at most limit (0: all). Queueing is idempotent: invitations
// are UNIQUE per campaign and contact, and each carries the hash of its
// derived token (see TokenKey).
func Queue(ctx context.Context, st *crm.Store, name string, limit int) (QueueResult, error) {
	c, err := LoadCampaign(ctx, st, name)
	if err != nil {
		return QueueResult{}, err
	}
	res := QueueResult{}
	if res.Eligible, err = CountEligible(ctx, st, c); err != nil {
		return res, err
	}
	res.Queued, err = queue(ctx, st, c, limit, nil)
	return res, err
}

// queue streams the eligible contacts once from the read pool and inserts
// their invitations in write transactions of queueBatch rows. Why not keyset
// pages of the view: ORDER BY over invite_eligible cannot use an index
// (its contact_id is the contacts' id, the scan runs on consent_current),
// so every page sorted all the remaining contacts, quadratic in the
// audience. The read sees one snapshot; contacts invited meanwhile by
// another writer are skipped by ON CONFLICT, and eligibility is checked
// again when each message is claimed. committed, if not nil, is called
// after each batch's commit. It returns how many invitations it added.
func queue(ctx context.Context, st *crm.Store, c Campaign, limit int, committed func()) (queued int, err error) {
	key, err := tokenKey(ctx, st)
	if err != nil {
		return 0, err
	}
	tokens := key.maker()
	ids := make([]int64, 0, queueBatch)
	flush := func() error {
		if len(ids) == 0 {
			return nil
		}
		err := st.Update(ctx, func(tx *crm.Tx) error {
			now, expires := crm.FormatTime(tx.Now), crm.FormatTime(tx.Now.Add(c.Expiry))
			args := make([]any, 0, 3*queueRows)
			for rest := ids; len(rest) > 0; {
				n := min(len(rest), queueRows)
				args = args[:0]
				for _, id := range rest[:n] {
					args = append(args, id, HashToken(tokens.token(c.ID, id)), expires)
				}
				r, err := tx.ExecCached(queueInsert(n), append(args, c.ID, now)...)
				if err != nil {
					return fmt.Errorf("queue invitation: %w", err)
				}
				k, _ := r.RowsAffected()
				queued += int(k)
				rest = rest[n:]
			}
			return nil
		})
		ids = ids[:0]
		if err == nil && committed != nil {
			committed()
		}
		return err
	}
	rows, err := st.DB().QueryContext(ctx, `SELECT e.contact_id FROM invite_eligible e WHERE `+notInvited, c.audience(), c.ID)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	for read := 0; (limit <= 0 || read < limit) && rows.Next(); read++ {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return queued, err
		}
		if ids = append(ids, id); len(ids) == queueBatch {
			if err := flush(); err != nil {
				return queued, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return queued, err
	}
	rows.Close()
	return queued, flush()
}

// queueFeed is a queue that fills while the run sends: the claimer takes
// what each committed batch added and waits for the next one, instead of
// sending nothing until the last invitation is queued (queueing 100,000
// took ~13% of BenchmarkSend100k's run before it overlapped).
type queueFeed struct {
	more   chan struct{} // a batch was committed (buffered: a pending signal is enough)
	done   chan struct{} // closed when queueing has ended
	queued int           // set before done is closed
	err    error         // set before done is closed
}

// startQueue queues the campaign's invitations (at most limit, 0: all) in
// the background; cancelling ctx stops it between batches.
func startQueue(ctx context.Context, st *crm.Store, c Campaign, limit int) *queueFeed {
	f := &queueFeed{more: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		f.queued, f.err = queue(ctx, st, c, limit, func() {
			select {
			case f.more <- struct{}{}:
			default:
			}
		})
	}()
	return f
}

// finished reports whether queueing has ended (true for no feed: a run
// that queues nothing).
func (f *queueFeed) finished() bool {
	if f == nil {
		return true
	}
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// wait blocks until a batch more is committed or queueing ends; false if
// ctx ended first.
func (f *queueFeed) wait(ctx context.Context) bool {
	select {
	case <-f.more:
		return true
	case <-f.done:
		return true
	case <-ctx.Done():
		return false
	}
}
