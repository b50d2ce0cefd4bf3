package match

// Index maps distinct selectors to values and finds, for the topics of an
// update, the values of the selectors that match one of them. It is what a
// hub dispatches with: one value per distinct selector (the subscribers that
// use it), so that many subscribers sharing a selector cost one match.
//
// A lookup costs in proportion to the length of the topics plus the
// selectors that can match them, not to the number of selectors held:
//
//   - exact selectors are found in a map by topic;
//   - "*" selectors are in a list of their own and never evaluated;
//   - URI templates are in a radix tree keyed by the literal they start
//     with, so a topic walks its bytes once and only the templates whose
//     prefix it starts with are evaluated;
//   - URL patterns are in a radix tree per base URL, keyed by the literal
//     prefix of their scheme, host, port and path (urlView.key): a topic is
//     parsed once per base, and only the patterns whose prefix its parsed
//     form starts with are evaluated.
//
// Evaluations go through the Cache given to NewIndex (nil caches nothing).
//
// An Index is not safe for concurrent use: Match may run alongside Get and
// Len, but Put, Delete and Match itself need exclusive access (a hub
// dispatches serially and registers subscribers under a write lock).
type Index[V any] struct {
	cache *Cache
	exact map[string]*indexEntry[V]
	sels  map[*Selector]*indexEntry[V] // all but exact selectors
	any   []*indexEntry[V]
	tmpl  radix[*indexEntry[V]]
	urls  map[string]*urlBucket[V] // by base URL
	calls uint64                   // Match calls, for the entries' stamps

	// peaks of the maps' sizes since they were last rebuilt: a Go map keeps
	// its memory after deletes, so a map that shrank well below its peak is
	// copied into a new one.
	exactPeak, selsPeak int
}

type indexEntry[V any] struct {
	sel   *Selector
	val   V
	key   string // in tmpl or its URL bucket's tree
	stamp uint64 // the Match call that last reported it
}

// urlBucket holds the URL patterns compiled against one base URL.
type urlBucket[V any] struct {
	sample *Selector // any selector of the bucket, for baseFor
	tree   radix[*indexEntry[V]]
	n      int
}

// NewIndex returns an empty index that evaluates selectors through c.
func NewIndex[V any](c *Cache) *Index[V] {
	return &Index[V]{
		cache: c,
		exact: make(map[string]*indexEntry[V]),
		sels:  make(map[*Selector]*indexEntry[V]),
		urls:  make(map[string]*urlBucket[V]),
	}
}

// Len returns the number of distinct selectors in x.
func (x *Index[V]) Len() int { return len(x.exact) + len(x.sels) }

// Get returns the value of s. Exact selectors are identified by their
// string, all others by pointer (share compiled selectors between users).
func (x *Index[V]) Get(s *Selector) (V, bool) {
	var e *indexEntry[V]
	if s.kind == KindExact {
		e = x.exact[s.raw]
	} else {
		e = x.sels[s]
	}
	if e == nil {
		var zero V
		return zero, false
	}
	return e.val, true
}

// Put sets the value of s, adding s to x if needed.
func (x *Index[V]) Put(s *Selector, v V) {
	if s.kind == KindExact {
		if e := x.exact[s.raw]; e != nil {
			e.val = v
			return
		}
		x.exact[s.raw] = &indexEntry[V]{sel: s, val: v}
		x.exactPeak = max(x.exactPeak, len(x.exact))
		return
	}
	if e := x.sels[s]; e != nil {
		e.val = v
		return
	}
	e := &indexEntry[V]{sel: s, val: v}
	x.sels[s] = e
	x.selsPeak = max(x.selsPeak, len(x.sels))
	switch s.kind {
	case KindAny:
		x.any = append(x.any, e)
	case KindTemplate:
		e.key = s.tmpl.prefix()
		x.tmpl.insert(e.key, e)
	case KindURLPattern:
		b := x.urls[s.base]
		if b == nil {
			b = &urlBucket[V]{sample: s}
			x.urls[s.base] = b
		}
		e.key = s.urlPrefix()
		b.tree.insert(e.key, e)
		b.n++
	}
}

// Delete removes s from x; it does nothing if s is not there.
func (x *Index[V]) Delete(s *Selector) {
	if s.kind == KindExact {
		if _, ok := x.exact[s.raw]; ok {
			delete(x.exact, s.raw)
			x.exact, x.exactPeak = shrink(x.exact, x.exactPeak)
		}
		return
	}
	e := x.sels[s]
	if e == nil {
		return
	}
	delete(x.sels, s)
	x.sels, x.selsPeak = shrink(x.sels, x.selsPeak)
	switch s.kind {
	case KindAny:
		for i, a := range x.any {
			if a == e {
				x.any[i] = x.any[len(x.any)-1]
				x.any[len(x.any)-1] = nil
				x.any = x.any[:len(x.any)-1]
				break
			}
		}
	case KindTemplate:
		x.tmpl.remove(e.key, e)
	case KindURLPattern:
		b := x.urls[s.base]
		b.tree.remove(e.key, e)
		if b.n--; b.n == 0 {
			delete(x.urls, s.base)
		}
	}
}

// shrink returns m, copied into a new map when it holds less than a quarter
// of its peak size (and the peak was large enough to matter), and the peak
// to track from then on.
func shrink[K comparable, E any](m map[K]E, peak int) (map[K]E, int) {
	if peak < 64 || len(m) > peak/4 {
		return m, peak
	}
	out := make(map[K]E, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out, len(m)
}

// Match calls fn with the value of every selector in x that matches at
// least one of topics, once per selector and in no particular order.
func (x *Index[V]) Match(topics []string, fn func(V)) {
	x.calls++
	call := x.calls
	for _, e := range x.any {
		e.stamp = call
		fn(e.val)
	}
	report := func(e *indexEntry[V]) {
		e.stamp = call
		fn(e.val)
	}
	for _, t := range topics {
		if e := x.exact[t]; e != nil && e.stamp != call {
			report(e)
		}
		th, hashed := uint64(0), false
		x.tmpl.walk(t, func(items []*indexEntry[V]) {
			for _, e := range items {
				if e.stamp == call {
					continue
				}
				if !hashed {
					th, hashed = TopicHash(t), true
				}
				if x.cache.MatchHashed(e.sel, t, th) {
					report(e)
				}
			}
		})
		if len(x.urls) == 0 || !urlTopicOK(t) {
			continue
		}
		for _, b := range x.urls {
			v, ok := parseURLView(t, b.sample.baseFor(t))
			if !ok {
				continue
			}
			b.tree.walk(v.key(), func(items []*indexEntry[V]) {
				for _, e := range items {
					if e.stamp == call {
						continue
					}
					if !hashed {
						th, hashed = TopicHash(t), true
					}
					if e.sel.matchURLView(t, &v, x.cache, th) {
						report(e)
					}
				}
			})
		}
	}
}
