package crm

import (
	"database/sql"
	"sync"
	"time"
)

// BackgroundCheckpoints moves WAL checkpoints off the writer's commits
// until stop is called. SQLite otherwise checkpoints inside the commit that
// crosses the WAL's size limit, and that commit (with everyone waiting on
// it) pays for copying the whole WAL into the database. A second connection
// checkpoints every 50 ms instead. On any failure it leaves SQLite's inline
// checkpoints on: slower, never unsafe. stop is safe to call more than once.
func (s *Store) BackgroundCheckpoints() (stop func()) {
	db, err := sql.Open("sqlite3", "file:"+s.Path+"?_busy_timeout=10000")
	if err != nil {
		return func() {}
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return func() {}
	}
	if _, err := s.write.Exec(`PRAGMA wal_autocheckpoint = 0`); err != nil {
		db.Close()
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				// Errors (SQLITE_BUSY while another process checkpoints)
				// only mean "next tick".
				db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
			s.write.Exec(`PRAGMA wal_autocheckpoint = 1000`)
			db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
			db.Close()
		})
	}
}
