package token

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

func TestFormatOfReadsTheHeaderType(t *testing.T) {
	t.Parallel()
	key := []byte("format-of-test-key-0123456789abcdef")
	legacy, err := Mint(MintOptions{Key: key, Publish: []string{"*"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	access, err := Mint(MintOptions{Format: FormatAccessToken, Key: key, Publish: []string{"*"}, TTL: time.Hour, Audience: "https://hub.example/.well-known/mercure"})
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	mimeTyp := b64([]byte(`{"alg":"HS256","typ":"Application/AT+JWT"}`)) + "." + b64([]byte(`{}`)) + ".c2ln"
	numberTyp := b64([]byte(`{"alg":"HS256","typ":7}`)) + "." + b64([]byte(`{}`)) + ".c2ln"
	for _, tt := range []struct {
		name, raw string
		want      Format
	}{
		{"legacy", legacy, FormatLegacy},
		{"access token", access, FormatAccessToken},
		{"media type, any case", mimeTyp, FormatAccessToken},
		{"typ not a string", numberTyp, FormatLegacy},
	} {
		if got, err := FormatOf(tt.raw); err != nil || got != tt.want {
			t.Errorf("%s: FormatOf = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	if _, err := FormatOf("not.a.token"); !errors.Is(err, ErrMalformed) {
		t.Errorf("FormatOf(malformed) = %v, want ErrMalformed", err)
	}
}
