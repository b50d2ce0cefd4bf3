package match

import (
	"slices"
	"strings"
)

// radix is a path-compressed trie of byte strings. Each node holds the items
// inserted under the key that spells the path to it; walk visits the nodes
// whose key is a prefix of a given string, in one pass over that string.
type radix[T comparable] struct {
	root radixNode[T]
}

type radixNode[T comparable] struct {
	label string          // the edge from the parent; "" only for the root
	kids  []*radixNode[T] // sorted by label[0], which is unique among them
	items []T
}

// child returns the index where a kid starting with c is or would go, and
// that kid (nil when there is none).
func (n *radixNode[T]) child(c byte) (int, *radixNode[T]) {
	i, ok := slices.BinarySearchFunc(n.kids, c, func(k *radixNode[T], c byte) int { return int(k.label[0]) - int(c) })
	if ok {
		return i, n.kids[i]
	}
	return i, nil
}

// insert adds v under key. Labels are copied, so that the tree does not keep
// the callers' strings alive once their items are gone.
func (r *radix[T]) insert(key string, v T) {
	n := &r.root
	for {
		if key == "" {
			n.items = append(n.items, v)
			return
		}
		i, c := n.child(key[0])
		if c == nil {
			n.kids = slices.Insert(n.kids, i, &radixNode[T]{label: strings.Clone(key), items: []T{v}})
			return
		}
		l := commonPrefix(c.label, key)
		if l < len(c.label) {
			mid := &radixNode[T]{label: c.label[:l], kids: []*radixNode[T]{c}}
			c.label = c.label[l:]
			n.kids[i] = mid
			c = mid
		}
		n, key = c, key[l:]
	}
}

// remove deletes one v under key and prunes the nodes left empty. It
// reports whether v was there.
func (r *radix[T]) remove(key string, v T) bool {
	var path []*radixNode[T] // the ancestors of n, root first
	n := &r.root
	for key != "" {
		_, c := n.child(key[0])
		if c == nil || !strings.HasPrefix(key, c.label) {
			return false
		}
		path = append(path, n)
		n, key = c, key[len(c.label):]
	}
	i := slices.Index(n.items, v)
	if i < 0 {
		return false
	}
	last := len(n.items) - 1
	n.items[i] = n.items[last]
	var zero T
	n.items[last] = zero
	n.items = n.items[:last]
	if len(n.items) == 0 {
		n.items = nil
	}
	// Prune: drop a node with neither items nor kids, and merge a node with
	// no items and a single kid into that kid; then look at the parent.
	for j := len(path) - 1; j >= 0 && n != &r.root; j-- {
		parent := path[j]
		switch {
		case len(n.items) == 0 && len(n.kids) == 0:
			k, _ := parent.child(n.label[0])
			parent.kids = slices.Delete(parent.kids, k, k+1)
			if len(parent.kids) == 0 {
				parent.kids = nil
			}
		case len(n.items) == 0 && len(n.kids) == 1:
			kid := n.kids[0]
			kid.label = n.label + kid.label
			k, _ := parent.child(n.label[0])
			parent.kids[k] = kid
		default:
			return true
		}
		n = parent
	}
	return true
}

// walk calls fn with the items of every node whose key is a prefix of s,
// shortest first.
func (r *radix[T]) walk(s string, fn func(items []T)) {
	n := &r.root
	for {
		if len(n.items) > 0 {
			fn(n.items)
		}
		if s == "" {
			return
		}
		_, c := n.child(s[0])
		if c == nil || !strings.HasPrefix(s, c.label) {
			return
		}
		n, s = c, s[len(c.label):]
	}
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
