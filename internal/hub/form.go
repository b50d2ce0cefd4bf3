package hub

import (
	"strings"
)

// field is one name=value pair of a form, in request order.
type field struct{ name, value string }

// parseForm parses application/x-www-form-urlencoded data with the WHATWG
// algorithm: pairs split on '&', empty pairs skipped, a name without '=' has
// an empty value, '+' is a space, and a '%' not followed by two hex digits is
// kept literally (Go's url.ParseQuery rejects those and ';' separators,
// which browsers and curl do send). Order and repetitions are kept.
func parseForm(s string, dst []field) []field {
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		dst = append(dst, field{name: formDecode(name), value: formDecode(value)})
	}
	return dst
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func formDecode(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 < len(s) {
				hi, ok1 := unhex(s[i+1])
				lo, ok2 := unhex(s[i+2])
				if ok1 && ok2 {
					b = append(b, hi<<4|lo)
					i += 2
					continue
				}
			}
			b = append(b, c)
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// form is a parsed form with lookup helpers.
type form []field

// first returns the first value of name and whether it is present.
func (f form) first(name string) (string, bool) {
	for _, kv := range f {
		if kv.name == name {
			return kv.value, true
		}
	}
	return "", false
}

// all returns every value of name, in order.
func (f form) all(name string) []string {
	var out []string
	for _, kv := range f {
		if kv.name == name {
			out = append(out, kv.value)
		}
	}
	return out
}
