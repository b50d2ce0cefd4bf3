package bolt

import (
	"encoding/binary"

	bbolt "go.etcd.io/bbolt"
)

// Len returns how many updates the store retains: what Scan(0, LastSeq())
// would return, honouring Retention.MaxAge like Scan does even between the
// writer's sweeps. The hub exports it as mercure_history_updates.
//
// Seqs in the log are contiguous (the writer assigns them one by one and
// retention deletes only from the front), so the count is last-first+1: two
// cursor seeks in one read transaction, O(log n) whatever the size of the
// history, plus the updates that expired since the last commit or sweep
// when MaxAge is set. It returns 0 once the store is closed.
func (s *Store) Len() uint64 {
	if s.closed.Load() {
		return 0
	}
	var n uint64
	err := s.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketLog).Cursor()
		kLast, _ := c.Last()
		if len(kLast) != 8 {
			return nil
		}
		kFirst, _ := c.First()
		first, last := binary.BigEndian.Uint64(kFirst), binary.BigEndian.Uint64(kLast)
		front, err := s.liveFront(tx)
		if err != nil {
			return err
		}
		first = max(first, front)
		if first <= last {
			n = last - first + 1
		}
		return nil
	})
	if err != nil {
		s.logger.Debug("history length unavailable", "path", s.path, "err", err)
		return 0
	}
	return n
}
