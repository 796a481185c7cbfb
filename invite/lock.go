package invite

import (
	"errors"

	"github.com/repermit/repermit/crm"
)

// ErrSenderBusy is returned when another process is sending from the same
// database.
var ErrSenderBusy = errors.New("another `campaign send` or `campaign remind` is running on this database")

// lockSender takes the store's "send" lock for the whole run: two senders
// paging through the same queue would send each message twice. The kernel
// drops it when the process dies, even by kill -9, so a dead run never
// blocks the next one, which resends what the dead one had not recorded.
func lockSender(st *crm.Store) (func(), error) {
	release, err := st.Lock("send")
	if errors.Is(err, crm.ErrLocked) {
		return nil, ErrSenderBusy
	}
	return release, err
}
