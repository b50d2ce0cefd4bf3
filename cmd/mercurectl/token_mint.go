package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mercurectl/mercurectl/internal/token"
)

// Token formats of --format.
const (
	formatLegacy  = "legacy"
	formatRFC9068 = "rfc9068"
)

// defaultMintTTL is the lifetime of minted tokens unless --ttl says otherwise.
const defaultMintTTL = time.Hour

// tokenMintOptions are the inputs of `mercurectl token mint`.
type tokenMintOptions struct {
	IO  *IOStreams
	Now func() time.Time

	Key       string
	Alg       string
	KeyID     string
	Publish   []string
	Subscribe []string
	Payload   string
	TTL       time.Duration
	Format    string
	Issuer    string
	Audience  string
	Subject   string
}

func newTokenMintCmd(f *factory, runF func(*tokenMintOptions) error) *cobra.Command {
	opts := &tokenMintOptions{IO: f.IO, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "mint --key <key> [flags]",
		Short: "Mint a signed token",
		Long: `Mint a signed token granting publish and subscribe rights on topic selectors,
and print it on stdout.

The default format, legacy, carries a draft-07 "mercure" claim
({"publish": [...], "subscribe": [...], "payload": ...}) and works with every
hub. --format rfc9068 mints a draft-08 RFC 9068 access token (header typ
at+jwt) with iss, aud (--audience, required), exp, iat, jti, sub and client_id,
and one authorization_details entry of type
https://mercure.rocks/authorization-detail per action; selectors with a path
segment starting with ':' or '*' are sent as URL patterns, others as exact
topics.

The token expires after --ttl (1h by default); --ttl 0 mints a token without
exp, which only the legacy format allows.`,
		Example: `$ mercurectl token mint --key @secret.txt --publish 'https://example.com/books/{id}'
$ MERCURE_JWT_KEY=s3cr3t mercurectl token mint --subscribe '*' --ttl 24h
$ mercurectl token mint --key @private.pem --alg ES256 --format rfc9068 --audience https://hub.example.com/.well-known/mercure --subscribe 'https://example.com/books/:id'
$ mercurectl token mint --key @- --subscribe https://example.com/inbox/42 --payload '{"user":42}' < secret.txt`,
		Args: noArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runTokenMint(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Key, "key", "", "signing `KEY`: HMAC secret or PEM private key (@file, @- for stdin)")
	bindEnv(fl, "key", "MERCURE_JWT_KEY", "MERCURE_JWT_SECRET")
	fl.StringVar(&opts.Alg, "alg", "HS256", "signing `ALG`: "+strings.Join(token.SupportedAlgs(), ", "))
	fl.StringVar(&opts.KeyID, "kid", "", "key `ID` written in the header, for hubs that verify against a JWKS")
	fl.StringArrayVar(&opts.Publish, "publish", nil, "grant publishing on `SELECTOR` (repeatable; * for every topic)")
	fl.StringArrayVar(&opts.Subscribe, "subscribe", nil, "grant subscribing to `SELECTOR` (repeatable; * for every topic)")
	fl.StringVar(&opts.Payload, "payload", "", "subscriber payload, as `JSON` (an object for rfc9068)")
	fl.DurationVar(&opts.TTL, "ttl", defaultMintTTL, "lifetime of the token; 0 means no exp (legacy only)")
	fl.StringVar(&opts.Format, "format", formatLegacy, "token `FORMAT`: legacy (draft-07 mercure claim) or rfc9068 (draft-08 access token)")
	fl.StringVar(&opts.Issuer, "issuer", "", "the iss claim (`ISS`); rfc9068 default: "+token.DefaultMintIdentity)
	fl.StringVar(&opts.Audience, "audience", "", "the aud claim (`AUD`), such as the hub's resource identifier; required for rfc9068")
	fl.StringVar(&opts.Subject, "subject", "", "the sub claim (`SUB`); rfc9068 default: "+token.DefaultMintIdentity)
	return cmd
}

// validate checks the flags before any key is read.
func (o *tokenMintOptions) validate() error {
	if o.Key == "" {
		return usageErrorf("token mint: no key: pass --key, or set MERCURE_JWT_KEY or MERCURE_JWT_SECRET")
	}
	alg, err := token.CanonicalAlg(o.Alg)
	if err != nil {
		return usageErrorf("token mint: --alg: %w", err)
	}
	o.Alg = alg
	o.Format = strings.ToLower(o.Format)
	if o.Format != formatLegacy && o.Format != formatRFC9068 {
		return usageErrorf("token mint: --format %q: want legacy or rfc9068", o.Format)
	}
	if o.TTL < 0 {
		return usageErrorf("token mint: --ttl must not be negative")
	}
	if slices.Contains(o.Publish, "") || slices.Contains(o.Subscribe, "") {
		return usageErrorf("token mint: a topic selector is empty")
	}
	if o.Payload != "" && !json.Valid([]byte(o.Payload)) {
		return usageErrorf("token mint: --payload is not valid JSON")
	}
	if o.Format == formatRFC9068 {
		if o.TTL == 0 {
			return usageErrorf("token mint: --ttl 0 (no exp) is for legacy tokens only: RFC 9068 access tokens must expire")
		}
		if o.Audience == "" {
			return usageErrorf("token mint: --format rfc9068 needs --audience (the hub's resource identifier, such as https://hub.example.com/.well-known/mercure)")
		}
		if o.Payload != "" && !strings.HasPrefix(strings.TrimSpace(o.Payload), "{") {
			return usageErrorf("token mint: --payload must be a JSON object in an rfc9068 token")
		}
	}
	return nil
}

func runTokenMint(opts *tokenMintOptions) error {
	key, err := readSecret(opts.Key, opts.IO.In)
	if err != nil {
		return usageErrorf("token mint: --key: %w", err)
	}
	mo := token.MintOptions{
		Format:    token.FormatLegacy,
		Alg:       opts.Alg,
		Key:       key,
		KeyID:     opts.KeyID,
		Publish:   opts.Publish,
		Subscribe: opts.Subscribe,
		TTL:       opts.TTL,
		Issuer:    opts.Issuer,
		Audience:  opts.Audience,
		Subject:   opts.Subject,
		Now:       opts.Now,
	}
	if opts.Format == formatRFC9068 {
		mo.Format = token.FormatAccessToken
	}
	if opts.Payload != "" {
		mo.Payload = json.RawMessage(opts.Payload)
	}
	tok, err := token.Mint(mo)
	if err != nil {
		// Every failure here comes from the options: a key that does not
		// suit the algorithm, too many selectors.
		return &usageError{err: err} // "mint token: ..."
	}
	_, err = fmt.Fprintln(opts.IO.Out, tok)
	return err
}
