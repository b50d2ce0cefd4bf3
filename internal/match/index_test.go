package match

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// linearMatch is what Index.Match must return: every selector that matches
// one of topics, found by trying them all.
func linearMatch(sels []*Selector, topics []string) []string {
	var out []string
	for _, s := range sels {
		for _, t := range topics {
			if s.Match(t) {
				out = append(out, label(s))
				break
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func indexMatch(x *Index[*Selector], topics []string) []string {
	var out []string
	seen := map[*Selector]bool{}
	x.Match(topics, func(s *Selector) {
		if seen[s] {
			panic(fmt.Sprintf("selector %q reported twice", s))
		}
		seen[s] = true
		out = append(out, label(s))
	})
	slices.Sort(out)
	return slices.Compact(out)
}

func label(s *Selector) string { return fmt.Sprintf("%v %q %p", s.Kind(), s, s) }

// indexFixture compiles selectors of every kind, in both generations and
// against two base URLs. Exact selectors are identified by their string in
// an index, so only the first of each string is kept.
func indexFixture(tb testing.TB, raw []string) []*Selector {
	tb.Helper()
	bases := []*url.URL{mustParse(tb, hubURL), mustParse(tb, "http://localhost:3000/.well-known/mercure")}
	var sels []*Selector
	exact := map[string]bool{}
	add := func(s *Selector) {
		if s.Kind() == KindExact {
			if exact[s.String()] {
				return
			}
			exact[s.String()] = true
		}
		sels = append(sels, s)
	}
	for _, r := range raw {
		add(Compile07(r))
		for _, b := range bases {
			for _, typ := range []string{"exact", "urlpattern"} {
				if s, err := Compile08(typ, r, b); err == nil {
					add(s)
				}
			}
		}
	}
	return sels
}

var indexSelectors = []string{
	"*", "https://example.com/books/1", "https://example.com/books/{id}", "https://example.com/books/:id",
	"https://example.com/books/*", "https://example.com/{+path}", "{+any}", "/books/:id", "/books/{id}",
	"https://example.com/books/:id?", "https://example.com/books{/:id}?", "https://*.example.com/*",
	"*://*/books/:id", `urn\:books\:*`, "urn:*", "https://example.com/books/(\\d+)", "/books/1",
	"https://example.com/b", "https://example.com/books", "https://example.com/books/1/chapters/:c",
	"http://localhost:3000/books/:id", "https://EXAMPLE.com/books/:id", "books/:id", "//example.com/books/:id",
	"{scheme}://example.com/books/1", "https://example.com/books/{id}/x{?q}", "",
}

var indexTopics = []string{
	"https://example.com/books/1", "https://example.com/books/2", "https://example.com/books/",
	"https://example.com/books", "https://example.com/books/1/chapters/3", "https://EXAMPLE.com/books/1",
	"http://localhost:3000/books/1", "/books/1", "books/1", "urn:books:1", "https://www.example.com/x",
	"https://example.com/books/1/x?q=2", "https://example.com/b", "https://example.com/books/{id}",
	"https://example.org/books/1", "", " https://example.com/books/1", "https://example.com/books/1\u200b",
	"//example.com/books/1", "https:books/1",
}

func TestIndexAgreesWithLinearScan(t *testing.T) {
	t.Parallel()
	sels := indexFixture(t, indexSelectors)
	x := NewIndex[*Selector](NewCache(0))
	for _, s := range sels {
		x.Put(s, s)
	}
	check := func(live []*Selector) {
		t.Helper()
		for _, topic := range indexTopics {
			for _, topics := range [][]string{{topic}, {topic, "https://example.com/books/2", topic}} {
				want, got := linearMatch(live, topics), indexMatch(x, topics)
				if !slices.Equal(got, want) {
					t.Fatalf("topics %q:\nindex  %q\nlinear %q", topics, got, want)
				}
			}
		}
	}
	check(sels)
	// Remove every other selector, then all: the tree prunes itself.
	var live []*Selector
	for i, s := range sels {
		if i%2 == 0 && s.Kind() != KindExact {
			x.Delete(s)
		} else {
			live = append(live, s)
		}
	}
	check(live)
	for _, s := range live {
		x.Delete(s)
	}
	if x.Len() != 0 || len(x.tmpl.root.kids) != 0 || len(x.urls) != 0 || len(x.any) != 0 {
		t.Errorf("index not empty after deleting everything: Len %d, %d template kids, %d URL buckets", x.Len(), len(x.tmpl.root.kids), len(x.urls))
	}
}

func TestIndexSharesOneEntryPerSelector(t *testing.T) {
	t.Parallel()
	x := NewIndex[int](nil)
	a, b := Compile07("https://example.com/a"), Compile07("https://example.com/a")
	x.Put(a, 1)
	if v, ok := x.Get(b); !ok || v != 1 {
		t.Errorf("exact selectors are not identified by their string")
	}
	tm := Compile07("https://example.com/{x}")
	x.Put(tm, 2)
	x.Put(tm, 3)
	if x.Len() != 2 {
		t.Errorf("Len() = %d, want 2", x.Len())
	}
	n := 0
	x.Match([]string{"https://example.com/a"}, func(v int) {
		n++
		if v != 1 && v != 3 {
			t.Errorf("value %d", v)
		}
	})
	if n != 2 {
		t.Errorf("%d values reported, want 2", n)
	}
}

// FuzzIndexAgreesWithLinearScan builds an index from fuzzed selectors,
// removes some, and compares its answer for fuzzed topics with trying every
// selector in turn.
func FuzzIndexAgreesWithLinearScan(f *testing.F) {
	f.Add(strings.Join(indexSelectors[:12], "\n"), "https://example.com/books/1\n/books/2", uint64(1))
	f.Add(strings.Join(indexSelectors[12:], "\n"), "urn:books:1\nhttps://www.example.com/x", uint64(2))
	f.Add("https://example.com/a/{x}\nhttps://example.com/a{/x}\nhttps://example.com/ab/:x", "https://example.com/a/b", uint64(3))
	f.Fuzz(func(t *testing.T, selectors, topics string, seed uint64) {
		var raw []string
		for _, r := range strings.Split(selectors, "\n") {
			if len(r) <= 200 && len(raw) < 32 { // keep executions fast
				raw = append(raw, r)
			}
		}
		sels := indexFixture(t, raw)
		x := NewIndex[*Selector](NewCache(1 << 16))
		var live []*Selector
		rng := rand.New(rand.NewPCG(seed, 0))
		for _, s := range sels {
			x.Put(s, s)
			live = append(live, s)
		}
		// Remove a random part, in a random order.
		rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
		cut := rng.IntN(len(live) + 1)
		for _, s := range live[cut:] {
			x.Delete(s)
		}
		live = live[:cut]
		ts := strings.Split(topics, "\n")
		if len(ts) > 8 {
			ts = ts[:8]
		}
		want, got := linearMatch(live, ts), indexMatch(x, ts)
		if !slices.Equal(got, want) {
			t.Fatalf("topics %q:\nindex  %q\nlinear %q", ts, got, want)
		}
	})
}
