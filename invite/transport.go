package invite

import (
	"context"
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
type Conn interface {
	Send(ctx context.Context, m *Message) error
	Close() error
}

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

func (c outboxConn) Send(ctx context.Context, m *Message) error {
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
	if err == nil {
		err = os.Rename(tmp, filepath.Join(c.o.Dir, m.Key+".eml"))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}
