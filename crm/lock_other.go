//go:build !unix

package crm

import (
	"errors"
	"fmt"
	"os"
)

// ErrLocked is returned by Lock when another process holds the lock.
var ErrLocked = errors.New("locked by another process")

// Lock takes an exclusive lock on DB.name.lock by creating it; where flock
// is missing, a crash leaves the file behind and it must be removed by hand.
func (s *Store) Lock(name string) (release func(), err error) {
	path := s.Path + "." + name + ".lock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s: %w (remove the file if no run is going on)", path, ErrLocked)
	}
	if err != nil {
		return nil, err
	}
	f.Close()
	return func() { os.Remove(path) }, nil
}
