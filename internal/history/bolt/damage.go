package bolt

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	bbolt "go.etcd.io/bbolt"
)

// A damaged file (truncated, overwritten, a bad disk) makes bbolt panic, or
// fault on a page mapped past the end of the file, when a transaction meets
// the damage. Every transaction of the store runs under guard, which turns
// both into an error wrapping ErrCorrupt, so that the damage is reported
// (at start-up as a one-line error, at run time as an ERROR log and the
// clean end of one replay) instead of crashing the process.

// guard runs fn, turning a panic or a memory fault inside it into an error
// wrapping ErrCorrupt.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			msg := strings.Join(strings.Fields(fmt.Sprint(r)), " ") // one line
			err = fmt.Errorf("%w: %s: %s", ErrCorrupt, path, msg)
		}
	}()
	return fn()
}

// view is db.View under guard.
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	err := guard(s.path, func() error { return s.db.View(fn) })
	s.reportCorrupt(err)
	return err
}

// update is db.Update under guard.
func (s *Store) update(fn func(*bbolt.Tx) error) error {
	err := guard(s.path, func() error { return s.db.Update(fn) })
	s.reportCorrupt(err)
	return err
}

// checkSize fails when the file is shorter than the pages its meta page
// claims, the mark of a truncated copy; bbolt would fault on the missing
// pages later, wherever they are first read.
func checkSize(tx *bbolt.Tx, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if want := tx.Size(); fi.Size() < want {
		return fmt.Errorf("%w: the file is %d bytes but its pages need %d (truncated?)", ErrCorrupt, fi.Size(), want)
	}
	return nil
}

// reportCorrupt logs, at most once per interval, that err found damage.
func (s *Store) reportCorrupt(err error) {
	if !errors.Is(err, ErrCorrupt) {
		return
	}
	if ok, n := s.corruptLog.Allow(); ok {
		s.logger.Error("the history file is damaged: replays stop where the damage starts; stop the hub and move the file aside",
			"path", s.path, "err", err, "reports_not_logged", n)
	}
}
