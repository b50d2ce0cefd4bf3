package match

import (
	"math/bits"
	"unicode"
	"unicode/utf8"
)

// template is a compiled RFC 6570 URI template (draft-07 selectors,
// docs/protocol.md#matching-07). It matches the language that the template's regular
// expression in the uritemplate library describes, which is what this package
// matched before it had its own matcher: every literal byte for byte, and
// every expression as
//
//	(first (C0 (sep Cj){0,max}))?
//
// where first and sep are the expression's operator characters, C0 and Cj
// are runs of the characters the operator allows or %XX triplets, and max is
// the number of variables minus one (unbounded with an explode modifier).
//
// It keeps no copy of the template: parts are offsets into the selector
// string, eight bytes each, so compiling costs time and memory linear in the
// template's length with a small constant. Matching runs in one pass over the
// topic per part, keeping the set of topic positions the parts so far can
// end at (see match).
type template struct {
	raw   string
	parts []tmplPart
}

// tmplPart is a literal (op == 0, raw[start:end]) or an expression.
type tmplPart struct {
	start, end uint16
	op         uint8  // 0 for a literal, else an index in tmplOps
	flags      uint8  // flagExplode0, flagExplodeAny
	nvars      uint16 // the expression's variables (at most maxTemplateRepeat+2)
}

const (
	flagExplode0   = 1 << iota // the first variable has the explode modifier
	flagExplodeAny             // some variable has it: the repetition is unbounded
)

// maxTemplateRepeat is the largest repetition count RE2 accepts. A template
// with an expression of more variables than this plus one was, with the
// regexp-based matcher, an exact selector (the regexp could not be built),
// and still is.
const maxTemplateRepeat = 1000

// tmplOp describes an expression operator (RFC 6570 section 3.2.1).
type tmplOp struct {
	first, sep byte // first is 0 for none
	named      bool // ";", "?" and "&": "=" is allowed in values
	reserved   bool // "+" and "#": reserved characters are allowed
}

var tmplOps = [...]tmplOp{
	1: {0, ',', false, false},   // simple
	2: {0, ',', false, true},    // +
	3: {'#', ',', false, true},  // #
	4: {'.', '.', false, false}, // .
	5: {'/', '/', false, false}, // /
	6: {';', ';', true, false},  // ;
	7: {'?', '&', true, false},  // ?
	8: {'&', '&', true, false},  // &
}

// Character classes of expression values: unreserved characters plus ","
// (classU), plus "=" (classUEq), or unreserved and reserved characters
// (classUR). Only ASCII characters are ever allowed.
type byteClass [2]uint64

func (c *byteClass) has(b byte) bool { return b < 128 && c[b>>6]&(1<<(b&63)) != 0 }

func newClass(chars string) byteClass {
	var c byteClass
	add := func(b byte) { c[b>>6] |= 1 << (b & 63) }
	for i := range len(chars) {
		add(chars[i])
	}
	for b := byte('a'); b <= 'z'; b++ {
		add(b)
		add(b - 'a' + 'A')
	}
	for b := byte('0'); b <= '9'; b++ {
		add(b)
	}
	return c
}

var (
	classU   = newClass("-._~,")
	classUEq = newClass("-._~,=")
	classUR  = newClass("-._~!#$&'()*+,/:;=?@[]")
)

func (p *tmplPart) classes() (c0, cj *byteClass) {
	op := &tmplOps[p.op]
	if op.reserved {
		return &classUR, &classUR
	}
	c0, cj = &classU, &classU
	if op.named || p.flags&flagExplode0 != 0 {
		c0 = &classUEq
	}
	if op.named || p.flags&flagExplodeAny != 0 {
		cj = &classUEq
	}
	return c0, cj
}

// maxRepeat returns the most separators the expression's values may
// contain: -1 for no bound, 0 when there is no repetition at all.
func (p *tmplPart) maxRepeat() int {
	switch {
	case p.flags&flagExplodeAny != 0:
		return -1
	default:
		return int(p.nvars) - 1
	}
}

// Template parser states, as in the RFC 6570 grammar.
const (
	tsDefault = iota
	tsOperator
	tsVarList
	tsVarName
	tsPrefix
)

// compileTemplate compiles s, or returns nil when s is not a valid template
// with at least one expression, or when one of its expressions has more
// variables than the regexp-based matcher could handle. The grammar accepted
// is exactly the uritemplate library's (RFC 6570 level 4).
func compileTemplate(s string) *template {
	if len(s) > MaxPatternLength {
		return nil
	}
	var parts []tmplPart
	cur := -1 // index of the expression being parsed
	state, start, prefix := tsDefault, 0, 0
	addVar := func(explode bool) {
		p := &parts[cur]
		if p.nvars == 0 && explode {
			p.flags |= flagExplode0
		}
		if explode {
			p.flags |= flagExplodeAny
		}
		if p.nvars < maxTemplateRepeat+2 {
			p.nvars++
		}
	}
	for i := 0; ; {
		if i >= len(s) {
			if state != tsDefault {
				return nil
			}
			if start < i {
				parts = append(parts, tmplPart{start: off(start), end: off(i)})
			}
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError {
			return nil // invalid UTF-8; the library also refuses an encoded U+FFFD
		}
		i += size
		switch state {
		case tsDefault:
			switch {
			case r == '{':
				if i-size > start {
					parts = append(parts, tmplPart{start: off(start), end: off(i - size)})
				}
				parts = append(parts, tmplPart{start: off(i - size)})
				cur = len(parts) - 1
				state, start = tsOperator, i
			case r == '%':
				if !isTriplet(s, i-size) {
					return nil
				}
				i += 2
			case r < utf8.RuneSelf:
				if !asciiLiterals[r] {
					return nil
				}
			case !unicode.Is(templateLiterals, r):
				return nil
			}
		case tsOperator:
			op := uint8(1)
			switch r {
			case '+':
				op = 2
			case '#':
				op = 3
			case '.':
				op = 4
			case '/':
				op = 5
			case ';':
				op = 6
			case '?':
				op = 7
			case '&':
				op = 8
			case '=', ',', '!', '@', '|':
				return nil // reserved for future extensions
			default:
				i -= size
			}
			parts[cur].op = op
			state, start = tsVarName, i
		case tsVarList:
			switch r {
			case ',':
				state, start = tsVarName, i
			case '}':
				parts[cur].end = off(i)
				state, start = tsDefault, i
			default:
				return nil
			}
		case tsVarName:
			switch {
			case r == ':' || r == '*':
				if !validVarname(s[start : i-size]) {
					return nil
				}
				addVar(r == '*')
				if r == '*' {
					state = tsVarList
				} else {
					state, prefix = tsPrefix, 0
				}
				start = i
			case r == ',' || r == '}':
				i -= size
				if !validVarname(s[start:i]) {
					return nil
				}
				addVar(false)
				state, start = tsVarList, i
			case r == '%':
				if !isTriplet(s, i-size) {
					return nil
				}
				i += 2
			case r == '.':
				if dot := i - size; dot == start || s[dot-1] == '.' {
					return nil
				}
			case !isVarchar(r):
				return nil
			}
		case tsPrefix:
			if '0' <= r && r <= '9' {
				prefix = prefix*10 + int(r-'0')
				if prefix == 0 || prefix > 9999 {
					return nil
				}
				break
			}
			i -= size
			if prefix == 0 {
				return nil
			}
			state, start = tsVarList, i
		}
	}
	if cur < 0 {
		return nil // no expression: an exact selector
	}
	for i := range parts {
		p := &parts[i]
		if p.op != 0 && p.flags&flagExplodeAny == 0 && int(p.nvars)-1 > maxTemplateRepeat {
			return nil
		}
	}
	return &template{raw: s, parts: parts}
}

// off converts an offset in a template, which is at most MaxPatternLength
// bytes long, to the width parts store.
func off(i int) uint16 {
	return uint16(min(max(i, 0), MaxPatternLength)) //nolint:gosec // clamped to 0..4096 just before
}

func isTriplet(s string, i int) bool {
	return i+2 < len(s) && s[i] == '%' && isHex(s[i+1]) && isHex(s[i+2])
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isVarchar(r rune) bool {
	return '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || r == '_'
}

// validVarname refuses empty names and names that start or end with a dot
// or hold two dots in a row.
func validVarname(name string) bool {
	if n := len(name); n == 0 || name[0] == '.' || name[n-1] == '.' {
		return false
	}
	for i := 1; i < len(name)-1; i++ {
		if name[i] == '.' && name[i-1] == '.' {
			return false
		}
	}
	return true
}

// asciiLiterals is templateLiterals for ASCII, as a table.
var asciiLiterals = func() (t [utf8.RuneSelf]bool) {
	for r := range rune(utf8.RuneSelf) {
		t[r] = unicode.Is(templateLiterals, r)
	}
	return t
}()

// templateLiterals are the characters allowed outside expressions (RFC 6570
// section 2.1, with the apostrophe as erratum 6937 allows), besides %XX.
var templateLiterals = &unicode.RangeTable{
	R16: []unicode.Range16{
		{Lo: 0x21, Hi: 0x21, Stride: 1},
		{Lo: 0x23, Hi: 0x24, Stride: 1},
		{Lo: 0x26, Hi: 0x3B, Stride: 1},
		{Lo: 0x3D, Hi: 0x3D, Stride: 1},
		{Lo: 0x3F, Hi: 0x5B, Stride: 1},
		{Lo: 0x5D, Hi: 0x5D, Stride: 1},
		{Lo: 0x5F, Hi: 0x5F, Stride: 1},
		{Lo: 0x61, Hi: 0x7A, Stride: 1},
		{Lo: 0x7E, Hi: 0x7E, Stride: 1},
		{Lo: 0xA0, Hi: 0xD7FF, Stride: 1},
		{Lo: 0xE000, Hi: 0xF8FF, Stride: 1},
		{Lo: 0xF900, Hi: 0xFDCF, Stride: 1},
		{Lo: 0xFDF0, Hi: 0xFFEF, Stride: 1},
	},
	R32: []unicode.Range32{
		{Lo: 0x10000, Hi: 0x1FFFD, Stride: 1},
		{Lo: 0x20000, Hi: 0x2FFFD, Stride: 1},
		{Lo: 0x30000, Hi: 0x3FFFD, Stride: 1},
		{Lo: 0x40000, Hi: 0x4FFFD, Stride: 1},
		{Lo: 0x50000, Hi: 0x5FFFD, Stride: 1},
		{Lo: 0x60000, Hi: 0x6FFFD, Stride: 1},
		{Lo: 0x70000, Hi: 0x7FFFD, Stride: 1},
		{Lo: 0x80000, Hi: 0x8FFFD, Stride: 1},
		{Lo: 0x90000, Hi: 0x9FFFD, Stride: 1},
		{Lo: 0xA0000, Hi: 0xAFFFD, Stride: 1},
		{Lo: 0xB0000, Hi: 0xBFFFD, Stride: 1},
		{Lo: 0xC0000, Hi: 0xCFFFD, Stride: 1},
		{Lo: 0xD0000, Hi: 0xDFFFD, Stride: 1},
		{Lo: 0xE1000, Hi: 0xEFFFD, Stride: 1},
		{Lo: 0xF0000, Hi: 0xFFFFD, Stride: 1},
		{Lo: 0x100000, Hi: 0x10FFFD, Stride: 1},
	},
	LatinOffset: 9,
}

// expressions returns the number of expressions of t.
func (t *template) expressions() int {
	n := 0
	for i := range t.parts {
		if t.parts[i].op != 0 {
			n++
		}
	}
	return n
}

// prefix returns the literal that every matching topic starts with.
func (t *template) prefix() string {
	if p := t.parts[0]; p.op == 0 {
		return t.raw[p.start:p.end]
	}
	return ""
}

// posSet is a set of topic positions 0..n.
type posSet []uint64

func (s posSet) has(i int) bool { return s[i>>6]&(1<<(i&63)) != 0 }
func (s posSet) add(i int)      { s[i>>6] |= 1 << (i & 63) }

// match reports whether the whole of topic matches t. Each part maps the set
// of positions where the parts before it can end to the set where it can
// end, in one pass over the topic: a literal by comparison at each position,
// an expression by a scan that keeps, per state of the expression's
// automaton, the smallest number of separators used so far (a thread that
// used fewer can do everything one that used more can). The cost is
// O(len(topic) × parts) in the worst case, and usually far less since the
// set empties at the first mismatch.
func (t *template) match(topic string) bool {
	n := len(topic)
	words := n/64 + 1
	var bufA, bufB [16]uint64
	var cur, next posSet
	if words <= len(bufA) {
		cur, next = bufA[:words], bufB[:words]
	} else {
		cur, next = make(posSet, words), make(posSet, words)
	}
	cur.add(0)
	lo := 0 // no position below lo is in cur
	for pi := range t.parts {
		p := &t.parts[pi]
		clear(next)
		var any bool
		if p.op == 0 {
			any = t.stepLiteral(topic, t.raw[p.start:p.end], cur, next, lo)
		} else {
			any = stepExpr(topic, p, cur, next, lo)
		}
		if !any {
			return false
		}
		cur, next = next, cur
		for lo <= n && !cur.has(lo) {
			lo++
		}
	}
	return cur.has(n)
}

func (t *template) stepLiteral(topic, lit string, cur, next posSet, lo int) bool {
	any := false
	last := len(topic) - len(lit)
	for w := lo >> 6; w < len(cur); w++ {
		for word := cur[w]; word != 0; word &= word - 1 {
			p := w<<6 + bits.TrailingZeros64(word)
			if p > last {
				return any
			}
			if topic[p:p+len(lit)] == lit {
				next.add(p + len(lit))
				any = true
			}
		}
	}
	return any
}

// stepExpr runs the expression's automaton over topic from every position
// in cur at once. States: inside the first value (c0) or a later one (cj),
// each at a value boundary or after one or two characters of a %XX triplet.
// cj* hold the fewest separators used to get there, or -1.
func stepExpr(topic string, p *tmplPart, cur, next posSet, lo int) bool {
	op := &tmplOps[p.op]
	class0, classJ := p.classes()
	limit := p.maxRepeat() // -1: unbounded; 0: no repetition
	n := len(topic)
	var c0, c0p1, c0p2 bool
	cj, cj1, cj2 := -1, -1, -1
	any := false
	for i := lo; i <= n; i++ {
		start := cur.has(i)
		if start && op.first == 0 {
			c0 = true // the value starts right here
		}
		if start || c0 || cj >= 0 {
			next.add(i) // the expression may be absent, or end here
			any = true
		}
		if i == n {
			break
		}
		c := topic[i]
		var n0, n0p1, n0p2 bool
		nj, nj1, nj2 := -1, -1, -1
		if c0 {
			n0 = class0.has(c)
			n0p1 = c == '%'
			if c == op.sep && limit != 0 {
				nj = 1
			}
		}
		if c0p1 && isHex(c) {
			n0p2 = true
		}
		if c0p2 && isHex(c) {
			n0 = true
		}
		if cj >= 0 {
			if classJ.has(c) {
				nj = minCount(nj, cj)
			}
			if c == '%' {
				nj1 = cj
			}
			if c == op.sep && (limit < 0 || cj < limit) {
				nj = minCount(nj, cj+1)
			}
		}
		if cj1 >= 0 && isHex(c) {
			nj2 = cj1
		}
		if cj2 >= 0 && isHex(c) {
			nj = minCount(nj, cj2)
		}
		if start && op.first != 0 && c == op.first {
			n0 = true
		}
		if limit < 0 && nj > 0 {
			nj = 0 // unbounded: the count does not matter
		}
		c0, c0p1, c0p2, cj, cj1, cj2 = n0, n0p1, n0p2, nj, nj1, nj2
		if !c0 && !c0p1 && !c0p2 && cj < 0 && cj1 < 0 && cj2 < 0 && !cur.hasFrom(i+1) {
			break
		}
	}
	return any
}

func minCount(a, b int) int {
	if a < 0 || b < a {
		return b
	}
	return a
}

// hasFrom reports whether the set holds a position >= i.
func (s posSet) hasFrom(i int) bool {
	w := i >> 6
	if w >= len(s) {
		return false
	}
	if s[w]>>(i&63) != 0 {
		return true
	}
	for w++; w < len(s); w++ {
		if s[w] != 0 {
			return true
		}
	}
	return false
}

// TemplateExpressions returns the number of expressions of s when Compile07
// makes it a URI template, and 0 when it makes it exact or "*". It costs a
// parse of s, so that a hub can cap template complexity before compiling.
func TemplateExpressions(s string) int {
	if s == "*" || len(s) > MaxPatternLength {
		return 0
	}
	if t := compileTemplate(s); t != nil {
		return t.expressions()
	}
	return 0
}
