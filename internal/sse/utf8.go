package sse

import "unicode/utf8"

// decode converts b to a string as the WHATWG "UTF-8 decode" algorithm does:
// valid UTF-8 is kept as is, and each maximal subpart of an ill-formed
// sequence becomes one U+FFFD. (Go's own conversions differ: they emit one
// U+FFFD per byte, or one per run.)
//
// Decoding line pieces separately gives the same result as decoding the
// whole stream, because every ill-formed sequence ends at an ASCII byte
// (such as CR, LF or ':'), which is never part of a multi-byte sequence.
func decode(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(appendDecoded(make([]byte, 0, len(b)+8), b))
}

// appendDecoded appends the WHATWG decoding of b to dst.
func appendDecoded(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if r, size := utf8.DecodeRune(b[i:]); r != utf8.RuneError || size > 1 {
			dst = append(dst, b[i:i+size]...)
			i += size
			continue
		}
		dst = append(dst, "\uFFFD"...)
		i += maximalSubpart(b[i:])
	}
	return dst
}

// maximalSubpart returns the length (at least 1) of the ill-formed sequence
// at the start of b, following the WHATWG UTF-8 decoder's "bytes needed" and
// "lower/upper boundary" rules: the lead byte plus every continuation byte
// that could still have completed a valid sequence.
func maximalSubpart(b []byte) int {
	var need int
	lower, upper := byte(0x80), byte(0xBF)
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lower = 2, 0xA0
	case c == 0xED:
		need, upper = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lower = 3, 0x90
	case c == 0xF4:
		need, upper = 3, 0x8F
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(b); n++ {
		if b[n] < lower || b[n] > upper {
			break
		}
		lower, upper = 0x80, 0xBF
	}
	return n
}
