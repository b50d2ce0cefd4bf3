package match

import (
	"unicode"
	"unicode/utf8"
)

// HasControlOrFormat reports whether s contains a C0 control (U+0000 to
// U+001F), DEL, a C1 control (U+0080 to U+009F) or a Unicode Cf (format)
// character such as U+200B or U+FEFF, or is not valid UTF-8. Draft-08 refuses
// such values in matchers, ids, types and topics
// (docs/protocol.md#subscribe-match, #publish-id, #publish-type and
// #publish-topics).
func HasControlOrFormat(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return true
		}
		if r <= 0x9f || unicode.Is(unicode.Cf, r) {
			return true
		}
		i += size
	}
	return false
}
