package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestSupportedAlgs(t *testing.T) {
	t.Parallel()
	want := []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	got := SupportedAlgs()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SupportedAlgs() = %v", got)
	}
	if len(algs) != len(want) {
		t.Fatalf("algs has %d entries, SupportedAlgs %d", len(algs), len(want))
	}
	for _, a := range got {
		if _, err := lookupAlg(a); err != nil {
			t.Errorf("lookupAlg(%s): %v", a, err)
		}
	}
	got[0] = "none"
	if slices.Contains(SupportedAlgs(), "none") {
		t.Fatal("SupportedAlgs returns a shared slice")
	}
}

func TestParseVerificationKey(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	rsaPKCS1Pub := pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey))
	rsaPKCS1Priv := pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.rsa))
	ecSEC1, err := x509.MarshalECPrivateKey(k.ec256)
	if err != nil {
		t.Fatal(err)
	}
	ecParamsThenKey := append(pemBlock("EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}), pemBlock("EC PRIVATE KEY", ecSEC1)...)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}})
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		alg      string
		material []byte
		want     any // expected key; nil when an error is expected
		wantErr  string
	}{
		{name: "HS256 secret", alg: "HS256", material: []byte(secret), want: []byte(secret)},
		{name: "HS512 secret", alg: "HS512", material: []byte("s"), want: []byte("s")},
		{name: "empty secret", alg: "HS256", material: nil, wantErr: "HS256 needs a non-empty secret"},
		{name: "PEM as HMAC secret", alg: "HS256", material: pkixPEM(t, &k.rsa.PublicKey), wantErr: "HS256 needs a shared secret"},
		{name: "RSA PUBLIC KEY (PKIX)", alg: "RS256", material: pkixPEM(t, &k.rsa.PublicKey), want: &k.rsa.PublicKey},
		{name: "RSA PUBLIC KEY (PKCS#1)", alg: "PS384", material: rsaPKCS1Pub, want: &k.rsa.PublicKey},
		{name: "RSA CERTIFICATE", alg: "RS512", material: pemBlock("CERTIFICATE", k.rsaCert), want: &k.rsa.PublicKey},
		{name: "RSA PRIVATE KEY (PKCS#1)", alg: "RS256", material: rsaPKCS1Priv, want: &k.rsa.PublicKey},
		{name: "RSA PRIVATE KEY (PKCS#8)", alg: "PS256", material: pkcs8PEM(t, k.rsa), want: &k.rsa.PublicKey},
		{name: "EC PUBLIC KEY", alg: "ES256", material: pkixPEM(t, &k.ec256.PublicKey), want: &k.ec256.PublicKey},
		{name: "EC PRIVATE KEY (SEC1) after EC PARAMETERS", alg: "ES256", material: ecParamsThenKey, want: &k.ec256.PublicKey},
		{name: "EC P-384", alg: "ES384", material: pkcs8PEM(t, k.ec384), want: &k.ec384.PublicKey},
		{name: "EC P-521", alg: "ES512", material: pkixPEM(t, &k.ec521.PublicKey), want: &k.ec521.PublicKey},
		{name: "Ed25519 public", alg: "EdDSA", material: pkixPEM(t, k.ed.Public()), want: k.ed.Public()},
		{name: "Ed25519 private", alg: "EdDSA", material: pkcs8PEM(t, k.ed), want: k.ed.Public()},
		{name: "RS256 with an EC key", alg: "RS256", material: pkixPEM(t, &k.ec256.PublicKey), wantErr: "RS256 needs a PEM RSA public key: found an ECDSA P-256 key"},
		{name: "ES256 with a P-521 key", alg: "ES256", material: pkixPEM(t, &k.ec521.PublicKey), wantErr: "ES256 needs a PEM ECDSA P-256 public key: found an ECDSA P-521 key"},
		{name: "EdDSA with an RSA key", alg: "EdDSA", material: pkixPEM(t, &k.rsa.PublicKey), wantErr: "EdDSA needs a PEM Ed25519 public key: found an RSA key"},
		{name: "RS256 with a secret", alg: "RS256", material: []byte(secret), wantErr: "RS256 needs a PEM RSA public key: no PEM"},
		{name: "RS256 with a 1024-bit key", alg: "RS256", material: pkixPEM(t, &small.PublicKey), wantErr: "1024 bits"},
		{name: "corrupt PUBLIC KEY", alg: "RS256", material: pemBlock("PUBLIC KEY", []byte{1, 2, 3}), wantErr: "parse PUBLIC KEY"},
		{name: "encrypted PEM", alg: "RS256", material: encrypted, wantErr: "encrypted"},
		{name: "none", alg: "none", material: []byte(secret), wantErr: `"none"`},
		{name: "unknown alg", alg: "RS1", material: []byte(secret), wantErr: "unsupported algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseVerificationKey(tt.alg, tt.material)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !keysEqual(got, tt.want) {
				t.Fatalf("key = %T %v, want %T", got, got, tt.want)
			}
		})
	}
}

func keysEqual(a, b any) bool {
	switch a := a.(type) {
	case []byte:
		b, ok := b.([]byte)
		return ok && string(a) == string(b)
	case interface{ Equal(crypto.PublicKey) bool }:
		return a.Equal(b)
	}
	return false
}

func TestParseSigningKey(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	ecSEC1, err := x509.MarshalECPrivateKey(k.ec384)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		alg      string
		material []byte
		want     any
		wantErr  string
	}{
		{name: "HS384 secret", alg: "HS384", material: []byte(secret), want: []byte(secret)},
		{name: "RSA PKCS#1", alg: "RS256", material: pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.rsa)), want: k.rsa},
		{name: "RSA PKCS#8", alg: "PS512", material: pkcs8PEM(t, k.rsa), want: k.rsa},
		{name: "EC SEC1", alg: "ES384", material: pemBlock("EC PRIVATE KEY", ecSEC1), want: k.ec384},
		{name: "EC PKCS#8", alg: "ES256", material: pkcs8PEM(t, k.ec256), want: k.ec256},
		{name: "Ed25519 PKCS#8", alg: "EdDSA", material: pkcs8PEM(t, k.ed), want: k.ed},
		{name: "public key", alg: "RS256", material: pkixPEM(t, &k.rsa.PublicKey), wantErr: "RS256 needs a PEM RSA private key: found a PUBLIC KEY, but signing needs the private key"},
		{name: "wrong curve", alg: "ES256", material: pemBlock("EC PRIVATE KEY", ecSEC1), wantErr: "ES256 needs a PEM ECDSA P-256 private key: found an ECDSA P-384 key"},
		{name: "wrong type", alg: "EdDSA", material: pkcs8PEM(t, k.ec256), wantErr: "EdDSA needs a PEM Ed25519 private key"},
		{name: "not PEM", alg: "ES256", material: []byte("hello"), wantErr: "no PEM private key"},
		{name: "PEM as secret", alg: "HS256", material: pkcs8PEM(t, k.ec256), wantErr: "HS256 needs a shared secret"},
		{name: "none", alg: "none", material: []byte(secret), wantErr: `"none"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSigningKey(tt.alg, tt.material)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch w := tt.want.(type) {
			case []byte:
				if string(got.([]byte)) != string(w) {
					t.Fatal("secret differs")
				}
			case *rsa.PrivateKey:
				if !w.Equal(got) {
					t.Fatal("RSA key differs")
				}
			case *ecdsa.PrivateKey:
				if !w.Equal(got) {
					t.Fatal("EC key differs")
				}
			case ed25519.PrivateKey:
				if !w.Equal(got) {
					t.Fatal("Ed25519 key differs")
				}
			}
		})
	}
}

func TestParseSecretCopies(t *testing.T) {
	t.Parallel()
	material := []byte("secret")
	key, err := ParseVerificationKey("HS256", material)
	if err != nil {
		t.Fatal(err)
	}
	material[0] = 'X'
	if string(key.([]byte)) != "secret" {
		t.Fatal("the key aliases the caller's buffer")
	}
}
