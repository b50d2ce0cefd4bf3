package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/token"
)

func TestNewTokenMintCmd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		env      envMap
		want     tokenMintOptions
		wantCode int
		wantErr  string
	}{
		{
			name: "defaults",
			args: []string{"--key", "k"},
			want: tokenMintOptions{Key: "k", Alg: "HS256", TTL: time.Hour, Format: "legacy"},
		},
		{
			name: "every flag",
			args: []string{"--key", "@k.pem", "--alg", "es256", "--kid", "k1", "--publish", "a", "--publish", "b", "--subscribe", "*",
				"--payload", `{"u":1}`, "--ttl", "10m", "--format", "RFC9068", "--issuer", "i", "--audience", "https://hub", "--subject", "s"},
			want: tokenMintOptions{Key: "@k.pem", Alg: "ES256", KeyID: "k1", Publish: []string{"a", "b"}, Subscribe: []string{"*"},
				Payload: `{"u":1}`, TTL: 10 * time.Minute, Format: "rfc9068", Issuer: "i", Audience: "https://hub", Subject: "s"},
		},
		{
			name: "MERCURE_JWT_KEY",
			env:  envMap{"MERCURE_JWT_KEY": "env-key", "MERCURE_JWT_SECRET": "env-secret"},
			want: tokenMintOptions{Key: "env-key", Alg: "HS256", TTL: time.Hour, Format: "legacy"},
		},
		{
			name: "MERCURE_JWT_SECRET as fallback",
			env:  envMap{"MERCURE_JWT_SECRET": "env-secret"},
			want: tokenMintOptions{Key: "env-secret", Alg: "HS256", TTL: time.Hour, Format: "legacy"},
		},
		{
			name: "--key wins over the environment",
			args: []string{"--key", "flag"},
			env:  envMap{"MERCURE_JWT_KEY": "env-key"},
			want: tokenMintOptions{Key: "flag", Alg: "HS256", TTL: time.Hour, Format: "legacy"},
		},
		{name: "legacy without exp", args: []string{"--key", "k", "--ttl", "0"}, want: tokenMintOptions{Key: "k", Alg: "HS256", Format: "legacy"}},
		{name: "no key", wantCode: 2, wantErr: "no key: pass --key, or set MERCURE_JWT_KEY or MERCURE_JWT_SECRET"},
		{name: "alg none", args: []string{"--key", "k", "--alg", "none"}, wantCode: 2, wantErr: "never accepted"},
		{name: "unknown format", args: []string{"--key", "k", "--format", "jwt"}, wantCode: 2, wantErr: "want legacy or rfc9068"},
		{name: "negative ttl", args: []string{"--key", "k", "--ttl", "-1h"}, wantCode: 2, wantErr: "must not be negative"},
		{name: "rfc9068 without exp", args: []string{"--key", "k", "--format", "rfc9068", "--audience", "a", "--ttl", "0"}, wantCode: 2, wantErr: "must expire"},
		{name: "rfc9068 without audience", args: []string{"--key", "k", "--format", "rfc9068"}, wantCode: 2, wantErr: "needs --audience"},
		{name: "rfc9068 payload not an object", args: []string{"--key", "k", "--format", "rfc9068", "--audience", "a", "--payload", "[1]"}, wantCode: 2, wantErr: "JSON object"},
		{name: "bad payload", args: []string{"--key", "k", "--payload", "{nope"}, wantCode: 2, wantErr: "not valid JSON"},
		{name: "empty selector", args: []string{"--key", "k", "--publish", ""}, wantCode: 2, wantErr: "selector is empty"},
		{name: "bad ttl", args: []string{"--key", "k", "--ttl", "soon"}, wantCode: 2, wantErr: "invalid argument"},
		{name: "argument", args: []string{"--key", "k", "extra"}, wantCode: 2, wantErr: "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, _ := newTestFactory(tt.env)
			var got *tokenMintOptions
			err := execCmd(t, f, newTokenMintCmd(f, func(o *tokenMintOptions) error { got = o; return nil }), tt.args...)
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit code %d (err %v), want %d", code, err, tt.wantCode)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			got.IO, got.Now = nil, nil
			if got.Key != tt.want.Key || got.Alg != tt.want.Alg || got.KeyID != tt.want.KeyID || got.Payload != tt.want.Payload ||
				got.TTL != tt.want.TTL || got.Format != tt.want.Format || got.Issuer != tt.want.Issuer ||
				got.Audience != tt.want.Audience || got.Subject != tt.want.Subject ||
				!slices.Equal(got.Publish, tt.want.Publish) || !slices.Equal(got.Subscribe, tt.want.Subscribe) {
				t.Fatalf("options = %+v\nwant      %+v", *got, tt.want)
			}
		})
	}
}

// ecKey writes a P-256 key pair as PEM files and returns their paths.
func ecKey(t *testing.T) (privPath, pubPath string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	privPath, pubPath = filepath.Join(dir, "priv.pem"), filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		t.Fatal(err)
	}
	return privPath, pubPath
}

func TestRunTokenMint(t *testing.T) {
	t.Parallel()
	privPath, pubPath := ecKey(t)
	pub, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		opts   tokenMintOptions
		stdin  string
		verify token.VerifierConfig
		aud    string
		check  func(t *testing.T, header, claims map[string]any, c *token.Claims)
	}{
		{
			name:   "legacy",
			opts:   tokenMintOptions{Key: testKey, Alg: "HS256", Publish: []string{"https://example.com/books/{id}"}, Subscribe: []string{"*"}, Payload: `{"user":42}`, TTL: time.Hour, Format: "legacy"},
			verify: token.VerifierConfig{Alg: "HS256", Key: []byte(testKey)},
			check: func(t *testing.T, header, claims map[string]any, c *token.Claims) {
				m, _ := claims["mercure"].(map[string]any)
				if header["typ"] != "JWT" || m == nil || m["payload"] == nil {
					t.Errorf("legacy shape: header %v claims %v", header, claims)
				}
				if exp := c.Expiry; !exp.Equal(fixedNow.Add(time.Hour)) {
					t.Errorf("exp = %v, want now+1h", exp)
				}
				if c.Format != token.FormatLegacy || c.Publish[0].Match != "https://example.com/books/{id}" || c.Subscribe[0].Match != "*" {
					t.Errorf("claims = %+v", c)
				}
			},
		},
		{
			name:   "legacy without exp, key from stdin",
			opts:   tokenMintOptions{Key: "@-", Alg: "HS256", Subscribe: []string{"*"}, Format: "legacy"},
			stdin:  testKey + "\n",
			verify: token.VerifierConfig{Alg: "HS256", Key: []byte(testKey)},
			check: func(t *testing.T, _, claims map[string]any, c *token.Claims) {
				if _, ok := claims["exp"]; ok || !c.Expiry.IsZero() {
					t.Errorf("--ttl 0 wrote exp: %v", claims)
				}
			},
		},
		{
			name: "rfc9068 with an EC key file",
			opts: tokenMintOptions{Key: "@" + privPath, Alg: "ES256", Publish: []string{"https://example.com/books/:id"}, Subscribe: []string{"https://example.com/books/1"},
				TTL: 10 * time.Minute, Format: "rfc9068", Audience: "https://hub.example/.well-known/mercure"},
			verify: token.VerifierConfig{Alg: "ES256", Key: pub, Issuers: []string{"mercurectl"}},
			aud:    "https://hub.example/.well-known/mercure",
			check: func(t *testing.T, header, claims map[string]any, c *token.Claims) {
				if header["typ"] != "at+jwt" || header["alg"] != "ES256" {
					t.Errorf("header = %v", header)
				}
				for _, k := range []string{"iss", "aud", "exp", "iat", "jti", "sub", "client_id", "authorization_details"} {
					if _, ok := claims[k]; !ok {
						t.Errorf("access token lacks %q: %v", k, claims)
					}
				}
				if c.Format != token.FormatAccessToken || c.Issuer != "mercurectl" || c.ClientID != "mercurectl" || c.Subject != "mercurectl" {
					t.Errorf("claims = %+v", c)
				}
				if len(c.Publish) != 1 || c.Publish[0].Type != match.TypeURLPattern || len(c.Subscribe) != 1 || c.Subscribe[0].Type != match.TypeExact {
					t.Errorf("selectors: publish %+v subscribe %+v", c.Publish, c.Subscribe)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, ts := newTestFactory(nil)
			ts.In.WriteString(tt.stdin)
			o := tt.opts
			o.IO, o.Now = f.IO, f.Now
			if err := runTokenMint(&o); err != nil {
				t.Fatal(err)
			}
			out := ts.Out.String()
			if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
				t.Fatalf("stdout = %q, want one line", out)
			}
			raw := strings.TrimSpace(out)
			hb, cb, err := token.Inspect(raw)
			if err != nil {
				t.Fatal(err)
			}
			var header, claims map[string]any
			if err := json.Unmarshal(hb, &header); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(cb, &claims); err != nil {
				t.Fatal(err)
			}
			tt.verify.Now = f.Now
			v, err := token.NewVerifier(tt.verify)
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(raw, tt.aud)
			if err != nil {
				t.Fatalf("the minted token does not verify: %v", err)
			}
			tt.check(t, header, claims, c)
		})
	}
}

func TestRunTokenMintBadKey(t *testing.T) {
	t.Parallel()
	f, ts := newTestFactory(nil)
	o := tokenMintOptions{IO: f.IO, Now: f.Now, Key: "not a PEM key", Alg: "RS256", Format: "legacy", TTL: time.Hour}
	err := runTokenMint(&o)
	if exitCode(err) != exitUsage {
		t.Fatalf("err = %v (exit %d), want a usage error", err, exitCode(err))
	}
	if ts.Out.String() != "" {
		t.Errorf("stdout = %q after a failure", ts.Out.String())
	}
}

func TestRunTokenInspect(t *testing.T) {
	t.Parallel()
	tok, err := token.Mint(token.MintOptions{Key: []byte(testKey), Subscribe: []string{"*"}, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	timed, err := token.Mint(token.MintOptions{Key: []byte(testKey), Subscribe: []string{"*"}, TTL: time.Hour,
		Extra: json.RawMessage(`{"nbf": 1772366400}`), Now: func() time.Time { return fixedNow.Add(-90 * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(tokFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const compact = `{"header":{"alg":"HS256","typ":"JWT"},"claims":{"iat":1772366400,"mercure":{"subscribe":["*"]}}}` + "\n"
	tests := []struct {
		name     string
		arg      string
		stdin    string
		tty      bool
		want     string
		wantTail string // instead of want: how stdout ends
		wantCode int
	}{
		{name: "piped", arg: tok, want: compact},
		{name: "terminal", arg: tok, tty: true, want: "{\n  \"header\": {\n    \"alg\": \"HS256\",\n    \"typ\": \"JWT\"\n  },\n  \"claims\": {\n    \"iat\": 1772366400,\n    \"mercure\": {\n      \"subscribe\": [\n        \"*\"\n      ]\n    }\n  }\n}\n" +
			"\niat  2026-03-01T12:00:00Z  (now)\n"},
		{name: "terminal: dates of iat, nbf and exp", arg: timed, tty: true, wantTail: "\n}\n\n" +
			"iat  2026-03-01T11:58:30Z  (1m30s ago)\nnbf  2026-03-01T12:00:00Z  (now)\nexp  2026-03-01T12:58:30Z  (in 58m30s)\n"},
		{name: "piped: numbers only", arg: timed, wantTail: `"nbf":1772366400}}` + "\n"},
		{name: "file", arg: "@" + tokFile, want: compact},
		{name: "stdin", arg: "@-", stdin: tok + "\n", want: compact},
		{name: "two parts", arg: "abc.def", wantCode: 1},
		{name: "not base64", arg: "a!.b.c", wantCode: 1},
		{name: "not JSON", arg: "YWJj.YWJj.YWJj", wantCode: 1},
		{name: "missing file", arg: "@" + filepath.Join(t.TempDir(), "nope"), wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, ts := newTestFactory(nil)
			f.IO.SetStdoutTTY(tt.tty)
			ts.In.WriteString(tt.stdin)
			err := runTokenInspect(&tokenInspectOptions{IO: f.IO, Now: f.Now, Token: tt.arg})
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit code %d (err %v), want %d", code, err, tt.wantCode)
			}
			if tt.wantTail != "" {
				if !strings.HasSuffix(ts.Out.String(), tt.wantTail) {
					t.Errorf("stdout = %q\nwant it to end with %q", ts.Out.String(), tt.wantTail)
				}
			} else if ts.Out.String() != tt.want {
				t.Errorf("stdout = %q\nwant     %q", ts.Out.String(), tt.want)
			}
		})
	}
}

func TestNewTokenInspectCmd(t *testing.T) {
	t.Parallel()
	f, _ := newTestFactory(nil)
	var got *tokenInspectOptions
	cmd := newTokenInspectCmd(f, func(o *tokenInspectOptions) error { got = o; return nil })
	if err := execCmd(t, f, cmd, "a.b.c"); err != nil || got.Token != "a.b.c" {
		t.Fatalf("inspect a.b.c: %v, %+v", err, got)
	}
	for _, args := range [][]string{nil, {"a", "b"}} {
		cmd := newTokenInspectCmd(f, func(*tokenInspectOptions) error { t.Error("ran"); return nil })
		if err := execCmd(t, f, cmd, args...); exitCode(err) != exitUsage {
			t.Errorf("inspect %q: %v, want a usage error", args, err)
		}
	}
}

func TestNewTokenVerifyCmd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		env      envMap
		want     tokenVerifyOptions
		wantCode int
	}{
		{name: "flags", args: []string{"--key", "k", "--alg", "rs256", "--audience", "a", "--issuer", "i1", "--issuer", "i2", "tok"},
			want: tokenVerifyOptions{Key: "k", Alg: "RS256", Audience: "a", Issuers: []string{"i1", "i2"}, Token: "tok"}},
		{name: "env key", args: []string{"tok"}, env: envMap{"MERCURE_JWT_SECRET": "s"}, want: tokenVerifyOptions{Key: "s", Alg: "HS256", Token: "tok"}},
		{name: "no key", args: []string{"tok"}, wantCode: 2},
		{name: "no token", args: []string{"--key", "k"}, wantCode: 2},
		{name: "two tokens", args: []string{"--key", "k", "a", "b"}, wantCode: 2},
		{name: "both from stdin", args: []string{"--key", "@-", "@-"}, wantCode: 2},
		{name: "alg none", args: []string{"--key", "k", "--alg", "none", "tok"}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, _ := newTestFactory(tt.env)
			var got *tokenVerifyOptions
			err := execCmd(t, f, newTokenVerifyCmd(f, func(o *tokenVerifyOptions) error { got = o; return nil }), tt.args...)
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit code %d (err %v), want %d", code, err, tt.wantCode)
			}
			if tt.wantCode != 0 {
				return
			}
			if got.Key != tt.want.Key || got.Alg != tt.want.Alg || got.Audience != tt.want.Audience ||
				got.Token != tt.want.Token || !slices.Equal(got.Issuers, tt.want.Issuers) {
				t.Fatalf("options = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestRunTokenVerify(t *testing.T) {
	t.Parallel()
	now := func() time.Time { return fixedNow }
	mint := func(o token.MintOptions) string {
		t.Helper()
		o.Now = now
		if o.Key == nil {
			o.Key = []byte(testKey)
		}
		tok, err := token.Mint(o)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	valid := mint(token.MintOptions{Publish: []string{"*"}, TTL: time.Hour})
	// (mint pins the clock to fixedNow; this one is minted two hours earlier.)
	expired := func() string {
		tok, err := token.Mint(token.MintOptions{Key: []byte(testKey), Publish: []string{"*"}, TTL: time.Hour, Now: func() time.Time { return fixedNow.Add(-2 * time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}()
	access := mint(token.MintOptions{Format: token.FormatAccessToken, Subscribe: []string{"*"}, TTL: time.Hour, Audience: "https://hub.example", Issuer: "https://idp.example"})

	tests := []struct {
		name     string
		opts     tokenVerifyOptions
		stdin    string
		tty      bool
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "valid, piped", opts: tokenVerifyOptions{Key: testKey, Alg: "HS256", Token: valid}},
		{name: "valid, terminal", opts: tokenVerifyOptions{Key: testKey, Alg: "HS256", Token: valid}, tty: true, wantOut: "✓ Valid token, legacy (draft-07)\n  expires    2026-03-01T13:00:00Z (in 1h0m0s)\n  publish    *\n"},
		{name: "token from stdin", opts: tokenVerifyOptions{Key: testKey, Alg: "HS256", Token: "@-"}, stdin: valid + "\n"},
		{name: "wrong key", opts: tokenVerifyOptions{Key: "another key of 32 bytes, not ours", Alg: "HS256", Token: valid}, wantCode: 1, wantErr: "invalid token"},
		{name: "expired", opts: tokenVerifyOptions{Key: testKey, Alg: "HS256", Token: expired}, wantCode: 1, wantErr: "expired"},
		{name: "wrong alg", opts: tokenVerifyOptions{Key: testKey, Alg: "HS512", Token: valid}, wantCode: 1, wantErr: "invalid token"},
		{name: "malformed", opts: tokenVerifyOptions{Key: testKey, Alg: "HS256", Token: "a.b"}, wantCode: 1, wantErr: "invalid token"},
		{name: "access token", opts: tokenVerifyOptions{Key: testKey, Alg: "HS256", Token: access, Audience: "https://hub.example", Issuers: []string{"https://idp.example"}}},
		{name: "access token, wrong audience", opts: tokenVerifyOptions{Key: testKey, Alg: "HS256", Token: access, Audience: "https://other.example"}, wantCode: 1, wantErr: "invalid token"},
		{name: "access token, untrusted issuer", opts: tokenVerifyOptions{Key: testKey, Alg: "HS256", Token: access, Issuers: []string{"https://other.example"}}, wantCode: 1, wantErr: "invalid token"},
		{name: "PEM key for HS256", opts: tokenVerifyOptions{Key: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", Alg: "HS256", Token: valid}, wantCode: 2},
		{name: "missing key file", opts: tokenVerifyOptions{Key: "@/nonexistent/key", Alg: "HS256", Token: valid}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, ts := newTestFactory(nil)
			f.IO.SetStdoutTTY(tt.tty)
			ts.In.WriteString(tt.stdin)
			o := tt.opts
			o.IO, o.Now = f.IO, now
			err := runTokenVerify(&o)
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit code %d (err %v), want %d", code, err, tt.wantCode)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if ts.Out.String() != tt.wantOut {
				t.Errorf("stdout = %q, want %q", ts.Out.String(), tt.wantOut)
			}
		})
	}
}
