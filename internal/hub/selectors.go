package hub

import (
	"net/url"
	"sync"

	"github.com/mercurectl/mercurectl/internal/match"
)

// selectorCache shares compiled selectors between requests: tokens and
// subscriptions repeat the same few selectors, and sharing the pointers also
// lets the match cache key on them.
type selectorCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*match.Selector
}

func newSelectorCache(max int) *selectorCache {
	return &selectorCache{max: max, m: make(map[string]*match.Selector)}
}

func (c *selectorCache) lookup(key string) (*match.Selector, bool) {
	c.mu.Lock()
	s, ok := c.m[key]
	c.mu.Unlock()
	return s, ok
}

func (c *selectorCache) store(key string, s *match.Selector) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		// Drop an arbitrary half: cheap, and hot selectors come straight back.
		n := 0
		for k := range c.m {
			delete(c.m, k)
			if n++; n >= c.max/2 {
				break
			}
		}
	}
	c.m[key] = s
	c.mu.Unlock()
}

// get07 compiles a draft-07 selector (never fails).
func (c *selectorCache) get07(s string) *match.Selector {
	key := "7\x00" + s
	if sel, ok := c.lookup(key); ok {
		return sel
	}
	sel := match.Compile07(s)
	c.store(key, sel)
	return sel
}

// get08 compiles a draft-08 matcher relative to base.
func (c *selectorCache) get08(typ, s string, base *url.URL) (*match.Selector, error) {
	key := "8\x00" + typ + "\x00" + base.String() + "\x00" + s
	if sel, ok := c.lookup(key); ok {
		return sel, nil
	}
	sel, err := match.Compile08(typ, s, base)
	if err != nil {
		return nil, err
	}
	c.store(key, sel)
	return sel, nil
}
