package bolt

import (
	bbolt "go.etcd.io/bbolt"

	"github.com/mercurectl/mercurectl/internal/history"
)

// Len returns how many updates the store retains, of both kinds: what
// Scan(0, LastSeq()) would return.
func (s *Store) Len() uint64 {
	u := s.Usage()
	return u.Updates + u.Events
}

// Usage returns what the store retains of each kind, honouring
// Retention.MaxAge like Scan does even between the writer's sweeps. The hub
// exports it as the mercure_history_* gauges.
//
// It reads the usage record that every write transaction keeps (see
// kinds.go), so it costs one read transaction, O(log n) whatever the size of
// the history, plus the updates that expired since the last commit or sweep
// when MaxAge is set. It returns zero once the store is closed.
func (s *Store) Usage() history.Usage {
	if s.closed.Load() {
		return history.Usage{}
	}
	var out history.Usage
	err := s.view(func(tx *bbolt.Tx) error {
		u, ok := decodeUsage(tx.Bucket(bucketMeta).Get(keyUsage))
		if !ok {
			return nil
		}
		if s.retention.MaxAge > 0 {
			cutoff := s.now().Add(-s.retention.MaxAge)
			for k, name := range kindBuckets {
				c := tx.Bucket(name).Cursor()
				for key, v := c.First(); key != nil && u[k].count > 0; key, v = c.Next() {
					t, _, size, err := decodeHead(v)
					if err != nil {
						return err
					}
					if !t.Before(cutoff) {
						break
					}
					u[k].count--
					u[k].bytes -= min(size, u[k].bytes)
				}
			}
		}
		out = history.Usage{
			Updates: u[kindPublished].count, UpdateBytes: u[kindPublished].bytes,
			Events: u[kindEvent].count, EventBytes: u[kindEvent].bytes,
		}
		return nil
	})
	if err != nil {
		s.logger.Debug("history usage unavailable", "path", s.path, "err", err)
		return history.Usage{}
	}
	return out
}
