package match

import "testing"

func TestHasControlOrFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, s string
		want    bool
	}{
		{"empty", "", false},
		{"ASCII IRI", "https://example.com/books/1?x=1#f", false},
		{"space is not a control", "a b", false},
		{"non-ASCII letters", "https://example.com/livres/été/日本", false},
		{"emoji", "topic/🙂", false},
		{"U+00A0 no-break space is not Cf", "a\u00a0b", false},
		{"item 26: C0 control", "a\x01b", true},
		{"item 23: NUL", "a\x00b", true},
		{"item 23: CR", "a\rb", true},
		{"item 23: LF", "a\nb", true},
		{"item 9: tab", "a\tb", true},
		{"item 9: unit separator", "a\x1fb", true},
		{"item 9: DEL", "a\x7fb", true},
		{"item 9: C1 U+0080", "a\u0080b", true},
		{"item 9: C1 NEL U+0085", "a\u0085b", true},
		{"item 9: C1 U+009F", "a\u009fb", true},
		{"item 9: Cf zero-width space", "a\u200bb", true},
		{"item 9: Cf soft hyphen", "a\u00adb", true},
		{"item 9: Cf right-to-left override", "a\u202eb", true},
		{"item 9: Cf byte order mark", "\ufeffa", true},
		{"item 9: Cf language tag", "a\U000E0001", true},
		{"item 26: invalid UTF-8", "a\xffb", true},
		{"item 26: truncated UTF-8", "a\xc3", true},
		{"item 26: UTF-8 encoded surrogate", "a\xed\xa0\x80b", true},
	}
	for _, tt := range tests {
		if got := HasControlOrFormat(tt.s); got != tt.want {
			t.Errorf("%s: HasControlOrFormat(%q) = %v, want %v", tt.name, tt.s, got, tt.want)
		}
	}
}
