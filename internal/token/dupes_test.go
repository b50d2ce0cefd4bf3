package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// signRawHeader signs a header given as JSON text, so that it may hold
// what a map cannot (a member twice).
func signRawHeader(tb testing.TB, header, claims string) string {
	tb.Helper()
	b64 := base64.RawURLEncoding
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
	sig, err := jwt.SigningMethodHS256.Sign(input, []byte(secret))
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

func TestVerifyRefusesDuplicateMembers(t *testing.T) {
	t.Parallel()
	detail := `{` + dt + `,"actions":["publish"],"topics":[{"match":"a"}]}`
	tests := []struct {
		name, typ, claims string
	}{
		{"legacy top-level claim", "", `{"mercure":{"publish":[]},"mercure":{"publish":["*"]}}`},
		{"legacy nested member", "", `{"mercure":{"publish":[],"publish":["*"]}}`},
		{"legacy escaped name", "", `{"mercure":{"publish":[],"\u0070ublish":["*"]}}`},
		{"legacy exp twice", "", `{"exp":1,"exp":` + future + `,"mercure":{"publish":["*"]}}`},
		{"access token top-level", "at+jwt", strings.Replace(accessClaims(`[`+detail+`]`), `"sub":"alice"`, `"sub":"alice","aud":"https://other.example"`, 1)},
		{"access token inside a detail", "at+jwt", accessClaims(`[{` + dt + `,"actions":["subscribe"],"actions":["publish"],"topics":[{"match":"a"}]}]`)},
		{"access token inside a topic", "at+jwt", accessClaims(`[{` + dt + `,"actions":["publish"],"topics":[{"match":"a","match":"*"}]}]`)},
		{"inside a payload", "", `{"mercure":{"publish":["*"],"payload":{"u":1,"u":2}}}`},
	}
	v := mustVerifier(t, VerifierConfig{Key: []byte(secret), Issuers: []string{issuer}, Now: fixed(t0)})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Without the duplicate the token is fine, so the refusal is
			// the duplicate's doing.
			_, err := v.Verify(hs256(t, tt.typ, tt.claims), hubAud)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "duplicate member") {
				t.Fatalf("Verify = %v, want a duplicate-member refusal", err)
			}
		})
	}
	t.Run("header", func(t *testing.T) {
		t.Parallel()
		raw := signRawHeader(t, `{"alg":"HS256","typ":"JWT","typ":"at+jwt"}`, `{"mercure":{"publish":["*"]}}`)
		if _, err := v.Verify(raw, hubAud); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "duplicate member") {
			t.Fatalf("Verify = %v, want a duplicate-member refusal", err)
		}
	})
	t.Run("same names in different objects are fine", func(t *testing.T) {
		t.Parallel()
		c := `{"mercure":{"publish":["a"],"subscribe":["a"],"payload":{"publish":1,"x":{"publish":2}}}}`
		if _, err := v.Verify(hs256(t, "", c), hubAud); err != nil {
			t.Fatalf("Verify = %v", err)
		}
	})
}

// FuzzCheckUniqueMembers checks that the check never panics, never refuses
// an object that encoding/json re-encodes (its maps have unique keys), and
// always refuses an object with a member repeated.
func FuzzCheckUniqueMembers(f *testing.F) {
	f.Add(`{"mercure":{"publish":["*"]}}`, "mercure")
	f.Add(`{"a":[{"b":1},{"b":2}],"c":{"d":{"e":null}}}`, "a")
	f.Add(`{}`, `\u0061`)
	f.Add(`[1,{"x":1,"x":2}]`, "x")
	f.Fuzz(func(t *testing.T, doc, name string) {
		_ = checkUniqueMembers([]byte(doc)) // never panics
		var v any
		if json.Unmarshal([]byte(doc), &v) != nil {
			return
		}
		canon, err := json.Marshal(v)
		if err != nil {
			return
		}
		if err := checkUniqueMembers(canon); err != nil {
			t.Fatalf("refused re-encoded %s: %v", canon, err)
		}
		if _, ok := v.(map[string]any); !ok {
			return
		}
		key, err := json.Marshal(name)
		if err != nil {
			return
		}
		body := strings.TrimPrefix(string(canon), "{")
		twice := "{" + string(key) + ":0," + string(key) + ":1"
		if body != "}" {
			twice += ","
		}
		twice += body
		if err := checkUniqueMembers([]byte(twice)); !errors.Is(err, errDuplicateMember) {
			t.Fatalf("accepted %s: %v", twice, err)
		}
	})
}
