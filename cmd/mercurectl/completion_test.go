package main

import (
	"strings"
	"testing"
)

// Shells complete the values of the flags that take one of a fixed set.
func TestFlagValueCompletions(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"subscribe", "-o", ""}, []string{"text", "json", "data", "sse"}},
		{[]string{"replay", "--output", ""}, []string{"text", "json", "data", "sse"}},
		{[]string{"subscribe", "--protocol", ""}, []string{"auto", "7", "8"}},
		{[]string{"publish", "--protocol", ""}, []string{"auto", "7", "8"}},
		{[]string{"subscribe", "--match-type", ""}, []string{"exact", "urlpattern", "template"}},
		{[]string{"token", "mint", "--format", ""}, []string{"legacy", "rfc9068"}},
		{[]string{"token", "mint", "--alg", "ES"}, []string{"ES256", "ES384", "ES512"}},
		{[]string{"token", "verify", "--alg", ""}, []string{"HS256", "RS256", "EdDSA"}},
		{[]string{"serve", "--jwt-alg", ""}, []string{"HS256", "PS512"}},
		{[]string{"serve", "--transport", ""}, []string{"memory", "bolt://", "redis://", "rediss://", "unix://"}},
		{[]string{"serve", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		{[]string{"conformance", "-o", ""}, []string{"text", "json"}},
	} {
		code, out, stderr := runTest(t, nil, append([]string{"__complete"}, tt.args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tt.args, code, stderr)
		}
		var got []string
		for line := range strings.SplitSeq(out, "\n") {
			if line != "" && !strings.HasPrefix(line, ":") {
				value, _, _ := strings.Cut(line, "\t")
				got = append(got, value)
			}
		}
		for _, w := range tt.want {
			if !strings.Contains(","+strings.Join(got, ",")+",", ","+w+",") {
				t.Errorf("%v: completions %q lack %q", tt.args, got, w)
			}
		}
	}
}
