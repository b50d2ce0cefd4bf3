package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mercurectl/mercurectl/internal/token"
)

// serveKeys is the resolved key material.
type serveKeys struct {
	publisher, subscriber []byte
	// publisherFlag and subscriberFlag name where each key came from, for
	// error messages.
	publisherFlag, subscriberFlag string
	// generated is set when --dev made up the key.
	generated bool
	// devKeyPath is where a generated key is kept for the next start (""
	// when it lives as long as the process), and devKeyWarning why not.
	devKeyPath, devKeyWarning string
}

// readKeys resolves the key flags (@file, @-), and makes up a key for --dev
// when none is given.
func (o *serveOptions) readKeys() (serveKeys, error) {
	var k serveKeys
	read := func(flag, v string) ([]byte, error) {
		if v == "" {
			return nil, nil
		}
		b, err := readSecret(v, o.IO.In)
		if err != nil {
			return nil, usageErrorf("serve: --%s: %w", flag, err)
		}
		return b, nil
	}
	common, err := read("jwt-key", o.JWTKey)
	if err != nil {
		return k, err
	}
	if k.publisher, err = read("publisher-jwt-key", o.PublisherJWTKey); err != nil {
		return k, err
	}
	if k.subscriber, err = read("subscriber-jwt-key", o.SubscriberJWTKey); err != nil {
		return k, err
	}
	k.publisherFlag, k.subscriberFlag = "publisher-jwt-key", "subscriber-jwt-key"
	if k.publisher == nil {
		k.publisher, k.publisherFlag = common, "jwt-key"
	}
	if k.subscriber == nil {
		k.subscriber, k.subscriberFlag = common, "jwt-key"
	}
	if o.Dev && k.publisher == nil && k.subscriber == nil && o.JWKSURL == "" {
		key, path, warning, err := o.devKey() // serve_devkey.go
		if err != nil {
			return k, err
		}
		k.publisher, k.subscriber, k.generated = key, key, true
		k.devKeyPath, k.devKeyWarning = path, warning
	}
	return k, nil
}

// verifiers builds the publisher and subscriber token verifiers; either may
// be nil (nobody can publish; only anonymous subscribers).
func (o *serveOptions) verifiers(ctx context.Context, keys serveKeys, logger *slog.Logger) (pub, sub *token.Verifier, err error) {
	var jwks *token.JWKS
	if o.JWKSURL != "" {
		client, err := o.HTTPClient()
		if err != nil {
			return nil, nil, err
		}
		jwks, err = token.NewJWKS(ctx, o.JWKSURL, client, o.JWKSRefresh, logger.With("component", "jwks"))
		if err != nil {
			return nil, nil, fmt.Errorf("serve: --jwks-url: %w", err)
		}
	}
	build := func(flag string, key []byte) (*token.Verifier, error) {
		if key == nil && jwks == nil {
			return nil, nil
		}
		v, err := token.NewVerifier(token.VerifierConfig{
			Alg: o.JWTAlg, Key: key, JWKS: jwks, Issuers: o.Issuers, Now: o.Now,
		})
		if err != nil {
			if key == nil {
				return nil, usageErrorf("serve: %w", err)
			}
			return nil, usageErrorf("serve: --%s: %w", flag, err)
		}
		return v, nil
	}
	if pub, err = build(keys.publisherFlag, keys.publisher); err != nil {
		return nil, nil, err
	}
	if sub, err = build(keys.subscriberFlag, keys.subscriber); err != nil {
		return nil, nil, err
	}
	return pub, sub, nil
}
