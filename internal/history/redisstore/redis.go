// Package redisstore is the history store for cluster mode: several hubs share
// one history and one stream of updates through Redis Streams (Redis 6.2 or
// later, or Valkey).
//
// Every node appends the updates published to it to one Redis stream, and
// every node runs one blocking reader of that stream (not one per subscriber)
// that hands each entry to the node's sink, serially and in stream order. An
// update published on node A therefore reaches the subscribers of every node
// through the same path, and all nodes see the same updates in the same order
// with the same Seq.
//
// # Keys
//
// With the prefix P (Options.Stream, default "mercure"): {P}:stream (the
// stream of published updates), {P}:events (the stream of subscription
// events, retained apart), {P}:ids (the id index, a sorted set), {P}:seq
// (the last Seq assigned) and {P}:kinds (each kind's counters); see
// scripts.go. A Redis ACL user for the hub needs, on these keys (Redis
// checks ACLs inside scripts too): PING, INFO, CLIENT|SETNAME, GET, XREAD,
// XRANGE, EVAL, EVALSHA, TYPE, EXISTS, SET, INCR, XADD, ZADD, ZREM,
// ZRANGEBYLEX, XLEN, XTRIM, XINFO|STREAM, HMGET, HSET and HSETNX.
//
// # Seq
//
// The store names the entries itself: the entry for Seq s has the stream ID
// "0-s", in the stream of its kind. Seqs come from a counter (INCR) in the
// same Lua script as the XADD, so they are contiguous (1, 2, 3, …) over the
// two streams, strictly increasing in stream order, and identical on every
// node, which reads them back from the entry IDs. This
// is order-preserving by construction and, unlike a mapping of Redis's
// time-based IDs ("ms-n" → ms<<20|n), owes nothing to any clock: a Redis clock
// that steps back, or a burst of more than 2^20 entries in one millisecond,
// cannot break it. Contiguity also lets a reader notice, and log, entries that
// retention removed before it could read them.
//
// # Retention
//
// Age retention compares each update's Time (field t) with Options.Now: a
// Lookup or a Scan never returns an update older than Retention.MaxAge, and a
// background trim removes such entries from the front of the streams. Count
// and byte retention, for each kind on its own, keep exactly what the
// retention allows visible to Lookup and Scan (scripts.go says how), while
// each stream itself keeps readerSlack more entries and readerSlackBytes
// more bytes, so that a node whose reader lags a little behind a burst from
// other nodes still finds every entry; trimming happens in the append script
// (and in the background when a trim ran out of budget), removing each entry
// and its id index member in one atomic step. All nodes should use the same
// retention, and the same version: an earlier version reads the stream of
// published updates only, and logs the Seqs of subscription events as
// missed.
//
// # Faults
//
// A publish is acknowledged only after Redis ran the append script and the
// local reader delivered the entry to the sink. While Redis is unreachable,
// Append fails at once with an error that wraps history.ErrUnavailable, Ready
// fails (it also fails while the reader cannot read), and the reader retries with capped backoff, resuming from the last
// entry it delivered when Redis returns: no loss, no duplicate. Redis must
// persist what it acknowledges (appendonly yes, appendfsync always or
// everysec accepting the loss of up to a second) for a Redis restart to keep
// the history.
//
// One failure is ambiguous, as with any remote database: if the connection
// breaks after Redis ran the append script but before its reply arrived,
// Append reports an error (wrapping ErrUnavailable) although the update is
// stored and will be delivered. The client is never told "stored" for an
// update that is not; it may be told "failed" for one that is, and if it
// publishes again the update exists twice (a Last-Event-ID naming that id
// resolves to the first, docs/protocol.md#duplicate-ids). Retries inside the
// Redis client are disabled for that reason: a retried append would make the
// duplicate silently.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mercurectl/mercurectl/internal/history"
)

// DefaultStream is the key prefix used when neither Options.Stream nor the
// DSN's stream parameter names one.
const DefaultStream = "mercure"

const (
	// readCount is how many entries the reader takes per XREAD.
	readCount = 512
	// readBlock is how long one XREAD waits for new entries. It only bounds
	// how often an idle reader wakes up; new entries end the wait at once.
	readBlock = 5 * time.Second
	// minBackoff and maxBackoff bound the reader's wait between attempts
	// while Redis is unreachable: short enough to resume quickly after a
	// restart, long enough not to hammer a server that is starting.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second

	// readerSlack is how many entries beyond Retention.MaxUpdates the stream
	// keeps, invisible to Lookup and Scan, so that a reader that lags behind
	// a burst still finds every entry it has not delivered yet. 4096 entries
	// of typical size cost a few MiB of Redis memory.
	readerSlack = 4096
	// readerSlackBytes is the same allowance in bytes (history.Size) beyond
	// Retention.MaxBytes.
	readerSlackBytes = 16 << 20
	// ageGrace is how long after their expiry entries stay in the stream
	// (invisible to Lookup and Scan), for the same reason.
	ageGrace = 30 * time.Second
	// trimBudget bounds the entries one script removes, so that a large
	// backlog (after retention was lowered) never blocks Redis for long; the
	// rest goes in the next appends or trims.
	trimBudget = 256

	// scanChunkFirst and scanChunkMax bound the entries one XRANGE of Scan
	// returns: small at first so that the first event comes fast, then
	// larger. scanChunkBytes halves the chunk when updates are large, so
	// that a replay holds a few MiB at a time, not hundreds.
	scanChunkFirst = 64
	scanChunkMax   = 512
	scanChunkBytes = 8 << 20

	// minRedisMajor.minRedisMinor is the first release with XTRIM MINID and
	// exclusive XRANGE bounds.
	minRedisMajor, minRedisMinor = 6, 2
)

// ErrIncompatible is returned (wrapped) by Open when the server is older than
// Redis 6.2 or the stream key holds data that this store did not write.
var ErrIncompatible = errors.New("incompatible redis server or data")

// ErrBadDSN is returned (wrapped) by Open for a DSN it cannot use.
var ErrBadDSN = errors.New("invalid redis dsn")

// Options configures a Store.
type Options struct {
	// Retention bounds the shared history. Every node of a cluster should
	// use the same.
	Retention history.Retention
	// Now is the clock for update times and age retention; nil means
	// time.Now. Nodes' clocks should agree (NTP) for age retention to be
	// exact.
	Now func() time.Time
	// Logger receives the store's logs; nil discards them. The Redis client
	// library's own log lines about this store's connections go to it too,
	// at debug level, and never to stderr directly (see logging.go).
	Logger *slog.Logger
	// Stream is the prefix of the Redis keys; "" means the DSN's stream
	// parameter, else DefaultStream. Hubs with the same prefix on the same
	// Redis database form one cluster.
	Stream string
}

// keys holds the Redis keys of one store, in the order the scripts take them.
type keys struct {
	stream, ids, seq, events, kinds string
}

func (k keys) list() []string { return []string{k.stream, k.ids, k.seq, k.events, k.kinds} }

// streamOf returns the stream of kind k (kindPublished or kindEvent).
func (k keys) streamOf(kind int) string {
	if kind == kindEvent {
		return k.events
	}
	return k.stream
}

// The two kinds, in the order of Scan's and the reader's merges.
const (
	kindPublished = iota
	kindEvent
)

// Store is a history.Store on Redis Streams. It is safe for concurrent use.
type Store struct {
	client    *redis.Client
	keys      keys
	retention history.Retention
	now       func() time.Time
	logger    *slog.Logger

	// ctx is cancelled by Close; it stops the reader and the janitor.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// trimNow asks the janitor for a trim (a script ran out of budget).
	trimNow chan struct{}

	// delivered is the Seq of the last entry handed to the sink (before
	// Start: the last Seq at Open).
	delivered atomic.Uint64

	mu      sync.Mutex
	started bool
	closed  bool
	// wake is closed and replaced each time delivered advances; Appends
	// waiting for their entry wait on it.
	wake chan struct{}
	// closing is closed by Close.
	closing chan struct{}
	// readErr is the reader's last error while its reads fail, nil once
	// they succeed again.
	readErr error
}

var _ history.Store = (*Store)(nil)

// Open connects to the Redis server named by dsn and returns a store whose
// reader will start after the current tail of the stream once Start is
// called. dsn is redis://[user:password@]host:port/db, rediss://… (TLS) or
// unix:///path/redis.sock[?db=N]; a stream=NAME parameter sets the key prefix
// (see Options.Stream), and go-redis's own parameters (dial_timeout,
// read_timeout, pool_size, …) are honoured except max_retries, which the
// store forces off. If Redis is unreachable, the error wraps
// history.ErrUnavailable.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	ro, prefix, err := parseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("open redis history: %w", err)
	}
	if opts.Stream != "" {
		prefix = opts.Stream
	}
	if prefix == "" {
		prefix = DefaultStream
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("open redis history: %w: stream prefix %q must not contain braces", ErrBadDSN, prefix)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}

	logger = logger.With(slog.String("store", "redis"), slog.String("stream", prefix))
	client := newTaggedClient(ro, logger)
	s := &Store{
		client: client,
		keys: keys{
			stream: "{" + prefix + "}:stream",
			ids:    "{" + prefix + "}:ids",
			seq:    "{" + prefix + "}:seq",
			events: "{" + prefix + "}:events",
			kinds:  "{" + prefix + "}:kinds",
		},
		retention: opts.Retention,
		now:       now,
		logger:    logger,
		trimNow:   make(chan struct{}, 1),
		wake:      make(chan struct{}),
		closing:   make(chan struct{}),
	}
	routeLogs(s)
	last, err := s.open(ctx)
	if err != nil {
		unrouteLogs(s)
		_ = client.Close()
		return nil, fmt.Errorf("open redis history at %s: %w", redactDSN(dsn), err)
	}
	s.delivered.Store(last)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.retention != (history.Retention{}) {
		s.wg.Add(1)
		go s.janitor()
	}
	return s, nil
}

// open checks the server and the keys and returns the last Seq assigned.
func (s *Store) open(ctx context.Context) (uint64, error) {
	info, err := s.client.Info(ctx, "server").Result()
	if err != nil {
		return 0, s.fail(ctx, "query server", err)
	}
	if err := checkVersion(info); err != nil {
		return 0, err
	}
	last, err := openScript.Run(ctx, s.client, s.keys.list()).Uint64()
	if err != nil {
		if redis.HasErrorPrefix(err, "mercurectl:") {
			_, msg, _ := strings.Cut(err.Error(), "mercurectl: ")
			return 0, fmt.Errorf("%w: %s", ErrIncompatible, msg)
		}
		return 0, s.fail(ctx, "read stream tail", err)
	}
	return last, nil
}

// checkVersion refuses servers older than Redis 6.2, from INFO server.
func checkVersion(info string) error {
	for line := range strings.SplitSeq(info, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		parts := strings.SplitN(v, ".", 3)
		major, err1 := strconv.Atoi(parts[0])
		minor := 0
		var err2 error
		if len(parts) > 1 {
			minor, err2 = strconv.Atoi(parts[1])
		}
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%w: unreadable server version %q", ErrIncompatible, v)
		}
		if major < minRedisMajor || major == minRedisMajor && minor < minRedisMinor {
			return fmt.Errorf("%w: redis %s is too old (need %d.%d or later)", ErrIncompatible, v, minRedisMajor, minRedisMinor)
		}
		return nil
	}
	return fmt.Errorf("%w: server did not report its version", ErrIncompatible)
}

// parseDSN turns dsn into client options and the stream parameter.
func parseDSN(dsn string) (*redis.Options, string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		// url.Error repeats the whole DSN, password included: keep only
		// the reason.
		if uerr := (*url.Error)(nil); errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, "", fmt.Errorf("%w: %w", ErrBadDSN, err)
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
	default:
		return nil, "", fmt.Errorf("%w: scheme %q (want redis, rediss or unix)", ErrBadDSN, u.Scheme)
	}
	q := u.Query()
	prefix := q.Get("stream")
	q.Del("stream")
	u.RawQuery = q.Encode()
	ro, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s", ErrBadDSN, redactErr(err, dsn))
	}
	// A retried append could run the script twice: one publish, two
	// entries. The store reports failures instead, and the reader retries
	// (idempotent reads) itself.
	ro.MaxRetries = -1
	// Honour the deadlines of the callers' contexts on the socket, so that
	// an Append bounded by its request never waits longer.
	ro.ContextTimeoutEnabled = true
	if ro.DialerRetries == 0 {
		// Fail fast while Redis is down: one retry after a short pause
		// absorbs a blip, the hub answers 503 for anything longer.
		ro.DialerRetries = 2
		ro.DialerRetryTimeout = 50 * time.Millisecond
	}
	if ro.ClientName == "" {
		ro.ClientName = "mercurectl"
	}
	return ro, prefix, nil
}

// redactDSN hides the password of dsn for error messages and logs.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable dsn)"
	}
	return u.Redacted()
}

// redactErr returns err's message with dsn replaced by its redacted form.
func redactErr(err error, dsn string) string {
	msg := err.Error()
	if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}

// Start implements history.Store: it installs sink and starts the reader
// after the Seq that LastSeq reports.
func (s *Store) Start(sink history.Sink) error {
	if sink == nil {
		return errors.New("start redis history: nil sink")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return history.ErrClosed
	}
	if s.started {
		return errors.New("start redis history: already started")
	}
	s.started = true
	s.wg.Add(1)
	go s.read(sink)
	return nil
}

// Append implements history.Store.
func (s *Store) Append(ctx context.Context, u *history.Update) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	s.mu.Lock()
	closed, started := s.closed, s.started
	s.mu.Unlock()
	if closed {
		return history.ErrClosed
	}
	if u.Time.IsZero() {
		u.Time = s.now()
	}
	kind := "u"
	if u.SubscriptionEvent {
		kind = "e"
	}
	maxn, maxb, cutoff := s.physicalBounds()
	res, err := appendScript.Run(ctx, s.client, s.keys.list(),
		u.ID, encodeTime(u.Time), encodeUpdate(u),
		s.delivered.Load(), kind, s.retention.MaxBytes, maxn, maxb, cutoff, trimBudget).Int64Slice()
	if err != nil {
		if s.isClosed() {
			return history.ErrClosed
		}
		return s.fail(ctx, "append", err)
	}
	if len(res) != 2 || res[0] <= 0 {
		return fmt.Errorf("append: unexpected script reply %v", res)
	}
	seq := uint64(res[0])
	u.Seq = seq
	if res[1] != 0 {
		s.requestTrim()
	}
	if !started {
		// No sink yet: the reader will deliver it once started.
		return nil
	}
	return s.waitDelivered(ctx, seq)
}

// waitDelivered returns once the reader has handed seq to the sink.
func (s *Store) waitDelivered(ctx context.Context, seq uint64) error {
	for {
		s.mu.Lock()
		wake := s.wake
		s.mu.Unlock()
		if s.delivered.Load() >= seq {
			return nil
		}
		select {
		case <-wake:
		case <-s.closing:
			return fmt.Errorf("append: stored as seq %d but not delivered locally: %w", seq, history.ErrClosed)
		case <-ctx.Done():
			return fmt.Errorf("append: stored as seq %d but not delivered locally yet: %w", seq, ctx.Err())
		}
	}
}

// physicalBounds returns the maxn, maxb and cutoff arguments of the trim:
// the retention plus the slack kept for lagging readers.
func (s *Store) physicalBounds() (maxn, maxb uint64, cutoff string) {
	if s.retention.MaxUpdates > 0 {
		maxn = s.retention.MaxUpdates + readerSlack
	}
	if s.retention.MaxBytes > 0 {
		maxb = s.retention.MaxBytes + readerSlackBytes
	}
	if s.retention.MaxAge > 0 {
		cutoff = encodeTime(s.now().Add(-s.retention.MaxAge - ageGrace))
	}
	return maxn, maxb, cutoff
}

// ageCutoff returns the time before which updates are no longer retained
// (zero without age retention).
func (s *Store) ageCutoff() time.Time {
	if s.retention.MaxAge <= 0 {
		return time.Time{}
	}
	return s.now().Add(-s.retention.MaxAge)
}

// Lookup implements history.Store.
func (s *Store) Lookup(ctx context.Context, id string) (uint64, bool, error) {
	if s.isClosed() {
		return 0, false, history.ErrClosed
	}
	cutoff := ""
	if c := s.ageCutoff(); !c.IsZero() {
		cutoff = encodeTime(c)
	}
	seq, err := lookupScript.Run(ctx, s.client, s.keys.list(), id, s.retention.MaxUpdates, s.retention.MaxBytes, cutoff).Uint64()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.fail(ctx, "lookup", err)
	}
	return seq, true, nil
}

// Scan implements history.Store. It reads each stream with XRANGE, one chunk
// at a time, merges the two in Seq order, and holds a chunk of each in memory
// at most.
func (s *Store) Scan(ctx context.Context, after, until uint64, fn func(*history.Update) error) error {
	if s.isClosed() {
		return history.ErrClosed
	}
	if after >= until {
		return nil
	}
	cnt, err := s.counters(ctx)
	if err != nil {
		return s.fail(ctx, "scan", err)
	}
	cutoff := s.ageCutoff()
	its := make([]*rangeIter, 0, len(cnt))
	for k, c := range cnt {
		its = append(its, &rangeIter{key: s.keys.streamOf(k), counters: c,
			start: "(0-" + strconv.FormatUint(after, 10), until: "0-" + strconv.FormatUint(until, 10), count: scanChunkFirst})
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		if s.isClosed() {
			return history.ErrClosed
		}
		var next *rangeIter
		for _, it := range its {
			if err := it.fill(ctx, s); err != nil {
				return s.fail(ctx, "scan", err)
			}
			if len(it.buf) > 0 && (next == nil || it.buf[0].seq < next.buf[0].seq) {
				next = it
			}
		}
		if next == nil {
			return nil
		}
		e := next.buf[0]
		next.buf = next.buf[1:]
		if e.err != nil {
			s.logger.Error("skipping stream entry", slog.Uint64("seq", e.seq), slog.Any("error", e.err))
			continue
		}
		if !s.visible(e, next.counters, cutoff) {
			continue
		}
		if err := fn(e.u); err != nil {
			return err
		}
	}
}

// rangeIter reads one stream in chunks for Scan.
type rangeIter struct {
	key, start, until string
	counters          kindCounters // of the stream's kind
	count             int64
	buf               []entry
	done              bool // the last XRANGE reached until
}

// fill reads the next chunk when the previous one is used up.
func (it *rangeIter) fill(ctx context.Context, s *Store) error {
	for len(it.buf) == 0 && !it.done {
		msgs, err := s.client.XRangeN(ctx, it.key, it.start, it.until, it.count).Result()
		if err != nil {
			return err
		}
		it.done = int64(len(msgs)) < it.count
		size := 0
		for _, m := range msgs {
			e := s.decode(m, it.key == s.keys.events)
			if e.seq == 0 {
				// A foreign ID: nothing to say about its position.
				s.logger.Error("skipping stream entry", slog.String("entry", m.ID), slog.Any("error", e.err))
				continue
			}
			size += int(e.size)
			it.buf = append(it.buf, e)
		}
		if len(msgs) > 0 {
			it.start = "(" + msgs[len(msgs)-1].ID
		}
		switch {
		case size > scanChunkBytes && it.count > 1:
			it.count /= 2
		case size < scanChunkBytes/2 && it.count < scanChunkMax:
			it.count = min(2*it.count, scanChunkMax)
		}
	}
	return nil
}

// kindCounters are a kind's counters (see scripts.go): entries appended and
// the sum of their sizes.
type kindCounters struct{ n, b uint64 }

// counters reads both kinds' counters.
func (s *Store) counters(ctx context.Context) ([2]kindCounters, error) {
	var out [2]kindCounters
	v, err := s.client.HMGet(ctx, s.keys.kinds, "un", "ub", "en", "eb").Result()
	if err != nil {
		return out, err
	}
	num := func(x any) (uint64, bool) {
		str, ok := x.(string)
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseUint(str, 10, 64)
		return n, err == nil
	}
	var ok bool
	if out[kindPublished].n, ok = num(v[0]); !ok {
		// Keys deleted by hand: entries count from the last Seq, as the
		// scripts do.
		if out[kindPublished].n, err = s.client.Get(ctx, s.keys.seq).Uint64(); err != nil && !errors.Is(err, redis.Nil) {
			return out, err
		}
	}
	out[kindPublished].b, _ = num(v[1])
	out[kindEvent].n, _ = num(v[2])
	out[kindEvent].b, _ = num(v[3])
	return out, nil
}

// visible reports whether the retention allows entry e, given its kind's
// counters c and the age cutoff (zero for none), as the scripts' visible does.
func (s *Store) visible(e entry, c kindCounters, cutoff time.Time) bool {
	r := s.retention
	// Counters reset by hand can be behind an entry: then nothing came after it.
	newer := func(now, then uint64) uint64 {
		if now < then {
			return 0
		}
		return now - then
	}
	if r.MaxBytes > 0 && (e.size > r.MaxBytes || newer(c.b, e.b)+e.size > r.MaxBytes) {
		return false
	}
	if r.MaxUpdates > 0 && newer(c.n, e.n) >= r.MaxUpdates {
		return false
	}
	return cutoff.IsZero() || !e.u.Time.Before(cutoff)
}

// entry is a decoded stream entry: the update, its Seq, the counters it
// recorded (n, b) and its history.Size. err is set, with u nil, when it
// cannot be decoded; seq is 0 when its ID is not one of ours.
type entry struct {
	u          *history.Update
	seq        uint64
	n, b, size uint64
	err        error
}

// decode decodes stream entry m, of the events stream when event is set.
func (s *Store) decode(m redis.XMessage, event bool) entry {
	seq, ok := parseSeq(m.ID)
	if !ok {
		return entry{err: fmt.Errorf("%w: entry id %q", errCorrupt, m.ID)}
	}
	e := entry{seq: seq}
	id, ok1 := m.Values[fieldID].(string)
	tm, ok2 := m.Values[fieldTime].(string)
	blob, ok3 := m.Values[fieldUpdate].(string)
	if !ok1 || !ok2 || !ok3 {
		e.err = fmt.Errorf("decode update %d: %w: missing fields", seq, errCorrupt)
		return e
	}
	e.size = uint64(len(id) + len(blob) - 1)
	// Entries from before the counters have neither: see scripts.go.
	e.n = seq
	if n, ok := m.Values[fieldCount].(string); ok {
		if e.n, e.err = strconv.ParseUint(n, 10, 64); e.err != nil {
			e.err = fmt.Errorf("decode update %d: %w: bad count", seq, errCorrupt)
			return e
		}
	}
	if b, ok := m.Values[fieldBytes].(string); ok {
		if e.b, e.err = strconv.ParseUint(b, 10, 64); e.err != nil {
			e.err = fmt.Errorf("decode update %d: %w: bad byte count", seq, errCorrupt)
			return e
		}
	}
	e.u, e.err = decodeEntry(seq, id, tm, blob)
	if e.u != nil {
		e.u.SubscriptionEvent = event
	}
	return e
}

// parseSeq returns the Seq of a stream entry ID "0-<seq>".
func parseSeq(id string) (uint64, bool) {
	rest, ok := strings.CutPrefix(id, "0-")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest, 10, 64)
	if err != nil || seq == 0 {
		return 0, false
	}
	return seq, true
}

// LastSeq implements history.Store: before Start, the last Seq assigned when
// the store was opened (the reader starts after it); afterwards, the Seq of the
// last entry the reader delivered.
func (s *Store) LastSeq() uint64 { return s.delivered.Load() }

// Ready implements history.Store: Redis must answer PING, and the reader
// must be reading (an Append waits for it).
func (s *Store) Ready(ctx context.Context) error {
	s.mu.Lock()
	closed, readErr := s.closed, s.readErr
	s.mu.Unlock()
	if closed {
		return history.ErrClosed
	}
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis history: %w: %w", history.ErrUnavailable, err)
	}
	if readErr != nil {
		return fmt.Errorf("redis history: %w: reading the stream: %w", history.ErrUnavailable, readErr)
	}
	return nil
}

// Close implements history.Store: it stops the reader and the janitor and
// closes the connections. Appends waiting for delivery fail with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.cancel()
	// Closing the client also breaks the reader's blocking XREAD.
	err := s.client.Close()
	s.wg.Wait()
	unrouteLogs(s)
	if err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("close redis history: %w", err)
	}
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// fail wraps err from a Redis call made for op. The caller's own
// cancellation wins; failures that may pass (network, a server that is
// loading, read-only after a failover, out of memory…) wrap
// history.ErrUnavailable.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", op, cerr)
	}
	if transient(err) {
		return fmt.Errorf("%s: %w: %w", op, history.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// transient reports whether err may pass without anyone changing the
// configuration.
func transient(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		// Network errors, timeouts, pool exhaustion, a closed connection.
		return true
	}
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "OOM", "MISCONF", "NOREPLICAS", "MAXCLIENTS"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// read is the reader: one blocking XREAD loop over both streams that feeds
// sink.
func (s *Store) read(sink history.Sink) {
	defer s.wg.Done()
	pos := s.delivered.Load()
	// from holds, for each stream, the ID after which the next XREAD reads.
	from := [2]string{"0-" + strconv.FormatUint(pos, 10), "0-" + strconv.FormatUint(pos, 10)}
	backoff := minBackoff
	failing := false
	for {
		if s.ctx.Err() != nil {
			return
		}
		// After a failure, read without blocking so that recovery (and
		// Ready) is reported as soon as Redis answers again.
		block := readBlock
		if failing {
			block = -1
		}
		streams, err := s.client.XRead(s.ctx, &redis.XReadArgs{
			Streams: []string{s.keys.stream, s.keys.events, from[kindPublished], from[kindEvent]},
			Count:   readCount,
			Block:   block,
		}).Result()
		if errors.Is(err, redis.Nil) {
			// Nothing new within readBlock: a successful read all the same.
			streams, err = nil, nil
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.setReadErr(err)
			if !failing {
				s.logger.Warn("reading the stream failed; retrying", slog.Uint64("after", pos), slog.Any("error", err))
				failing = true
			} else {
				s.logger.Debug("reading the stream failed again", slog.Any("error", err))
			}
			// Jitter (half the backoff), so that the nodes of a cluster
			// do not all reconnect at the same instant.
			wait := backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, maxBackoff)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		if failing {
			s.logger.Info("reading the stream again", slog.Uint64("after", pos))
			s.setReadErr(nil)
			failing = false
		}
		backoff = minBackoff
		if len(streams) == 0 {
			continue
		}
		pos = s.deliver(sink, streams, &from, pos)
		s.mu.Lock()
		close(s.wake)
		s.wake = make(chan struct{})
		s.mu.Unlock()
	}
}

// deliver hands to sink, in Seq order, the entries that one XREAD of both
// streams returned, and returns the last Seq delivered. XREAD is atomic and
// an append adds its entry with its Seq in one script, so every Seq up to the
// newest one returned is in one of the two replies, except past the last
// entry of a reply cut at readCount: the other stream's entries beyond it
// wait for the next read (from says where each stream resumes).
func (s *Store) deliver(sink history.Sink, streams []redis.XStream, from *[2]string, pos uint64) uint64 {
	var msgs [2][]redis.XMessage
	for _, st := range streams {
		if st.Stream == s.keys.events {
			msgs[kindEvent] = st.Messages
		} else {
			msgs[kindPublished] = st.Messages
		}
	}
	horizon := uint64(math.MaxUint64)
	for _, ms := range msgs {
		if len(ms) == readCount {
			if seq, ok := parseSeq(ms[len(ms)-1].ID); ok {
				horizon = min(horizon, seq)
			}
		}
	}
	for {
		k := -1
		var ks uint64
		for i := range msgs {
			if len(msgs[i]) == 0 {
				continue
			}
			seq, ok := parseSeq(msgs[i][0].ID)
			if !ok || seq <= pos {
				// Not an ID this store writes, or one behind the reader:
				// XREAD never returns those for ours.
				s.logger.Error("skipping foreign stream entry", slog.String("entry", msgs[i][0].ID))
				from[i] = msgs[i][0].ID
				msgs[i] = msgs[i][1:]
				continue
			}
			if k < 0 || seq < ks {
				k, ks = i, seq
			}
		}
		if k < 0 || ks > horizon {
			return pos
		}
		m := msgs[k][0]
		msgs[k] = msgs[k][1:]
		from[k] = m.ID
		e := s.decode(m, k == kindEvent)
		if e.seq != pos+1 {
			s.logger.Error("updates were trimmed from the stream before this node delivered them; raise the history size",
				slog.Uint64("after", pos), slog.Uint64("missed", e.seq-pos-1))
		}
		pos = e.seq
		if e.err != nil {
			s.logger.Error("skipping stream entry", slog.Uint64("seq", e.seq), slog.Any("error", e.err))
		} else {
			sink(e.u)
		}
		s.delivered.Store(e.seq)
	}
}

func (s *Store) setReadErr(err error) {
	s.mu.Lock()
	s.readErr = err
	s.mu.Unlock()
}

// requestTrim asks the janitor for a trim without waiting.
func (s *Store) requestTrim() {
	select {
	case s.trimNow <- struct{}{}:
	default:
	}
}

// janitor trims the stream when a script ran out of budget and, with age
// retention, periodically (appends trim too, but a quiet cluster must still
// let old updates go).
func (s *Store) janitor() {
	defer s.wg.Done()
	var tick <-chan time.Time
	if age := s.retention.MaxAge; age > 0 {
		t := time.NewTicker(min(max(age/8, time.Second), time.Minute))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick:
		case <-s.trimNow:
		}
		s.trim(s.ctx)
	}
}

// trim applies retention until nothing is left to remove (or an error).
func (s *Store) trim(ctx context.Context) {
	for range 1024 {
		maxn, maxb, cutoff := s.physicalBounds()
		res, err := trimScript.Run(ctx, s.client, s.keys.list(), maxn, maxb, cutoff, trimBudget).Int64Slice()
		if err != nil {
			if ctx.Err() == nil {
				s.logger.Debug("trimming the stream failed", slog.Any("error", err))
			}
			return
		}
		if len(res) != 2 || res[1] == 0 {
			return
		}
	}
}
