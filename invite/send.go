package invite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/repermit/repermit/crm"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/time/rate"
)

// SendOptions configure Send and Remind. Zero values are sensible defaults.
type SendOptions struct {
	Campaign  string
	Identity  Identity
	Transport Transport
	// Rate caps messages per second (0: unthrottled).
	Rate float64
	// Concurrency is the number of connections (default 8). It also bounds
	// the messages delivered but not yet recorded, so at most this many
	// are sent twice after kill -9. Eight is the default because results
	// were committed up to Concurrency at a time: BenchmarkSend100k ran at
	// 5,813 msgs/s (200 µs CPU/msg) with 4 and 7,640 msgs/s (156 µs)
	// with 8 on this 2-core machine. listmonk's default is 10.
	Concurrency int
	// Limit sends at most this many messages in this run (0: all).
	Limit int
	// MaxAttempts per message within one run (default 4); a message still
	// failing temporarily after that stays queued for the next run.
	MaxAttempts int
	// RetryBase is the first backoff delay (default 1s), doubled per
	// attempt, with jitter, capped at 1 minute.
	RetryBase time.Duration
	// MaxConsecutiveFailures stops the run (default 10): the server is down
	// or refuses us, and sending on would only fail everything.
	MaxConsecutiveFailures int
	// Progress receives a progress bar (ProgressBar, for a terminal) or
	// plain log lines. Nil: silent. Lines never contain an address.
	Progress    io.Writer
	ProgressBar bool
}

// SendResult is the summary of campaign send (JSON keys of the contract).
type SendResult struct {
	Eligible int `json:"eligible"`
	Queued   int `json:"queued"`
	Sent     int `json:"sent"`
	Failed   int `json:"failed"`
	// Skipped are invitations left unsent this run: their contact is no
	// longer eligible, or a temporary failure outlasted the retries (those
	// are retried by the next run).
	Skipped int `json:"skipped"`
	// Bounced (part of Failed) had their address suppressed.
	Bounced int `json:"-"`
	// Deferred (part of Skipped) failed temporarily and stay queued.
	Deferred int `json:"-"`
}

// ErrTooManyFailures stops a run whose messages keep failing.
var ErrTooManyFailures = errors.New("too many consecutive failures")

// StopError says why a run stopped early and how to resume.
type StopError struct {
	Failures int
	Last     error
}

func (e *StopError) Error() string {
	return fmt.Sprintf("stopped after %d consecutive failures; the last: %s. Nothing is lost: unsent invitations stay queued",
		e.Failures, redact(e.Last))
}
func (e *StopError) Unwrap() error { return ErrTooManyFailures }

var emailLike = regexp.MustCompile(`[^\s<>"'(),;:]+@[^\s<>"'(),;:]+`)

// redact removes anything that looks like an address from an error, for
// logs (servers quote the recipient in their replies).
func redact(err error) string {
	if err == nil {
		return ""
	}
	return emailLike.ReplaceAllString(err.Error(), "<address>")
}

func (o *SendOptions) defaults() error {
	if o.Transport == nil {
		return errors.New("no transport: give an SMTP URL or an outbox directory")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 4
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.MaxConsecutiveFailures <= 0 {
		o.MaxConsecutiveFailures = 10
	}
	if o.Rate < 0 {
		return errors.New("the rate must not be negative")
	}
	return nil
}

// Send queues an invitation for every eligible contact of the campaign not
// yet invited and sends what is queued: exactly one message per invitation.
// It may be called again at any time (after Ctrl-C, a crash, a --limit
// pilot): it resumes where the last run stopped, and re-sends at most the
// messages that were in flight when a process was killed. Cancelling ctx
// lets messages in flight finish, records them, and returns ctx's error.
func Send(ctx context.Context, st *crm.Store, o SendOptions) (SendResult, error) {
	var res SendResult
	if err := o.defaults(); err != nil {
		return res, err
	}
	c, err := LoadCampaign(ctx, st, o.Campaign)
	if err != nil {
		return res, err
	}
	r, err := NewRenderer(&c, o.Identity)
	if err != nil {
		return res, err
	}
	unlock, err := lockSender(st)
	if err != nil {
		return res, err
	}
	defer unlock()
	defer limitCache(ctx, st)()
	if err := recoverInFlight(ctx, st); err != nil {
		return res, err
	}
	pending, err := countQueued(ctx, st, c.ID, false)
	if err != nil {
		return res, err
	}
	toQueue := 0
	if o.Limit > 0 {
		toQueue = o.Limit - pending
		if toQueue <= 0 {
			toQueue = -1
		}
	}
	if res.Eligible, err = CountEligible(ctx, st, c); err != nil {
		return res, err
	}
	// Queueing runs beside the sending (see queueFeed); the total is what
	// it will add: the eligible, less what the limit leaves out.
	var feed *queueFeed
	total := pending
	if toQueue >= 0 {
		total += res.Eligible
		if toQueue > 0 {
			total = pending + min(res.Eligible, toQueue)
		}
	}
	if o.Limit > 0 && total > o.Limit {
		total = o.Limit
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if toQueue >= 0 {
		feed = startQueue(runCtx, st, c, toQueue)
	}
	err = runPipeline(runCtx, st, &c, r, o, false, feed, total, &res)
	if feed != nil {
		// A run that stopped early stops queueing too; what it committed
		// stays queued for the next run.
		stop()
		<-feed.done
		res.Queued = feed.queued
		if feed.err != nil && err == nil && ctx.Err() == nil {
			err = fmt.Errorf("queue invitations: %w", feed.err)
		}
	}
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return res, err
}

// DryRun counts who would be invited and renders one sample message for
// the first of them (nil when nobody is eligible), queueing and sending
// nothing. The sample's links carry a placeholder token.
func DryRun(ctx context.Context, st *crm.Store, o SendOptions) (SendResult, *Message, error) {
	var res SendResult
	c, err := LoadCampaign(ctx, st, o.Campaign)
	if err != nil {
		return res, nil, err
	}
	r, err := NewRenderer(&c, o.Identity)
	if err != nil {
		return res, nil, err
	}
	if res.Eligible, err = CountEligible(ctx, st, c); err != nil {
		return res, nil, err
	}
	var id int64
	err = st.DB().QueryRowContext(ctx, `SELECT e.contact_id FROM invite_eligible e WHERE `+notInvited+` ORDER BY e.contact_id LIMIT 1`, c.audience(), c.ID).Scan(&id)
	if err != nil {
		return res, nil, nil
	}
	ct, err := st.ContactByID(ctx, id)
	if err != nil {
		return res, nil, err
	}
	now := st.Now()
	m, err := r.Render(Recipient{Email: ct.Email, FirstName: ct.FirstName, LastName: ct.LastName, Language: ct.Language,
		Token: "DRY-RUN-SAMPLE-TOKEN", ExpiresAt: now.Add(c.Expiry)}, now)
	return res, m, err
}

// recoverInFlight records what a killed run left in its send journal, and
// puts back invitations and reminders that an earlier version of the
// sender marked 'sending' when it claimed them (claims now leave them
// 'queued'): with the sender lock held, nothing else is sending them.
func recoverInFlight(ctx context.Context, st *crm.Store) error {
	if err := replayJournal(ctx, st); err != nil {
		return err
	}
	return st.Update(ctx, func(tx *crm.Tx) error {
		if _, err := tx.Exec(`UPDATE invitations SET status = 'queued' WHERE status = 'sending'`); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE invitations SET reminder_status = 'queued' WHERE reminder_status = 'sending'`)
		return err
	})
}

// sendCacheKiB bounds the writer connection's page cache during a run.
// The store gives it 64 MiB for imports; a send touches a few pages per
// message and the invitations' indexes, and 16 MiB keeps a 100,000-message
// run's peak memory (resident, SQLite included) well under 100 MiB.
const sendCacheKiB = 16 << 10

// limitCache sets the writer's page cache to sendCacheKiB and returns a
// function that restores the previous size.
func limitCache(ctx context.Context, st *crm.Store) func() {
	var prev int64
	err := st.Update(ctx, func(tx *crm.Tx) error {
		if err := tx.QueryRow(`PRAGMA cache_size`).Scan(&prev); err != nil {
			return err
		}
		_, err := tx.Exec(fmt.Sprintf(`PRAGMA cache_size = %d`, -sendCacheKiB))
		return err
	})
	if err != nil || prev == -sendCacheKiB {
		return func() {}
	}
	return func() {
		st.Update(context.WithoutCancel(ctx), func(tx *crm.Tx) error {
			_, err := tx.Exec(fmt.Sprintf(`PRAGMA cache_size = %d`, prev))
			return err
		})
	}
}

func countQueued(ctx context.Context, st *crm.Store, campaignID int64, reminders bool) (int, error) {
	q := `SELECT count(*) FROM invitations WHERE campaign_id = ? AND status = 'queued'`
	if reminders {
		q = `SELECT count(*) FROM invitations WHERE campaign_id = ? AND reminder_status = 'queued'`
	}
	var n int
	err := st.DB().QueryRowContext(ctx, q, campaignID).Scan(&n)
	return n, err
}

// job is one claimed message.
type job struct {
	id, contactID int64
	email         string
	first, last   string
	lang          string
	reminder      int
	attempts      int
}

// outcome is a job's result, handed to the recorder. Outcomes are reused:
// a run has a fixed set of them, taken by the workers and given back by
// the recorder.
type outcome struct {
	job   job
	sent  bool
	kind  Outcome
	err   error
	tries int
	msgID string
	// delivering: the message has passed the commit gate (its delivery may
	// be final) and holds one of the run's in-flight places until it is
	// recorded.
	delivering bool
}

// claimBatch bounds how many messages are claimed ahead of the workers.
const claimBatch = 256

// recordBatch bounds the results written to the journal at once.
const recordBatch = 256

// The claim queries re-check eligibility at send time (joining the one view
// invite_eligible, for the campaign's audience — see notInvited; SQLite flattens it and drives the join from the
// invitations_status index): whoever unsubscribed, bounced or answered since the
// invitation was queued gets nothing. Keyset paging on id keeps each claim
// cheap and never revisits rows skipped in this run.
const claimInvites = `SELECT i.id, i.contact_id, c.email, c.first_name, c.last_name, c.language, i.attempts
	FROM invitations i JOIN invite_eligible e ON e.contact_id = i.contact_id AND e.refresh_campaign_id IS ?
	JOIN contacts c ON c.id = i.contact_id
	WHERE i.campaign_id = ? AND i.status = 'queued' AND i.id > ?
	ORDER BY i.id LIMIT ?`

const claimReminders = `SELECT i.id, i.contact_id, c.email, c.first_name, c.last_name, c.language, i.reminders_sent + 1
	FROM invitations i JOIN invite_eligible e ON e.contact_id = i.contact_id AND e.refresh_campaign_id IS ?
	JOIN contacts c ON c.id = i.contact_id
	WHERE i.campaign_id = ? AND i.reminder_status = 'queued' AND i.id > ?
	  AND i.response = '' AND i.expired_at = '' AND i.status = 'sent'
	ORDER BY i.id LIMIT ?`

// errRecordFailed abandons a message when results can no longer be
// recorded: the run is stopping, and sending on would add duplicates.
var errRecordFailed = errors.New("recording results failed")

// runPipeline claims, renders, sends and records: one claimer (following
// feed, the queue being filled, if any), Concurrency workers (one
// connection each), one recorder that writes whatever results are waiting
// to the send journal, and the journal's applier, which moves them into
// the store (see journal.go).
//
// Exactly once, and at most Concurrency duplicates after kill -9: a message
// delivered but not yet recorded holds one of Concurrency in-flight places,
// taken right before the step that makes its delivery final (the SMTP dot,
// see Conn) and given back when its result is in the journal. A worker
// hands its result to the recorder and goes on with the next message at
// once, and waits only when all Concurrency places are taken. With a
// server that pipelines (see smtpConn.sendPipelined) nothing but rendering
// comes before the gate.
func runPipeline(ctx context.Context, st *crm.Store, c *Campaign, r *Renderer, o SendOptions, reminders bool, feed *queueFeed, total int, res *SendResult) error {
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	key, err := tokenKey(ctx, st)
	if err != nil {
		return err
	}
	var limiter *rate.Limiter
	if o.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(o.Rate), 1)
	}
	prog := newProgress(o, total, reminders)
	defer prog.finish()
	// The queue and the applier commit through st.Update; WAL checkpoints
	// run in the background for the run: SQLite's inline ones stall the
	// commit that triggers them.
	defer st.BackgroundCheckpoints()()

	jobs := make(chan job, o.Concurrency)
	// The run's outcomes: a worker takes one per message, the recorder
	// gives it back. results can hold them all, so sending never blocks.
	free := make(chan *outcome, 2*o.Concurrency)
	for range cap(free) {
		free <- &outcome{}
	}
	results := make(chan *outcome, cap(free))
	inFlight := make(chan struct{}, o.Concurrency)
	var recordFailed atomic.Bool

	var claimErr error
	var claimed atomic.Int64
	// claimer
	go func() {
		defer close(jobs)
		var after int64
		for {
			if runCtx.Err() != nil {
				return
			}
			n := claimBatch
			if o.Limit > 0 {
				left := o.Limit - int(claimed.Load())
				if left <= 0 {
					return
				}
				n = min(n, left)
			}
			// Read before the claim: a feed that ended before it had
			// committed everything the claim can see.
			finished := feed.finished()
			batch, err := claim(runCtx, st, c, reminders, after, n)
			if err != nil {
				if runCtx.Err() == nil {
					claimErr = err
					stop(err)
				}
				return
			}
			if len(batch) == 0 {
				if finished || !feed.wait(runCtx) {
					return
				}
				continue
			}
			after = batch[len(batch)-1].id
			claimed.Add(int64(len(batch)))
			for _, j := range batch {
				select {
				case jobs <- j:
				case <-runCtx.Done():
					return // the rest stays queued for the next run
				}
			}
		}
	}()

	var consecutive atomic.Int64
	fail := func(err error) {
		if n := consecutive.Add(1); n >= int64(o.MaxConsecutiveFailures) {
			stop(&StopError{Failures: int(n), Last: err})
		}
	}
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Add(1)
		w := &worker{o: o, r: r, c: c, tokens: key.maker(), limiter: limiter, fail: fail,
			ok: func() { consecutive.Store(0) }, stop: stop, sendCtx: context.WithoutCancel(runCtx)}
		// The commit gate: take an in-flight place for the current message
		// (once, whatever its retries).
		w.gate = func() error {
			if !w.out.delivering {
				inFlight <- struct{}{}
				w.out.delivering = true
			}
			if recordFailed.Load() {
				return errRecordFailed
			}
			return nil
		}
		// A server's refusal after the gate means the message was not
		// delivered: its place is free for others during the backoff.
		w.refused = func() {
			if w.out.delivering {
				w.out.delivering = false
				<-inFlight
			}
		}
		go func() {
			defer wg.Done()
			defer w.close()
			for j := range jobs {
				w.out = <-free
				*w.out = outcome{job: j}
				if !w.do(runCtx, st, j) {
					// Cancelled or stopped before the message went out.
					if w.out.delivering {
						<-inFlight
					}
					free <- w.out
					return
				}
				results <- w.out
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	// recorder: write the results waiting into the send journal (see
	// journal.go), then give back their in-flight places and outcomes. It
	// takes what is there without waiting for more: a journal write is one
	// append, and a place held longer keeps a connection at the gate.
	jr, err := openJournal(st, func(err error) {
		recordFailed.Store(true)
		stop(err)
	})
	if err != nil {
		stop(err)
		for out := range results {
			if out.delivering {
				<-inFlight
			}
			free <- out
		}
		return err
	}
	var recErr error
	group := make([]*outcome, 0, recordBatch)
	for out := range results {
		group = append(group[:0], out)
	gather:
		for len(group) < recordBatch {
			select {
			case more, ok := <-results:
				if !ok {
					break gather
				}
				group = append(group, more)
			default:
				break gather
			}
		}
		if recErr == nil {
			at := crm.FormatTime(st.Now().UTC())
			expires := crm.FormatTime(st.Now().UTC().Add(c.Expiry))
			// The applier keeps the slice: a new one for each group.
			rs := make([]result, 0, len(group))
			for _, g := range group {
				rs = append(rs, resultOf(g, c, reminders, at, expires))
			}
			recErr = jr.record(rs)
			if recErr != nil {
				recordFailed.Store(true)
				stop(recErr)
			}
		}
		for _, g := range group {
			if recErr == nil {
				res.add(g)
				prog.add(g)
			}
			if g.delivering {
				<-inFlight
			}
			free <- g
		}
	}
	if err := jr.close(); err != nil && recErr == nil {
		recErr = err
	}
	// Skipped: still queued after this run, not counting fresh ones beyond
	// the limit.
	left, err := countQueued(context.WithoutCancel(ctx), st, c.ID, reminders)
	if err == nil {
		done := res.Sent + res.Failed
		if o.Limit > 0 {
			left = min(left, max(0, o.Limit-done))
		}
		res.Skipped = left
	}
	switch {
	case recErr != nil:
		return fmt.Errorf("record send results: %w", recErr)
	case claimErr != nil:
		return fmt.Errorf("claim invitations: %w", claimErr)
	}
	if cause := context.Cause(runCtx); cause != nil && runCtx.Err() != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return cause
	}
	return nil
}

func (res *SendResult) add(o *outcome) {
	switch {
	case o.sent:
		res.Sent++
	case o.kind == Temporary:
		res.Deferred++
	case o.kind == Bounce:
		res.Failed++
		res.Bounced++
	default:
		res.Failed++
	}
}

func tokenKey(ctx context.Context, st *crm.Store) (TokenKey, error) {
	var k TokenKey
	err := st.Update(ctx, func(tx *crm.Tx) error {
		var err error
		k, err = LoadTokenKey(tx)
		return err
	})
	return k, err
}

// claim reads the next n messages to send. It writes nothing: within a run
// the keyset (id > after) keeps a message from being claimed twice, and the
// sender lock keeps a second run away; a message stays 'queued' until its
// result is recorded, so a killed run leaves nothing to put back. Reading
// from the read pool also keeps claims off the one writer connection, where
// the recorder commits the results the workers wait for.
func claim(ctx context.Context, st *crm.Store, c *Campaign, reminders bool, after int64, n int) ([]job, error) {
	q := claimInvites
	if reminders {
		q = claimReminders
	}
	rows, err := st.DB().QueryContext(ctx, q, c.audience(), c.ID, after, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]job, 0, n)
	for rows.Next() {
		var j job
		var extra int
		if err := rows.Scan(&j.id, &j.contactID, &j.email, &j.first, &j.last, &j.lang, &extra); err != nil {
			return nil, err
		}
		if reminders {
			j.reminder = extra
		} else {
			j.attempts = extra
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// worker owns one connection, and the buffers it renders into.
type worker struct {
	o       SendOptions
	r       *Renderer
	c       *Campaign
	tokens  *tokenMaker
	limiter *rate.Limiter
	conn    Conn
	fail    func(error)
	ok      func()
	stop    context.CancelCauseFunc
	sendCtx context.Context // the run's values without its cancellation
	gate    func() error    // the Conn commit callback, see runPipeline
	refused func()          // the server refused the message after the gate

	msg Message
	buf []byte
	out *outcome // the current message's
}

func (w *worker) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// do sends one job with retries, filling w.out. It returns false when the
// run was cancelled or stopped before the message went out (nothing to
// record).
func (w *worker) do(ctx context.Context, st *crm.Store, j job) bool {
	out := w.out
	if w.limiter != nil {
		if err := w.limiter.Wait(ctx); err != nil {
			return false
		}
	}
	if ctx.Err() != nil {
		return false
	}
	now := st.Now().UTC()
	err := w.r.renderInto(&w.msg, w.buf[:0], Recipient{InvitationID: j.id, Email: j.email, FirstName: j.first, LastName: j.last,
		Language: j.lang, Token: w.tokens.token(w.c.ID, j.contactID), Reminder: j.reminder,
		ExpiresAt: now.Add(w.c.Expiry)}, now)
	if err != nil {
		// A template that cannot render fails every message: stop.
		w.stop(err)
		return false
	}
	w.buf = w.msg.Data[:0] // keep the grown buffer for the next message
	out.msgID = w.msg.MessageID
	for attempt := 1; ; attempt++ {
		out.tries = attempt
		err := w.send(ctx, &w.msg)
		if err == nil {
			out.sent = true
			w.ok()
			return true
		}
		if errors.Is(err, ErrAbandoned) {
			return false // the run is stopping; the message did not go out
		}
		out.err, out.kind = err, Classify(err)
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			w.refused() // a reply, not a lost connection: nothing was delivered
		}
		var de *dialError
		if errors.As(err, &de) && out.kind == Permanent {
			// Refused credentials or TLS: every message would fail.
			w.stop(&StopError{Failures: 1, Last: err})
			return false
		}
		if errors.As(err, &de) {
			out.kind = Temporary // a connection failure never fails the message itself
		}
		if out.kind == Bounce {
			w.ok() // the server works; the address does not
			return true
		}
		w.fail(err)
		if out.kind == Permanent || attempt >= w.o.MaxAttempts {
			return true
		}
		// Exponential backoff with full jitter, cancellable.
		d := w.o.RetryBase << (attempt - 1)
		d = min(d, time.Minute)
		d = d/2 + rand.N(d/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			out.kind = Temporary
			return true // record the deferral: the message did not go out
		case <-t.C:
		}
	}
}

// send delivers m on the worker's connection, dialling when needed. A
// message already being transmitted finishes even when ctx is cancelled.
func (w *worker) send(ctx context.Context, m *Message) error {
	if w.conn == nil {
		conn, err := w.o.Transport.Dial(ctx)
		if err != nil {
			return &dialError{err}
		}
		w.conn = conn
	}
	err := w.conn.Send(w.sendCtx, m, w.gate)
	if err != nil && !isProtocolReply(err) {
		w.conn.Close()
		w.conn = nil
	}
	return err
}

// dialError is a failure to connect or log in.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// progress shows a bar on a terminal or a log line every few seconds.
type progress struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	total int
	what  string
	start time.Time
	last  time.Time
	n     SendResult
}

func newProgress(o SendOptions, total int, reminders bool) *progress {
	p := &progress{w: o.Progress, total: total, what: "invitations", start: time.Now()}
	if reminders {
		p.what = "reminders"
	}
	p.last = p.start
	if p.w == nil {
		return p
	}
	if o.ProgressBar {
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription("sending "+p.what),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("msg"),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	} else {
		fmt.Fprintf(p.w, "sending %d %s\n", total, p.what)
	}
	return p
}

func (p *progress) add(o *outcome) {
	p.n.add(o)
	if p.w == nil {
		return
	}
	if p.bar != nil {
		p.bar.Add(1)
		return
	}
	if o.err != nil && !o.sent {
		fmt.Fprintf(p.w, "invitation %d: %s\n", o.job.id, redact(o.err))
	}
	if time.Since(p.last) >= 2*time.Second {
		p.last = time.Now()
		p.line()
	}
}

func (p *progress) line() {
	el := time.Since(p.start).Seconds()
	done := p.n.Sent + p.n.Failed + p.n.Deferred
	fmt.Fprintf(p.w, "%s: %d of %d done (sent %d, failed %d, deferred %d), %.0f msg/s\n",
		p.what, done, p.total, p.n.Sent, p.n.Failed, p.n.Deferred, float64(done)/max(el, 0.001))
}

func (p *progress) finish() {
	if p.w == nil {
		return
	}
	if p.bar != nil {
		p.bar.Finish()
		return
	}
	p.line()
}
