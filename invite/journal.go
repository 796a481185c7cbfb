package invite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/repermit/repermit/crm"
)

// The send journal records each message's result before its in-flight
// place is given back, and the results reach SQLite a moment later, many
// per transaction.
//
// Why: a place is the bound on duplicates after kill -9 (see runPipeline),
// so results were committed in groups of at most Concurrency, one SQLite
// transaction each (~250 µs: locks, then two writes per dirty page), and
// every connection waited at the gate meanwhile. One append to this file
// (~10 µs, no fsync: the guarantee is against a killed process, as the
// store's own commits during a send are, see crm.SyncOnCheckpoint) frees
// the places instead. BenchmarkSend100k: see the commit that added it.
//
// Safety: results are written as absolute values (the attempts after this
// result, not "+1"), so applying one twice changes nothing; a run that dies
// leaves the file, and the next run (holding the sender lock) applies it
// before it claims anything. The file holds invitation and contact ids,
// never an address.

// journalSuffix names the journal beside the database, as SQLite's -wal.
const journalSuffix = "-sendlog"

// applyBatch and applyWait bound one SQLite transaction of results.
const (
	applyBatch = 1024
	applyWait  = 50 * time.Millisecond
)

// result is one message's outcome as the journal holds it.
type result struct {
	id        int64
	contactID int64
	reminder  bool
	state     byte   // 's' sent, 'd' deferred (temporary failure), 'f' failed, 'b' bounced: failed, and the address suppressed
	count     int    // after this result: the invitation's attempts, or a reminder's reminders_sent
	at        string // when (crm.FormatTime)
	expires   string // sent invitations: their new expiry
	msgID     string
	errText   string
	source    string // bounced: the suppression's source
}

// resultOf is the journal's form of a worker's outcome.
func resultOf(g *outcome, c *Campaign, reminders bool, at, expires string) result {
	j := g.job
	r := result{id: j.id, contactID: j.contactID, reminder: reminders, at: at, count: j.attempts + g.tries}
	if reminders {
		r.count = j.reminder
	}
	if g.err != nil {
		r.errText = truncate(g.err.Error(), 500)
	}
	switch {
	case g.sent:
		r.state, r.expires, r.msgID = 's', expires, g.msgID
	case g.kind == Temporary:
		r.state = 'd'
	case g.kind == Bounce:
		r.state, r.source = 'b', "invite:bounce:"+c.Name
	default:
		r.state = 'f'
	}
	return r
}

// appendLine appends r as one line: tab-separated fields, the texts quoted.
func (r *result) appendLine(b []byte) []byte {
	b = append(b, r.state)
	if r.reminder {
		b = append(b, 'r')
	} else {
		b = append(b, 'i')
	}
	b = append(b, '\t')
	b = strconv.AppendInt(b, r.id, 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, r.contactID, 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, int64(r.count), 10)
	b = append(b, '\t')
	b = append(b, r.at...)
	b = append(b, '\t')
	b = append(b, r.expires...)
	for _, s := range [...]string{r.msgID, r.errText, r.source} {
		b = append(b, '\t')
		b = strconv.AppendQuote(b, s)
	}
	return append(b, '\n')
}

// parseResult reads a line that appendLine wrote (without its newline).
func parseResult(line string) (result, error) {
	var r result
	f := strings.Split(line, "\t")
	if len(f) != 9 || len(f[0]) != 2 || !strings.ContainsRune("sdfb", rune(f[0][0])) || !strings.ContainsRune("ri", rune(f[0][1])) {
		return r, errors.New("not a result line")
	}
	r.state, r.reminder = f[0][0], f[0][1] == 'r'
	var err error
	if r.id, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return r, err
	}
	if r.contactID, err = strconv.ParseInt(f[2], 10, 64); err != nil {
		return r, err
	}
	if r.count, err = strconv.Atoi(f[3]); err != nil {
		return r, err
	}
	r.at, r.expires = f[4], f[5]
	for i, p := range []*string{&r.msgID, &r.errText, &r.source} {
		if *p, err = strconv.Unquote(f[6+i]); err != nil {
			return r, err
		}
	}
	return r, nil
}

// The statements that apply a result: absolute values only (idempotent).
const (
	applySentReminder = `UPDATE invitations SET reminder_status = '', reminders_sent = ?, last_reminder_at = ? WHERE id = ?`
	applySent         = `UPDATE invitations SET status = 'sent', attempts = ?, sent_at = ?,
		message_id = ?, last_error = '', expires_at = ? WHERE id = ?`
	applyDeferredReminder = `UPDATE invitations SET reminder_status = 'queued', last_error = ? WHERE id = ?`
	applyDeferred         = `UPDATE invitations SET status = 'queued', attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?`
	applyFailedReminder   = `UPDATE invitations SET reminder_status = 'failed', last_error = ? WHERE id = ?`
	applyFailed           = `UPDATE invitations SET status = 'failed', attempts = ?, last_error = ? WHERE id = ?`
)

// applyResults writes results into the store in one transaction.
func applyResults(ctx context.Context, st *crm.Store, rs []result) error {
	if len(rs) == 0 {
		return nil
	}
	return st.Update(ctx, func(tx *crm.Tx) error {
		for i := range rs {
			r := &rs[i]
			var err error
			switch {
			case r.state == 's' && r.reminder:
				_, err = tx.ExecCached(applySentReminder, r.count, r.at, r.id)
			case r.state == 's':
				_, err = tx.ExecCached(applySent, r.count, r.at, r.msgID, r.expires, r.id)
			case r.state == 'd' && r.reminder:
				_, err = tx.ExecCached(applyDeferredReminder, r.errText, r.id)
			case r.state == 'd':
				_, err = tx.ExecCached(applyDeferred, r.count, r.errText, r.at, r.id)
			case r.reminder:
				_, err = tx.ExecCached(applyFailedReminder, r.errText, r.id)
			default:
				_, err = tx.ExecCached(applyFailed, r.count, r.errText, r.id)
			}
			if err != nil {
				return err
			}
			if r.state == 'b' {
				var email *string
				if err := tx.QueryRowCached(`SELECT email FROM contacts WHERE id = ?`, r.contactID).Scan(&email); err != nil {
					return err
				}
				if email != nil { // an erased contact has no address left to suppress
					if _, err := tx.SuppressEmail(*email, crm.ReasonBounced, r.source); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}

// journal is a run's send journal: the recorder appends, an applier
// goroutine moves the results into the store.
type journal struct {
	st   *crm.Store
	path string
	fail func(error) // stops the run when results cannot be applied

	mu      sync.Mutex // the file's writes and truncation
	f       *os.File
	written int64 // results written (mu)
	applied int64 // results applied (mu)
	line    []byte

	ch   chan []result
	done chan struct{}
	err  error // the applier's error, set before done is closed
}

func journalPath(st *crm.Store) string { return st.Path + journalSuffix }

// openJournal starts a run's journal; replayJournal must have emptied it.
func openJournal(st *crm.Store, fail func(error)) (*journal, error) {
	path := journalPath(st)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the send journal: %w", err)
	}
	j := &journal{st: st, path: path, fail: fail, f: f, ch: make(chan []result, 256), done: make(chan struct{})}
	go j.applier()
	return j, nil
}

// record appends a group of results to the file; once it returns, they
// are as safe from a killed process as a commit.
func (j *journal) record(rs []result) error {
	j.mu.Lock()
	b := j.line[:0]
	for i := range rs {
		b = rs[i].appendLine(b)
	}
	j.line = b
	_, err := j.f.Write(b)
	if err == nil {
		j.written += int64(len(rs))
	}
	j.mu.Unlock()
	if err != nil {
		return fmt.Errorf("write the send journal: %w", err)
	}
	j.ch <- rs
	return nil
}

// applier moves journaled results into the store, up to applyBatch per
// transaction, and empties the file whenever everything in it is applied.
func (j *journal) applier() {
	defer close(j.done)
	batch := make([]result, 0, applyBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		first, ok := <-j.ch
		if !ok {
			return
		}
		batch = append(batch[:0], first...)
		timer.Reset(applyWait)
	gather:
		for len(batch) < applyBatch {
			select {
			case more, ok := <-j.ch:
				if !ok {
					break gather
				}
				batch = append(batch, more...)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		if j.err != nil {
			continue // drain: the results stay in the file for the next run
		}
		// Applying must survive Ctrl-C: the messages are already sent.
		if err := applyResults(context.Background(), j.st, batch); err != nil {
			j.err = fmt.Errorf("record send results: %w", err)
			j.fail(j.err)
			continue
		}
		j.mu.Lock()
		j.applied += int64(len(batch))
		if j.applied == j.written {
			if err := j.f.Truncate(0); err != nil && j.err == nil {
				j.err = fmt.Errorf("empty the send journal: %w", err)
				j.fail(j.err)
			}
		}
		j.mu.Unlock()
	}
}

// close applies what is left and removes the file when all of it is in
// the store (it stays for the next run's replay otherwise).
func (j *journal) close() error {
	close(j.ch)
	<-j.done
	j.f.Close()
	if j.err != nil {
		return j.err
	}
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the applied send journal: %w", err)
	}
	return nil
}

// replayJournal applies what a run that died left in the journal, then
// removes it. A last line without its newline is a write the kill cut
// short: its messages still held their in-flight places, so sending them
// again stays within the duplicates the contract allows.
func replayJournal(ctx context.Context, st *crm.Store) error {
	path := journalPath(st)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open the send journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	batch := make([]result, 0, applyBatch)
	for n := 1; ; n++ {
		line, err := r.ReadString('\n')
		if errors.Is(err, io.EOF) {
			break // nothing, or a torn last line
		}
		if err != nil {
			return fmt.Errorf("read the send journal: %w", err)
		}
		res, err := parseResult(strings.TrimSuffix(line, "\n"))
		if err != nil {
			return fmt.Errorf("the send journal %s is damaged at line %d (%v): move it aside to send again; the messages it records may then be sent twice", path, n, err)
		}
		if batch = append(batch, res); len(batch) == applyBatch {
			if err := applyResults(ctx, st, batch); err != nil {
				return fmt.Errorf("record the results of an interrupted run: %w", err)
			}
			batch = batch[:0]
		}
	}
	if err := applyResults(ctx, st, batch); err != nil {
		return fmt.Errorf("record the results of an interrupted run: %w", err)
	}
	f.Close()
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove the applied send journal: %w", err)
	}
	return nil
}
