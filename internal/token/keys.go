package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// MinRSABits is the smallest RSA modulus accepted for RS* and PS* keys, as
// RFC 7518 section 3.3 requires ("a key of size 2048 bits or larger MUST be
// used").
const MinRSABits = 2048

// keyFamily groups algorithms by the kind of key they need.
type keyFamily int

const (
	familyHMAC keyFamily = iota + 1
	familyRSA            // RS* and PS*
	familyEC
	familyEd25519
)

// algInfo describes one supported JWS algorithm.
type algInfo struct {
	family keyFamily
	curve  elliptic.Curve // ES* only
}

// algs are the supported JWS algorithms. "none" is deliberately absent.
var algs = map[string]algInfo{
	"HS256": {family: familyHMAC},
	"HS384": {family: familyHMAC},
	"HS512": {family: familyHMAC},
	"RS256": {family: familyRSA},
	"RS384": {family: familyRSA},
	"RS512": {family: familyRSA},
	"PS256": {family: familyRSA},
	"PS384": {family: familyRSA},
	"PS512": {family: familyRSA},
	"ES256": {family: familyEC, curve: elliptic.P256()},
	"ES384": {family: familyEC, curve: elliptic.P384()},
	"ES512": {family: familyEC, curve: elliptic.P521()},
	"EdDSA": {family: familyEd25519},
}

// SupportedAlgs returns the JWS algorithms this package signs and verifies, in
// a stable order. "none" is never supported.
func SupportedAlgs() []string {
	return []string{
		"HS256", "HS384", "HS512",
		"RS256", "RS384", "RS512",
		"PS256", "PS384", "PS512",
		"ES256", "ES384", "ES512",
		"EdDSA",
	}
}

// CanonicalAlg returns the supported algorithm that alg names, in any case
// ("hs256" is "HS256"), or an error that lists the supported ones.
func CanonicalAlg(alg string) (string, error) {
	if strings.EqualFold(alg, "none") {
		return "", errors.New(`the "none" algorithm is never accepted`)
	}
	for _, a := range SupportedAlgs() {
		if strings.EqualFold(a, alg) {
			return a, nil
		}
	}
	return "", fmt.Errorf("unsupported algorithm %q (want one of %s)", alg, strings.Join(SupportedAlgs(), ", "))
}

// IsHMAC reports whether alg is one of the HMAC algorithms, whose key is a
// shared secret that can sign as well as verify.
func IsHMAC(alg string) bool { return algs[alg].family == familyHMAC }

// lookupAlg returns what alg needs, or an error naming the supported ones.
func lookupAlg(alg string) (algInfo, error) {
	if alg == "none" {
		return algInfo{}, errors.New(`the "none" algorithm is never accepted`)
	}
	info, ok := algs[alg]
	if !ok {
		return algInfo{}, fmt.Errorf("unsupported algorithm %q (supported: %v)", alg, SupportedAlgs())
	}
	return info, nil
}

// keyDescription names the key an algorithm needs, for error messages.
func (a algInfo) keyDescription() string {
	switch a.family {
	case familyRSA:
		return "RSA"
	case familyEC:
		return "ECDSA " + a.curve.Params().Name
	case familyEd25519:
		return "Ed25519"
	default:
		return "HMAC"
	}
}

// ParseVerificationKey turns key material into the key that verifies alg
// signatures: the secret bytes for HS*, an *rsa.PublicKey for RS*/PS*, an
// *ecdsa.PublicKey on the matching curve for ES*, an ed25519.PublicKey for
// EdDSA.
//
// For the asymmetric algorithms, material is PEM: a PUBLIC KEY (PKIX), an RSA
// PUBLIC KEY (PKCS#1), a CERTIFICATE, or a private key (PKCS#1, PKCS#8, SEC1),
// of which the public half is used. The first recognised PEM block is used;
// others (such as EC PARAMETERS) are skipped.
//
// An HMAC secret that is itself a PEM block is refused: verifying HS256 with a
// public key as the secret would let anyone who knows that public key forge
// tokens (the classic algorithm-confusion attack).
func ParseVerificationKey(alg string, material []byte) (any, error) {
	info, err := lookupAlg(alg)
	if err != nil {
		return nil, err
	}
	if info.family == familyHMAC {
		return parseSecret(alg, material)
	}
	pub, err := parsePEMPublicKey(material)
	if err != nil {
		return nil, fmt.Errorf("%s needs a PEM %s public key: %w", alg, info.keyDescription(), err)
	}
	if err := checkPublicKey(info, pub); err != nil {
		return nil, fmt.Errorf("%s needs a PEM %s public key: %w", alg, info.keyDescription(), err)
	}
	return pub, nil
}

// ParseSigningKey turns key material into the key that signs with alg: the
// secret bytes for HS*, or the PEM private key (PKCS#1, PKCS#8 or SEC1) for the
// asymmetric algorithms: *rsa.PrivateKey, *ecdsa.PrivateKey or
// ed25519.PrivateKey.
func ParseSigningKey(alg string, material []byte) (any, error) {
	info, err := lookupAlg(alg)
	if err != nil {
		return nil, err
	}
	if info.family == familyHMAC {
		return parseSecret(alg, material)
	}
	priv, err := parsePEMPrivateKey(material)
	if err != nil {
		return nil, fmt.Errorf("%s needs a PEM %s private key: %w", alg, info.keyDescription(), err)
	}
	if err := checkPublicKey(info, priv.Public()); err != nil {
		return nil, fmt.Errorf("%s needs a PEM %s private key: %w", alg, info.keyDescription(), err)
	}
	return priv, nil
}

// parseSecret validates an HMAC secret and returns a private copy of it.
func parseSecret(alg string, material []byte) ([]byte, error) {
	if len(material) == 0 {
		return nil, fmt.Errorf("%s needs a non-empty secret", alg)
	}
	if block, _ := pem.Decode(material); block != nil {
		return nil, fmt.Errorf("%s needs a shared secret, but the key is a PEM %s; choose the algorithm that matches the key (RS256, ES256, EdDSA, ...)", alg, block.Type)
	}
	return bytes.Clone(material), nil
}

// parsePEMPublicKey returns the public key of the first usable PEM block.
func parsePEMPublicKey(material []byte) (crypto.PublicKey, error) {
	rest := material
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM public key, certificate or private key found")
		}
		if _, encrypted := block.Headers["Proc-Type"]; encrypted {
			return nil, errors.New("encrypted PEM blocks are not supported")
		}
		switch block.Type {
		case "PUBLIC KEY":
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse PUBLIC KEY: %w", err)
			}
			return pub, nil
		case "RSA PUBLIC KEY":
			pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse RSA PUBLIC KEY: %w", err)
			}
			return pub, nil
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse CERTIFICATE: %w", err)
			}
			return cert.PublicKey, nil
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			priv, err := parsePrivateBlock(block)
			if err != nil {
				return nil, err
			}
			return priv.Public(), nil
		}
	}
}

// parsePEMPrivateKey returns the private key of the first usable PEM block.
func parsePEMPrivateKey(material []byte) (crypto.Signer, error) {
	rest := material
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key found")
		}
		if _, encrypted := block.Headers["Proc-Type"]; encrypted {
			return nil, errors.New("encrypted PEM blocks are not supported")
		}
		switch block.Type {
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			return parsePrivateBlock(block)
		case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
			return nil, fmt.Errorf("found a %s, but signing needs the private key", block.Type)
		}
	}
}

// parsePrivateBlock parses one PKCS#8, PKCS#1 or SEC1 private key block.
func parsePrivateBlock(block *pem.Block) (crypto.Signer, error) {
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse RSA PRIVATE KEY: %w", err)
		}
		return k, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse EC PRIVATE KEY: %w", err)
		}
		return k, nil
	default:
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PRIVATE KEY: %w", err)
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("unsupported private key type %T", k)
		}
	}
}

// checkPublicKey reports whether pub is the kind of key alg needs.
func checkPublicKey(info algInfo, pub crypto.PublicKey) error {
	switch info.family {
	case familyRSA:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("found %s", describeKey(pub))
		}
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("the RSA key has %d bits, fewer than the %d required", k.N.BitLen(), MinRSABits)
		}
	case familyEC:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != info.curve {
			return fmt.Errorf("found %s", describeKey(pub))
		}
	case familyEd25519:
		if _, ok := pub.(ed25519.PublicKey); !ok {
			return fmt.Errorf("found %s", describeKey(pub))
		}
	default:
		return errors.New("not an asymmetric algorithm")
	}
	return nil
}

// describeKey names a public key for error messages.
func describeKey(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "an RSA key"
	case *ecdsa.PublicKey:
		return "an ECDSA " + k.Curve.Params().Name + " key"
	case ed25519.PublicKey:
		return "an Ed25519 key"
	default:
		return fmt.Sprintf("a key of type %T", pub)
	}
}
