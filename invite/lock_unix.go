//go:build unix

package invite

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/repermit/repermit/crm"
)

// ErrSenderBusy is returned when another process is sending from the same
// database.
var ErrSenderBusy = errors.New("another `campaign send` or `campaign remind` is running on this database")

// lockSender takes an exclusive lock on DB.send.lock for the whole run: two
// senders paging through the same queue would send each message twice. The
// kernel drops it when the process dies, even by kill -9, so a dead run
// never blocks the next one, which resends what the dead one had not
// recorded.
func lockSender(st *crm.Store) (func(), error) {
	f, err := os.OpenFile(st.Path+".send.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sender lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrSenderBusy
		}
		return nil, fmt.Errorf("sender lock: %w", err)
	}
	return func() { f.Close() }, nil
}
