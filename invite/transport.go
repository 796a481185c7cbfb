package invite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Transport delivers rendered messages. The pipeline opens one Conn per
// worker and sends many messages over it.
type Transport interface {
	Dial(ctx context.Context) (Conn, error)
}

// Conn is one worker's connection. Send returns nil only when the message
// was accepted; errors are classified with Classify. After an error that is
// not an *smtp.SMTPError the pipeline closes the Conn and dials again.
//
// commit, when not nil, is called right before the step that makes the
// delivery final (the end of the SMTP DATA; the rename of the outbox file).
// When it returns an error, Send abandons the message undelivered and
// returns an error wrapping ErrAbandoned. The pipeline takes one of its
// --concurrency in-flight places there, given back once the result is on
// disk: so no more than --concurrency messages are ever delivered and not
// recorded, which bounds the duplicates after kill -9, while the commits
// overlap with sending the next messages.
type Conn interface {
	Send(ctx context.Context, m *Message, commit func() error) error
	Close() error
}

// ErrAbandoned marks a message a Conn gave up before delivering it, because
// its commit callback failed.
var ErrAbandoned = errors.New("message abandoned before delivery")

// Outbox writes each message as DIR/KEY.eml, atomically (a temporary file
// renamed into place), so the tool works without a mail server and a half
// written file is never seen. A resend of the same message replaces its
// file: the outbox never holds duplicates.
type Outbox struct {
	Dir string
}

var _ Transport = (*Outbox)(nil)

// NewOutbox returns an outbox writing into dir (created when missing).
func NewOutbox(dir string) (*Outbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox %s: %w (pick another with --outbox)", dir, err)
	}
	return &Outbox{Dir: dir}, nil
}

// Dial returns the outbox itself: files need no connection.
func (o *Outbox) Dial(ctx context.Context) (Conn, error) { return outboxConn{o}, nil }

type outboxConn struct{ o *Outbox }

func (c outboxConn) Close() error { return nil }

func (c outboxConn) Send(ctx context.Context, m *Message, commit func() error) error {
	f, err := os.CreateTemp(c.o.Dir, ".tmp-*.eml")
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(m.Data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && commit != nil {
		if cerr := commit(); cerr != nil {
			os.Remove(tmp)
			return fmt.Errorf("%w: %w", ErrAbandoned, cerr)
		}
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(c.o.Dir, m.Key+".eml"))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}
