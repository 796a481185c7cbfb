//go:build !unix

package invite

import (
	"errors"

	"github.com/repermit/repermit/crm"
)

// ErrSenderBusy is returned when another process is sending from the same
// database.
var ErrSenderBusy = errors.New("another `campaign send` or `campaign remind` is running on this database")

// lockSender is a no-op where flock is missing: run one sender at a time.
func lockSender(st *crm.Store) (func(), error) { return func() {}, nil }
