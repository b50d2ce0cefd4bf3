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
		{"publish-topics: C0 control", "a\x01b", true},
		{"publish-id: NUL", "a\x00b", true},
		{"publish-id: CR", "a\rb", true},
		{"publish-id: LF", "a\nb", true},
		{"subscribe-match: tab", "a\tb", true},
		{"subscribe-match: unit separator", "a\x1fb", true},
		{"subscribe-match: DEL", "a\x7fb", true},
		{"subscribe-match: C1 U+0080", "a\u0080b", true},
		{"subscribe-match: C1 NEL U+0085", "a\u0085b", true},
		{"subscribe-match: C1 U+009F", "a\u009fb", true},
		{"subscribe-match: Cf zero-width space", "a\u200bb", true},
		{"subscribe-match: Cf soft hyphen", "a\u00adb", true},
		{"subscribe-match: Cf right-to-left override", "a\u202eb", true},
		{"subscribe-match: Cf byte order mark", "\ufeffa", true},
		{"subscribe-match: Cf language tag", "a\U000E0001", true},
		{"publish-topics: invalid UTF-8", "a\xffb", true},
		{"publish-topics: truncated UTF-8", "a\xc3", true},
		{"publish-topics: UTF-8 encoded surrogate", "a\xed\xa0\x80b", true},
	}
	for _, tt := range tests {
		if got := HasControlOrFormat(tt.s); got != tt.want {
			t.Errorf("%s: HasControlOrFormat(%q) = %v, want %v", tt.name, tt.s, got, tt.want)
		}
	}
}
