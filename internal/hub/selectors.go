package hub

import (
	"net/url"
	"strings"
	"sync"

	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/token"
)

// selectorRegistry shares compiled selectors: a selector is compiled once
// per distinct string (and base URL, for URL patterns), whichever
// subscriptions, tokens and publishes use it, and released when the last of
// them lets go of it. Sharing the pointers also lets the dispatch index
// group subscribers by selector, and the match cache key on them; a released
// selector's cache entries are dropped at the next purge.
type selectorRegistry struct {
	cache *match.Cache

	mu    sync.Mutex
	byKey map[string]*regEntry
	byPtr map[*match.Selector]*regEntry
	peak  int // the maps' size when they were last made (see shrinkMap)

	grants map[string]*grantSet // interned grant lists, by grantKey
}

type regEntry struct {
	key  string
	sel  *match.Selector
	refs int
}

// grantSet is a token's subscribe grants, compiled, and shared by the
// subscriptions that present the same grants against the same base URL.
// stamp and ok memoise the last private update dispatch checked, so that a
// private update reaching many subscribers with the same grants is checked
// once; only the (serial) dispatch path touches them.
type grantSet struct {
	key   string
	sels  []*match.Selector
	refs  int
	stamp uint64
	ok    bool
}

func newSelectorRegistry(c *match.Cache) *selectorRegistry {
	return &selectorRegistry{
		cache:  c,
		byKey:  make(map[string]*regEntry),
		byPtr:  make(map[*match.Selector]*regEntry),
		grants: make(map[string]*grantSet),
	}
}

// acquire returns the selector registered under key, or registers the one
// compile returns. Compilation runs outside the lock: two requests compiling
// the same new selector at once both compile it, and the second uses the
// first's.
func (r *selectorRegistry) acquire(key string, compile func() (*match.Selector, error)) (*match.Selector, error) {
	r.mu.Lock()
	if e := r.byKey[key]; e != nil {
		e.refs++
		r.mu.Unlock()
		return e.sel, nil
	}
	r.mu.Unlock()
	sel, err := compile()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.byKey[key]; e != nil {
		e.refs++
		return e.sel, nil
	}
	e := &regEntry{key: key, sel: sel, refs: 1}
	r.byKey[key] = e
	r.byPtr[sel] = e
	r.peak = max(r.peak, len(r.byKey))
	return sel, nil
}

// get07 returns a draft-07 selector (never fails), holding a reference.
func (r *selectorRegistry) get07(s string) *match.Selector {
	sel, _ := r.acquire("7\x00"+s, func() (*match.Selector, error) { return match.Compile07(s), nil })
	return sel
}

// get08 returns a draft-08 matcher relative to base, holding a reference.
func (r *selectorRegistry) get08(typ, s string, base *url.URL) (*match.Selector, error) {
	key := "8\x00" + typ + "\x00"
	if typ == match.TypeURLPattern && s != "*" {
		key += base.String() // only URL patterns depend on the base
	}
	return r.acquire(key+"\x00"+s, func() (*match.Selector, error) { return match.Compile08(typ, s, base) })
}

// release gives back one reference to each of sels.
func (r *selectorRegistry) release(sels ...*match.Selector) {
	if len(sels) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releaseLocked(sels)
}

func (r *selectorRegistry) releaseLocked(sels []*match.Selector) {
	for _, sel := range sels {
		e := r.byPtr[sel]
		if e == nil {
			continue
		}
		if e.refs--; e.refs > 0 {
			continue
		}
		delete(r.byKey, e.key)
		delete(r.byPtr, sel)
		r.cache.Forget(sel)
	}
	if r.peak >= 64 && len(r.byKey) <= r.peak/4 {
		r.byKey = shrinkMap(r.byKey)
		r.byPtr = shrinkMap(r.byPtr)
		r.peak = len(r.byKey)
	}
}

// len returns the number of distinct selectors held.
func (r *selectorRegistry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byKey)
}

// compile compiles a token's topic selectors, holding a reference to each;
// draft-08 selectors that do not compile grant nothing and are left out.
func (r *selectorRegistry) compile(sels []token.Selector, base *url.URL) []*match.Selector {
	out := make([]*match.Selector, 0, len(sels))
	for _, g := range sels {
		if g.Type == "" {
			out = append(out, r.get07(g.Match))
			continue
		}
		if sel, err := r.get08(g.Type, g.Match, base); err == nil {
			out = append(out, sel)
		}
	}
	return out
}

// grantKey identifies a list of grants relative to base.
func grantKey(sels []token.Selector, base *url.URL) string {
	var b strings.Builder
	b.WriteString(base.String())
	for _, g := range sels {
		b.WriteByte(0)
		b.WriteString(g.Type)
		b.WriteByte(0)
		b.WriteString(g.Match)
	}
	return b.String()
}

// acquireGrants returns the shared compiled form of a subscriber's grants.
func (r *selectorRegistry) acquireGrants(sels []token.Selector, base *url.URL) *grantSet {
	key := grantKey(sels, base)
	r.mu.Lock()
	if g := r.grants[key]; g != nil {
		g.refs++
		r.mu.Unlock()
		return g
	}
	r.mu.Unlock()
	compiled := r.compile(sels, base)
	r.mu.Lock()
	defer r.mu.Unlock()
	if g := r.grants[key]; g != nil {
		g.refs++
		r.releaseLocked(compiled)
		return g
	}
	g := &grantSet{key: key, sels: compiled, refs: 1}
	r.grants[key] = g
	return g
}

// releaseGrants gives back one reference to g.
func (r *selectorRegistry) releaseGrants(g *grantSet) {
	if g == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if g.refs--; g.refs > 0 {
		return
	}
	delete(r.grants, g.key)
	r.releaseLocked(g.sels)
}

// shrinkMap copies m into a map sized for what it holds now: a Go map keeps
// the memory of its peak size after deletes.
func shrinkMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
