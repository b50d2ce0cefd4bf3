// Package bolt is the hub's default history store: a durable, ordered log of
// updates in one file, kept with the pure-Go embedded database bbolt.
//
// The file holds four buckets:
//
//   - "log": the published updates. Key = Seq (8 bytes, big-endian), value =
//     the update in a compact versioned binary form (see codec.go). Keys sort
//     in Seq order, so a replay is a cursor walk and retention deletes from
//     the front.
//   - "events": the subscription events, in the same form. They are retained
//     apart from published updates (see kinds.go), so a replay merges the
//     two buckets by Seq.
//   - "ids": key = ID + 0x00 + Seq (big-endian), empty value, for both kinds.
//     The first key with the prefix ID + 0x00 is the earliest retained update
//     with that ID (docs/protocol.md#duplicate-ids), found in O(log n);
//     evicting one entry leaves the later duplicates findable.
//   - "meta": the format version, the last Seq ever assigned, so that Seq
//     keeps growing across restarts even when retention emptied the log, and
//     the usage record: what each kind retains (see kinds.go).
//
// One writer goroutine owns all writes. Appends queue to it; it drains
// whatever is pending into one write transaction (group commit: one fsync for
// many publishers), assigns Seqs inside that transaction, enforces retention
// in the same transaction, commits, then calls the sink for each update in Seq
// order and only then acknowledges each Append. If the commit fails, every
// Append of the batch gets the error and nothing reaches the sink.
//
// Reads never hold a transaction while calling back into the caller: Scan
// copies a chunk of updates per read transaction, releases it, then calls fn,
// so a slow subscriber pins no pages and the file does not grow because of it.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/ratelog"
)

// DefaultLockTimeout is how long Open waits for another process to release the
// history file before giving up with ErrInUse: long enough to ride out a hub
// that is just shutting down, short enough to fail fast on a second hub.
const DefaultLockTimeout = time.Second

const (
	// formatVersion is stored in the meta bucket; Open refuses other values.
	formatVersion = 1

	// maxBatchUpdates and maxBatchBytes bound one group commit, so that a
	// burst of publishes is split into transactions of reasonable size.
	maxBatchUpdates = 4096
	maxBatchBytes   = 16 << 20

	// scanChunkFirst and scanChunkMax are how many updates Scan copies per
	// read transaction: small at first so that the first event comes fast,
	// then larger for throughput.
	scanChunkFirst = 64
	scanChunkMax   = 512

	// MaxIDLen is the longest update ID the store accepts: the id index
	// key (ID, a separator and the Seq) must fit in a bbolt key.
	MaxIDLen = bbolt.MaxKeySize - 9
)

var (
	bucketLog    = []byte("log")
	bucketEvents = []byte("events")
	bucketIDs    = []byte("ids")
	bucketMeta   = []byte("meta")
	keyVersion   = []byte("version")
	keySeq       = []byte("seq")
	keyUsage     = []byte("usage")
)

// ErrInUse is returned (wrapped) by Open when another process holds the
// history file: two hubs must never write the same history.
var ErrInUse = errors.New("in use by another process")

// ErrCorrupt is returned (wrapped) when the history file holds data that this
// version cannot decode.
var ErrCorrupt = errors.New("history file is corrupt")

// ErrIDTooLong is returned (wrapped) by Append for an update whose ID is longer
// than MaxIDLen bytes.
var ErrIDTooLong = errors.New("update id too long")

// Options configures a Store. The zero value is usable: as in hub.Config,
// zero means "none" (no retention bound, no wait for the lock).
type Options struct {
	// Retention bounds what the store keeps. It is enforced in every write
	// transaction, when the file is opened, and by a periodic sweep for
	// MaxAge while no update is published.
	Retention history.Retention
	// Now is the clock (nil: time.Now). It stamps updates whose Time is zero
	// and drives retention by age.
	Now func() time.Time
	// Logger receives the store's diagnostics (nil: discarded).
	Logger *slog.Logger
	// LockTimeout is how long Open waits for another process to release the
	// file lock; 0 means no wait: Open fails at once with ErrInUse.
	LockTimeout time.Duration
}

// Store is a history.Store kept in a bbolt file. It is safe for concurrent use.
type Store struct {
	// commitCost is how long the last commit took; the writer goroutine
	// alone reads and writes it.
	commitCost time.Duration
	db         *bbolt.DB
	path       string
	retention  history.Retention
	now        func() time.Time
	logger     *slog.Logger

	// reqs is unbuffered: a request handed over is owned by the writer, and
	// once the writer has exited no send can succeed, so an Append racing
	// with Close either is committed or gets ErrClosed, never hangs.
	reqs    chan *request
	closing chan struct{}
	done    chan struct{}

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	lastSeq atomic.Uint64

	// commits and committed count write transactions and the updates they
	// carried: their ratio is the group-commit factor.
	commits, committed atomic.Uint64

	mu        sync.Mutex
	sink      history.Sink
	commitErr error // the last commit's error, nil once one succeeds
	// commitLog and corruptLog keep failures that recur on every write or
	// read to one log line per interval.
	commitLog, corruptLog ratelog.Limiter

	// Owned by the writer goroutine (and by Open before it starts).
	seq   uint64 // last Seq assigned and committed
	usage usage  // what each kind retains, as committed
}

var _ history.Store = (*Store)(nil)

// item is one update on its way to the writer, already encoded by the
// publisher's goroutine so that the writer only copies bytes into the tree.
type item struct {
	u       *history.Update
	enc     []byte
	size    uint64 // history.Size(u)
	timeSet bool   // Append set u.Time; cleared again if the commit fails
}

type request struct {
	items []item
	one   [1]item
	size  int
	done  chan error
}

// Open opens (creating it if needed) the history file at path and starts its
// writer. It fails with an error wrapping ErrInUse when another process holds
// the file for longer than opts.LockTimeout. Retention is applied at once, and
// LastSeq reports the newest stored update, so history replays right after a
// restart.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("open history: empty path")
	}
	if opts.LockTimeout < 0 {
		return nil, errors.New("open history: negative LockTimeout")
	}
	// bbolt waits forever on a zero Timeout; the shortest positive one
	// tries the lock once.
	timeout := max(opts.LockTimeout, time.Nanosecond)
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// bbolt lays out a new database in an existing empty file without a
	// word; an empty file where history was expected is worth one.
	wasEmpty := false
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		wasEmpty = true
	}
	var db *bbolt.DB
	err := guard(path, func() error {
		var err error
		db, err = bbolt.Open(path, 0o600, &bbolt.Options{
			Timeout: timeout,
			// The hashmap freelist stays fast when retention frees many pages.
			FreelistType: bbolt.FreelistMapType,
		})
		return err
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open history: history file %s is %w", path, ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	s := &Store{
		db:        db,
		path:      path,
		retention: opts.Retention,
		now:       now,
		logger:    logger,
		reqs:      make(chan *request),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
	}
	var evicted uint64
	var counted bool
	err = guard(path, func() error {
		return db.Update(func(tx *bbolt.Tx) error {
			if err := checkSize(tx, path); err != nil {
				return err
			}
			var err error
			evicted, counted, err = s.init(tx)
			return err
		})
	})
	if err != nil {
		_ = guard(path, db.Close)
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	if wasEmpty {
		logger.Warn("the history file was empty: starting with an empty history", "path", path)
	}
	s.lastSeq.Store(s.seq)
	logger.Debug("history opened", "path", path, "last_seq", s.seq,
		"retained", s.usage.retained(), "evicted", evicted, "counted", counted)
	go s.run(sweepInterval(opts.Retention.MaxAge))
	return s, nil
}

// init creates the buckets, checks the format, restores the Seq counter and
// the usage of each kind (counting the buckets when the usage record is
// missing or stale) and applies retention (which may have shrunk since the
// file was written). It returns how many updates retention evicted and
// whether it counted.
func (s *Store) init(tx *bbolt.Tx) (evicted uint64, counted bool, err error) {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return 0, false, err
	}
	for _, b := range [][]byte{bucketLog, bucketEvents, bucketIDs} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return 0, false, err
		}
	}
	switch v := meta.Get(keyVersion); {
	case v == nil:
		if err := meta.Put(keyVersion, []byte{formatVersion}); err != nil {
			return 0, false, err
		}
	case len(v) != 1 || v[0] != formatVersion:
		return 0, false, fmt.Errorf("%w: unsupported format version %v", ErrCorrupt, v)
	}
	if v := meta.Get(keySeq); v != nil {
		if len(v) != 8 {
			return 0, false, fmt.Errorf("%w: bad seq record", ErrCorrupt)
		}
		s.seq = binary.BigEndian.Uint64(v)
	}
	s.usage, counted, err = loadUsage(tx)
	if err != nil {
		return 0, false, err
	}
	for _, k := range s.usage {
		s.seq = max(s.seq, k.last)
	}
	before := s.usage.retained()
	if err := s.evict(tx, &s.usage); err != nil {
		return 0, false, err
	}
	return before - s.usage.retained(), counted, nil
}

// sweepInterval is how often the writer looks for updates that outlived
// maxAge while nobody publishes (0: never).
func sweepInterval(maxAge time.Duration) time.Duration {
	if maxAge <= 0 {
		return 0
	}
	return min(max(maxAge/4, 10*time.Millisecond), time.Minute)
}

// Path returns the file the store was opened with.
func (s *Store) Path() string { return s.path }

// Start implements history.Store. The sink is called from the store's writer
// goroutine and must not call Append.
func (s *Store) Start(sink history.Sink) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sink = sink
	return nil
}

// Append implements history.Store. It returns once u is committed to the file
// (fsynced) and the sink has been called with it. Once u has been handed to the
// writer, Append waits for the outcome even if ctx ends, because by then the
// update may already be durable.
func (s *Store) Append(ctx context.Context, u *history.Update) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return history.ErrClosed
	}
	if len(u.ID) > MaxIDLen {
		return fmt.Errorf("append to history: %w: %d bytes, at most %d", ErrIDTooLong, len(u.ID), MaxIDLen)
	}
	r := &request{done: make(chan error, 1)}
	it := item{u: u}
	if u.Time.IsZero() {
		u.Time = s.now()
		it.timeSet = true
	}
	it.enc = appendUpdate(make([]byte, 0, encodedSize(u)), u)
	it.size = history.Size(u)
	r.one[0] = it
	r.items = r.one[:]
	r.size = len(it.enc)
	return s.submit(ctx, r)
}

// appendBatch appends ups in order in one transaction (with whatever else is
// pending). It exists for tests and benchmarks that need large histories fast.
func (s *Store) appendBatch(ctx context.Context, ups []*history.Update) error {
	if s.closed.Load() {
		return history.ErrClosed
	}
	r := &request{done: make(chan error, 1), items: make([]item, len(ups))}
	for i, u := range ups {
		if len(u.ID) > MaxIDLen {
			return fmt.Errorf("append to history: %w", ErrIDTooLong)
		}
		r.items[i].u = u
		if u.Time.IsZero() {
			u.Time = s.now()
			r.items[i].timeSet = true
		}
		r.items[i].enc = appendUpdate(nil, u)
		r.items[i].size = history.Size(u)
		r.size += len(r.items[i].enc)
	}
	return s.submit(ctx, r)
}

func (s *Store) submit(ctx context.Context, r *request) error {
	select {
	case s.reqs <- r:
		return <-r.done
	case <-s.closing:
		r.fail()
		return history.ErrClosed
	case <-ctx.Done():
		r.fail()
		return ctx.Err()
	}
}

// fail undoes what Append did to the caller's updates.
func (r *request) fail() {
	for _, it := range r.items {
		it.u.Seq = 0
		if it.timeSet {
			it.u.Time = time.Time{}
		}
	}
}

// run is the writer goroutine.
func (s *Store) run(sweepEvery time.Duration) {
	defer close(s.done)
	var tick <-chan time.Time
	if sweepEvery > 0 {
		t := time.NewTicker(sweepEvery)
		defer t.Stop()
		tick = t.C
	}
	batch := make([]*request, 0, 64)
	prev := 0 // requests in the previous batch
	for {
		select {
		case r := <-s.reqs:
			batch = s.collect(append(batch[:0], r))
			batch = s.linger(batch, prev)
			prev = len(batch)
			start := time.Now()
			s.commit(batch)
			s.commitCost = time.Since(start)
			clear(batch)
		case <-tick:
			s.sweep()
		case <-s.closing:
			// Appends already parked on the channel when Close began are
			// committed too; later ones see closing and get ErrClosed.
			for {
				select {
				case r := <-s.reqs:
					batch = s.collect(append(batch[:0], r))
					s.commit(batch)
					clear(batch)
				default:
					return
				}
			}
		}
	}
}

// collect adds to batch every request already waiting, within the batch limits.
func (s *Store) collect(batch []*request) []*request {
	n, size := 0, 0
	for _, r := range batch {
		n += len(r.items)
		size += r.size
	}
	for n < maxBatchUpdates && size < maxBatchBytes {
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
			n += len(r.items)
			size += r.size
		default:
			return batch
		}
	}
	return batch
}

// linger gives the publishers acknowledged by the previous commit a moment to
// submit again before this batch is committed. Without it, steady concurrent
// publishing settles into two alternating half-size batches (one committing
// while the other queues) and pays twice the fsyncs. It only yields the
// processor, a few times at most, and stops as soon as a yield brings nothing
// new, so a lone publisher pays next to nothing.
func (s *Store) linger(batch []*request, prev int) []*request {
	target := prev + len(batch)
	for range 4 {
		if len(batch) >= target || len(batch) <= 1 && prev <= 1 {
			break
		}
		before := len(batch)
		runtime.Gosched()
		batch = s.collect(batch)
		if len(batch) == before {
			break
		}
	}
	// Publishers behind a network round trip come back later than a yield:
	// while this batch is smaller than the previous one, wait for them, at
	// most as long as a commit takes (and 2ms), so that the wait costs less
	// than the extra commit it saves. A lone publisher (prev 1) never waits.
	if prev > 1 && len(batch) < prev {
		timer := time.NewTimer(min(max(s.commitCost, 50*time.Microsecond), 2*time.Millisecond))
		defer timer.Stop()
		for len(batch) < prev {
			select {
			case r := <-s.reqs:
				batch = s.collect(append(batch, r))
			case <-timer.C:
				return batch
			case <-s.closing:
				return batch
			}
		}
	}
	return batch
}

// commit writes batch in one transaction, then delivers and acknowledges it.
func (s *Store) commit(batch []*request) {
	seq, u := s.seq, s.usage
	err := s.update(func(tx *bbolt.Tx) error {
		ids, meta := tx.Bucket(bucketIDs), tx.Bucket(bucketMeta)
		var kb [2]*bbolt.Bucket
		for k := range kb {
			kb[k] = tx.Bucket(kindBuckets[k])
			// Keys only ever grow at the end: fill split pages fully.
			kb[k].FillPercent = 1.0
		}
		// Keys must stay valid until the commit, so each gets its own bytes.
		n := 0
		idBytes := 0
		for _, r := range batch {
			n += len(r.items)
			for _, it := range r.items {
				idBytes += len(it.u.ID) + 9
			}
		}
		keys := make([]byte, 0, 8*n+idBytes)
		for _, r := range batch {
			for _, it := range r.items {
				seq++
				it.u.Seq = seq
				if s.retention.MaxBytes > 0 && it.size > s.retention.MaxBytes {
					continue // delivered, never retained
				}
				k := kindOf(it.u)
				start := len(keys)
				keys = binary.BigEndian.AppendUint64(keys, seq)
				if err := kb[k].Put(keys[start:len(keys):len(keys)], it.enc); err != nil {
					return err
				}
				st := &u[k]
				if st.count == 0 {
					st.first = seq
				}
				st.last = seq
				st.count++
				st.bytes += it.size
				start = len(keys)
				keys = appendIDKey(keys, it.u.ID, seq)
				if err := ids.Put(keys[start:len(keys):len(keys)], []byte{}); err != nil {
					return err
				}
			}
		}
		if err := meta.Put(keySeq, binary.BigEndian.AppendUint64(nil, seq)); err != nil {
			return err
		}
		return s.evict(tx, &u)
	})
	if err != nil {
		err = fmt.Errorf("%w: commit history: %w", history.ErrUnavailable, err)
		// A full disk fails every commit: say so once per interval.
		if ok, n := s.commitLog.Allow(); ok {
			s.logger.Error("history commit failed", "path", s.path, "updates", countItems(batch), "err", err, "failures_not_logged", n)
		}
		s.mu.Lock()
		s.commitErr = err
		s.mu.Unlock()
		for _, r := range batch {
			r.fail()
			r.done <- err
		}
		return
	}
	s.seq, s.usage = seq, u
	s.commits.Add(1)
	s.committed.Add(uint64(countItems(batch)))
	s.mu.Lock()
	sink := s.sink
	s.commitErr = nil
	s.mu.Unlock()
	for _, r := range batch {
		for _, it := range r.items {
			if sink != nil {
				sink(it.u)
			}
			s.lastSeq.Store(it.u.Seq)
		}
	}
	for _, r := range batch {
		r.done <- nil
	}
}

func countItems(batch []*request) int {
	n := 0
	for _, r := range batch {
		n += len(r.items)
	}
	return n
}

func appendIDKey(dst []byte, id string, seq uint64) []byte {
	dst = append(dst, id...)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// sweep deletes updates that outlived MaxAge while nobody published. It writes
// only when there is something to delete.
func (s *Store) sweep() {
	cutoff := s.now().Add(-s.retention.MaxAge)
	stale := false
	err := s.view(func(tx *bbolt.Tx) error {
		for _, name := range kindBuckets {
			_, v := tx.Bucket(name).Cursor().First()
			if v == nil {
				continue
			}
			t, err := decodeTime(v)
			if err != nil {
				return err
			}
			stale = stale || t.Before(cutoff)
		}
		return nil
	})
	if err == nil && stale {
		u := s.usage
		err = s.update(func(tx *bbolt.Tx) error { return s.evict(tx, &u) })
		if err == nil {
			s.logger.Debug("history swept", "path", s.path, "evicted", s.usage.retained()-u.retained())
			s.usage = u
		}
	}
	if err != nil {
		s.logger.Error("history sweep failed", "path", s.path, "err", err)
	}
}

// liveFronts returns, for each kind, the first Seq that retention by age
// still allows readers to see. Between the writer's sweeps the front of a
// bucket may hold updates that have just expired; readers skip them so that
// Lookup and Scan follow the clock exactly, like the in-memory store.
func (s *Store) liveFronts(tx *bbolt.Tx) ([2]uint64, error) {
	var fronts [2]uint64
	if s.retention.MaxAge <= 0 {
		return fronts, nil
	}
	cutoff := s.now().Add(-s.retention.MaxAge)
	for k, name := range kindBuckets {
		fronts[k] = math.MaxUint64
		c := tx.Bucket(name).Cursor()
		for key, v := c.First(); key != nil; key, v = c.Next() {
			t, err := decodeTime(v)
			if err != nil {
				return fronts, err
			}
			if !t.Before(cutoff) {
				fronts[k] = binary.BigEndian.Uint64(key)
				break
			}
		}
	}
	return fronts, nil
}

// Lookup implements history.Store in O(log n) through the id index.
func (s *Store) Lookup(ctx context.Context, id string) (uint64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	if s.closed.Load() {
		return 0, false, history.ErrClosed
	}
	prefix := append([]byte(id), 0)
	var seq uint64
	var found bool
	err := s.view(func(tx *bbolt.Tx) error {
		fronts, err := s.liveFronts(tx)
		if err != nil {
			return err
		}
		c := tx.Bucket(bucketIDs).Cursor()
		// Keys of this id are exactly len(prefix)+8 long; a longer key with
		// the same prefix belongs to another id (one containing NUL).
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) != len(prefix)+8 {
				continue
			}
			key := k[len(prefix):]
			sq := binary.BigEndian.Uint64(key)
			// The update is in the bucket of its kind; the front of that
			// kind says whether it has expired.
			for kd, name := range kindBuckets {
				if sq >= fronts[kd] && tx.Bucket(name).Get(key) != nil {
					seq, found = sq, true
					return nil
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, s.readErr("look up history", err)
	}
	return seq, found, nil
}

// Scan implements history.Store. It holds no transaction while fn runs, and
// merges the two kinds' buckets in Seq order.
func (s *Store) Scan(ctx context.Context, after, until uint64, fn func(*history.Update) error) error {
	chunk := scanChunkFirst
	buf := make([]*history.Update, 0, chunk)
	for after < until {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.closed.Load() {
			return history.ErrClosed
		}
		buf = buf[:0]
		err := s.view(func(tx *bbolt.Tx) error {
			fronts, err := s.liveFronts(tx)
			if err != nil {
				return err
			}
			// One head per kind: its cursor and the entry it is on.
			type head struct {
				c     *bbolt.Cursor
				k, v  []byte
				event bool
			}
			heads := make([]*head, 0, len(kindBuckets))
			for kd, name := range kindBuckets {
				start := max(after+1, fronts[kd])
				if start > until {
					continue
				}
				h := &head{c: tx.Bucket(name).Cursor(), event: kind(kd) == kindEvent}
				var key [8]byte
				binary.BigEndian.PutUint64(key[:], start)
				h.k, h.v = h.c.Seek(key[:])
				heads = append(heads, h)
			}
			for len(buf) < chunk {
				// The next update is the smaller key of the heads.
				var next *head
				for _, h := range heads {
					if h.k != nil && (next == nil || bytes.Compare(h.k, next.k) < 0) {
						next = h
					}
				}
				if next == nil {
					break
				}
				seq := binary.BigEndian.Uint64(next.k)
				if seq > until {
					break
				}
				u, err := decodeUpdate(seq, next.v)
				if err != nil {
					return err
				}
				u.SubscriptionEvent = next.event
				buf = append(buf, u)
				next.k, next.v = next.c.Next()
			}
			return nil
		})
		if err != nil {
			return s.readErr("scan history", err)
		}
		if len(buf) == 0 {
			return nil
		}
		for _, u := range buf {
			if err := fn(u); err != nil {
				return err
			}
		}
		after = buf[len(buf)-1].Seq
		clear(buf)
		chunk = min(chunk*2, scanChunkMax)
	}
	return nil
}

func (s *Store) readErr(what string, err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) || s.closed.Load() {
		return history.ErrClosed
	}
	return fmt.Errorf("%s: %w", what, err)
}

// LastSeq implements history.Store. Right after Open it is the newest stored Seq.
func (s *Store) LastSeq() uint64 { return s.lastSeq.Load() }

// Ready implements history.Store: nil while the file is open and the last
// commit (if any) succeeded.
func (s *Store) Ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return history.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commitErr
}

// Close implements history.Store. It lets the writer finish the batches in
// flight, then closes the file. Calling it again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		<-s.done
		s.logger.Debug("history closed", "path", s.path, "last_seq", s.seq,
			"commits", s.commits.Load(), "updates", s.committed.Load())
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("close history %s: %w", s.path, err)
		}
	})
	return s.closeErr
}
