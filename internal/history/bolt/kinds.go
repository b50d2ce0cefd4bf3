package bolt

import (
	"encoding/binary"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mercurectl/mercurectl/internal/history"
)

// Published updates and subscription events are retained apart
// (history.Retention): each kind has its own bucket, keyed by Seq, and its
// own count and byte total. Each bucket only ever grows at the end and
// shrinks from the front, as the single log did before subscription events
// had a bucket of their own.
//
// Compatibility. A file written before the events bucket existed holds
// every update, events included, in the log bucket: it opens as it is, its
// updates replay as they did, and they all count as published updates (the
// old subscription events among them leave as published updates arrive).
// The format version stays 1, so an earlier version still opens a file that
// this one wrote: it sees the log bucket only (no subscription events), and
// whatever it changes there this version notices at its next start, because
// the usage record no longer matches the buckets, and it counts again.

// kind indexes the two kinds: published updates, then subscription events.
type kind int

const (
	kindPublished kind = iota
	kindEvent
)

var kindBuckets = [2][]byte{bucketLog, bucketEvents}

func kindOf(u *history.Update) kind {
	if u.SubscriptionEvent {
		return kindEvent
	}
	return kindPublished
}

// kindState is what the store retains of one kind.
type kindState struct {
	first, last  uint64 // Seqs of the oldest and newest retained; 0 when none
	count, bytes uint64 // how many, and the sum of their history.Size
}

// usage is the state of both kinds, as the meta bucket's usage record keeps
// it: the counts cost nothing to read at start-up or for Len.
type usage [2]kindState

// usageVersion is the first byte of the usage record.
const usageVersion = 1

// usageRecordLen is the length of the usage record: the version, then for
// each kind first, last, count and bytes, big-endian.
const usageRecordLen = 1 + 2*4*8

func (u *usage) encode() []byte {
	b := make([]byte, 1, usageRecordLen)
	b[0] = usageVersion
	for _, k := range u {
		for _, v := range []uint64{k.first, k.last, k.count, k.bytes} {
			b = binary.BigEndian.AppendUint64(b, v)
		}
	}
	return b
}

func decodeUsage(b []byte) (usage, bool) {
	var u usage
	if len(b) != usageRecordLen || b[0] != usageVersion {
		return u, false
	}
	b = b[1:]
	for i := range u {
		u[i] = kindState{
			first: binary.BigEndian.Uint64(b[0:]), last: binary.BigEndian.Uint64(b[8:]),
			count: binary.BigEndian.Uint64(b[16:]), bytes: binary.BigEndian.Uint64(b[24:]),
		}
		b = b[32:]
	}
	return u, true
}

// bounds returns the Seqs of the first and last keys of bucket b (0, 0 when
// it is empty).
func bounds(b *bbolt.Bucket) (first, last uint64, err error) {
	c := b.Cursor()
	kf, _ := c.First()
	kl, _ := c.Last()
	if kf == nil {
		return 0, 0, nil
	}
	if len(kf) != 8 || len(kl) != 8 {
		return 0, 0, fmt.Errorf("%w: bad log key", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(kf), binary.BigEndian.Uint64(kl), nil
}

// loadUsage returns the usage record of the file when it still describes the
// buckets, and otherwise counts them: in a file written before the record
// existed, or changed by a version that does not keep it. The record's first
// and last Seqs are its check: keys are never reused, so an append or an
// eviction behind its back moves one of them.
func loadUsage(tx *bbolt.Tx) (u usage, counted bool, err error) {
	rec, ok := decodeUsage(tx.Bucket(bucketMeta).Get(keyUsage))
	for k := range kindBuckets {
		first, last, err := bounds(tx.Bucket(kindBuckets[k]))
		if err != nil {
			return u, false, err
		}
		if rec[k].first != first || rec[k].last != last {
			ok = false
		}
	}
	if ok {
		return rec, false, nil
	}
	for k := range kindBuckets {
		st := &u[k]
		c := tx.Bucket(kindBuckets[k]).Cursor()
		for key, v := c.First(); key != nil; key, v = c.Next() {
			if len(key) != 8 {
				return u, false, fmt.Errorf("%w: bad log key", ErrCorrupt)
			}
			seq := binary.BigEndian.Uint64(key)
			_, _, size, err := decodeHead(v)
			if err != nil {
				return u, false, fmt.Errorf("count update %d: %w", seq, err)
			}
			if st.count == 0 {
				st.first = seq
			}
			st.last = seq
			st.count++
			st.bytes += size
		}
	}
	return u, true, nil
}

// evictKind deletes from the front of kind k's bucket what the retention no
// longer allows, updating st.
func (s *Store) evictKind(tx *bbolt.Tx, k kind, st *kindState, cutoff time.Time) error {
	r := s.retention
	b, ids := tx.Bucket(kindBuckets[k]), tx.Bucket(bucketIDs)
	c := b.Cursor()
	var idKey []byte
	for key, v := c.First(); key != nil; key, v = c.First() {
		seq := binary.BigEndian.Uint64(key)
		t, id, size, err := decodeHead(v)
		if err != nil {
			return fmt.Errorf("evict update %d: %w", seq, err)
		}
		over := r.MaxUpdates > 0 && st.count > r.MaxUpdates || r.MaxBytes > 0 && st.bytes > r.MaxBytes
		if !over && (r.MaxAge <= 0 || !t.Before(cutoff)) {
			st.first = seq
			return nil
		}
		idKey = appendIDKey(idKey[:0], string(id), seq)
		if err := ids.Delete(idKey); err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return err
		}
		st.count--
		st.bytes -= min(size, st.bytes)
	}
	*st = kindState{}
	return nil
}

// evict applies the retention to both kinds and writes the usage record.
func (s *Store) evict(tx *bbolt.Tx, u *usage) error {
	r := s.retention
	if r.MaxUpdates > 0 || r.MaxBytes > 0 || r.MaxAge > 0 {
		var cutoff time.Time
		if r.MaxAge > 0 {
			cutoff = s.now().Add(-r.MaxAge)
		}
		for k := range u {
			if err := s.evictKind(tx, kind(k), &u[k], cutoff); err != nil {
				return err
			}
		}
	}
	return tx.Bucket(bucketMeta).Put(keyUsage, u.encode())
}

func (u *usage) retained() uint64 { return u[kindPublished].count + u[kindEvent].count }
