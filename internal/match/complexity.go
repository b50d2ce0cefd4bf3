package match

import (
	"fmt"
	"regexp/syntax"
	"unicode"
	"unicode/utf8"
)

// checkComplexity enforces MaxPatternGroups and MaxPatternRegexpSize on a URL
// pattern. It scans the pattern with the tokenizer rules of the URL Pattern
// standard (https://urlpattern.spec.whatwg.org/#tokenize): "\" escapes the
// next code point, ":" starts a group name, "(" starts a regexp that runs to
// the balancing ")", and "*" is a wildcard (or a modifier, which is counted
// too: the count errs on the safe side). Syntax errors are left to the URL
// Pattern parser, which runs next.
func checkComplexity(pattern string) error {
	groups, size := 0, 0
	for i := 0; i < len(pattern); {
		switch c := pattern[i]; c {
		case '\\':
			i++
			if i < len(pattern) {
				_, n := utf8.DecodeRuneInString(pattern[i:])
				i += n
			}
		case '*':
			groups++
			i++
		case ':':
			i++
			n := nameLength(pattern[i:])
			if n > 0 {
				groups++
			}
			i += n
		case '(':
			groups++
			end := regexpEnd(pattern, i+1)
			size += regexpSize(pattern[i+1 : end])
			i = end + 1
		default:
			i++
		}
		if groups > MaxPatternGroups {
			return fmt.Errorf("%w: more than %d groups", ErrInvalidPattern, MaxPatternGroups)
		}
		if size > MaxPatternRegexpSize {
			return fmt.Errorf("%w: regular expressions too large (more than %d instructions)", ErrInvalidPattern, MaxPatternRegexpSize)
		}
	}
	return nil
}

// nameLength returns the length in bytes of the group name at the start of
// s: a code point that is ID_Start, "$" or "_", then ID_Continue, "$", "_",
// ZWNJ or ZWJ code points.
func nameLength(s string) int {
	n := 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		ok := r == '$' || r == '_'
		if n == 0 {
			ok = ok || unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_ID_Start, r)
		} else {
			ok = ok || r == '\u200c' || r == '\u200d' || unicode.IsLetter(r) || unicode.IsDigit(r) ||
				unicode.In(r, unicode.Nl, unicode.Mn, unicode.Mc, unicode.Nd, unicode.Pc, unicode.Other_ID_Start, unicode.Other_ID_Continue)
		}
		if !ok {
			break
		}
		n += size
	}
	return n
}

// regexpEnd returns the index of the ")" that closes the regexp group whose
// body starts at i, or len(s) when it is unbalanced.
func regexpEnd(s string, i int) int {
	depth := 1
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return len(s)
}

// regexpSize returns the number of instructions RE2 compiles expr to, or 0
// when expr does not parse (the URL Pattern parser then refuses it).
func regexpSize(expr string) int {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return 0
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0
	}
	return len(prog.Inst)
}
