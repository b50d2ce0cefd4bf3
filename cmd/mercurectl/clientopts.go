package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mercurectl/mercurectl/internal/client"
	"github.com/mercurectl/mercurectl/internal/token"
	"github.com/mercurectl/mercurectl/internal/version"
)

// The connection and credential flags shared by publish, subscribe and
// replay (docs/cli.md#publish), and what they resolve to: a
// client.Client with a ready token or a token minter.

// defaultHubURL is the hub of `mercurectl serve` with its default --addr, so
// that a development hub needs no --hub.
const defaultHubURL = "http://localhost:3000" + client.HubPath

// mintedTokenTTL is the lifetime of the tokens minted on the fly with
// --jwt-key. The client mints a fresh token for every request and every
// (re)connection of a subscription, so the token only has to outlive one
// connection's set-up; the margin covers clock skew between this machine and
// the hub. A hub closes a subscription when its token expires; the
// subscription then resumes, with a new token, without loss.
const mintedTokenTTL = 15 * time.Minute

// connectionOptions are the flags that say which hub to talk to, with which
// credentials and in which protocol generation.
type connectionOptions struct {
	Hub      string
	JWT      string
	JWTKey   string
	JWTAlg   string
	Issuer   string
	Audience string
	Protocol string

	// Set by validate.
	protocol client.Protocol
}

// addConnectionFlags adds the connection flags to fl, binding them to their
// environment variables. action is what a minted token grants: publish or
// subscribe (it only changes the help text).
func addConnectionFlags(fl *pflag.FlagSet, o *connectionOptions, action string) {
	fl.StringVar(&o.Hub, "hub", defaultHubURL, "hub `URL`; a URL with an empty path gets "+client.HubPath)
	bindEnv(fl, "hub", "MERCURE_URL")
	fl.StringVar(&o.JWT, "jwt", "", "a ready `TOKEN` (@file, @- for stdin); wins over --jwt-key")
	bindEnv(fl, "jwt", "MERCURE_JWT")
	fl.StringVar(&o.JWTKey, "jwt-key", "", "mint a short-lived "+action+" token for exactly this command's topics, signed with `KEY`: HMAC secret or PEM private key (@file, @- for stdin)")
	bindEnv(fl, "jwt-key", "MERCURE_JWT_KEY", "MERCURE_JWT_SECRET")
	fl.StringVar(&o.JWTAlg, "jwt-alg", "HS256", "signing `ALG` of tokens minted with --jwt-key: "+strings.Join(token.SupportedAlgs(), ", "))
	bindEnv(fl, "jwt-alg", "MERCURE_JWT_ALG")
	fl.StringVar(&o.Issuer, "issuer", "", "the iss claim (`ISS`) of draft-08 tokens minted with --jwt-key; default "+token.DefaultMintIdentity+" (of a list, the first)")
	bindEnv(fl, "issuer", "MERCURE_ISSUER")
	fl.StringVar(&o.Audience, "audience", "", "the aud claim (`AUD`) of draft-08 tokens minted with --jwt-key; default: the resource identifier the hub advertises")
	bindEnv(fl, "audience", "MERCURE_AUDIENCE")
	fl.StringVar(&o.Protocol, "protocol", "auto", "protocol generation (`MODE`): auto, 7 (draft-07) or 8 (draft-08); auto asks the hub, or follows the shape of --jwt")
	bindEnv(fl, "protocol", "MERCURE_PROTOCOL")
}

// validate checks the flags that need neither files nor the network. cmd
// names the command in messages.
func (o *connectionOptions) validate(cmd string) error {
	if _, err := client.ParseHubURL(o.Hub); err != nil {
		return usageErrorf("%s: --hub: %s", cmd, invalidRequestReason(err))
	}
	p, err := client.ParseProtocol(o.Protocol)
	if err != nil {
		return usageErrorf("%s: --protocol %q: want auto, 7 or 8", cmd, o.Protocol)
	}
	o.protocol = p
	if o.JWT == "" && o.JWTKey != "" {
		alg, err := token.CanonicalAlg(o.JWTAlg)
		if err != nil {
			return usageErrorf("%s: --jwt-alg: %w", cmd, err)
		}
		o.JWTAlg = alg
	}
	return nil
}

// invalidRequestReason returns the message of an error wrapping
// client.ErrInvalidRequest without its "invalid request: " prefix.
func invalidRequestReason(err error) string {
	return strings.TrimPrefix(err.Error(), client.ErrInvalidRequest.Error()+": ")
}

// hasCredentials reports whether a token or a key was given.
func (o *connectionOptions) hasCredentials() bool { return o.JWT != "" || o.JWTKey != "" }

// readsStdin reports whether resolving the credentials reads stdin.
func (o *connectionOptions) readsStdin() bool {
	if o.JWT != "" {
		return o.JWT == "@-"
	}
	return o.JWTKey == "@-"
}

// clientDeps are the factory's dependencies that newClient needs.
type clientDeps struct {
	In         io.Reader
	HTTPClient func() (*http.Client, error)
	Now        func() time.Time
	Logger     func() *slog.Logger
}

// newClient reads the credentials and returns a client for the hub:
//
//   - --jwt (a secret: @file and @- work) is sent as is. In auto mode its
//     shape picks the protocol generation: an RFC 9068 access token (header
//     typ at+jwt) means draft-08, any other token draft-07, since a hub
//     refuses a draft-07 token on a draft-08 subscription and `serve --dev`
//     prints a draft-07 token. The client library's auto mode only looks
//     at the hub, so this is decided here.
//   - --jwt-key mints a token for each request, granting the request's
//     action on exactly its topics, in the format of the generation spoken
//     (a legacy token for draft-07, an RFC 9068 access token for draft-08,
//     whose aud defaults to the resource the hub advertises).
//   - neither: anonymous requests.
func (o *connectionOptions) newClient(cmd string, deps clientDeps) (*client.Client, error) {
	httpc, err := deps.HTTPClient()
	if err != nil {
		return nil, err
	}
	co := client.Options{
		HubURL:     o.Hub,
		HTTPClient: httpc,
		Protocol:   o.protocol,
		UserAgent:  "mercurectl/" + version.Get().Version,
	}
	if deps.Logger != nil {
		co.Logger = deps.Logger()
	}
	switch {
	case o.JWT != "":
		tok, err := readSecret(o.JWT, deps.In)
		if err != nil {
			return nil, usageErrorf("%s: --jwt: %w", cmd, err)
		}
		co.Token = strings.TrimSpace(string(tok))
		if co.Protocol == client.ProtocolAuto {
			co.Protocol = protocolOfToken(co.Token)
		}
	case o.JWTKey != "":
		key, err := readSecret(o.JWTKey, deps.In)
		if err != nil {
			return nil, usageErrorf("%s: --jwt-key: %w", cmd, err)
		}
		if _, err := token.ParseSigningKey(o.JWTAlg, key); err != nil {
			return nil, usageErrorf("%s: --jwt-key: %w", cmd, err)
		}
		co.TokenFunc = o.minter(cmd, key, deps.Now)
	}
	c, err := client.New(co)
	if err != nil {
		return nil, clientError(cmd, err)
	}
	return c, nil
}

// protocolOfToken returns the generation a ready token is meant for:
// Protocol08 for an RFC 9068 access token (header typ "at+jwt" or
// "application/at+jwt", RFC 9068 section 2.1), Protocol07 for any other
// well-formed token, and ProtocolAuto (ask the hub) for a malformed one,
// which the hub will refuse anyway.
func protocolOfToken(tok string) client.Protocol {
	switch f, err := token.FormatOf(tok); {
	case err != nil:
		return client.ProtocolAuto
	case f == token.FormatAccessToken:
		return client.Protocol08
	default:
		return client.Protocol07
	}
}

// minter returns the client's TokenFunc for --jwt-key.
func (o *connectionOptions) minter(cmd string, key []byte, now func() time.Time) func(context.Context, client.TokenRequest) (string, error) {
	issuer := ""
	if items := splitList(o.Issuer); len(items) > 0 {
		issuer = items[0] // MERCURE_ISSUER may list the issuers a hub trusts
	}
	return func(_ context.Context, req client.TokenRequest) (string, error) {
		topics := make([]string, len(req.Selectors))
		types := make(map[string]string, len(req.Selectors))
		for i, s := range req.Selectors {
			topics[i] = s.Value
			types[s.Value] = s.MatchType // the type actually sent, so the grant matches it
		}
		mo := token.MintOptions{Alg: o.JWTAlg, Key: key, TTL: mintedTokenTTL, Now: now, MatchTypes: types}
		if req.Action == client.ActionPublish {
			mo.Publish = topics
		} else {
			mo.Subscribe = topics
		}
		if req.Protocol == client.Protocol08 {
			mo.Format = token.FormatAccessToken
			mo.Issuer = issuer
			mo.Audience = o.Audience
			if mo.Audience == "" && req.Metadata != nil {
				mo.Audience = req.Metadata.Resource
			}
			if mo.Audience == "" {
				return "", usageErrorf("%s: a draft-08 token needs an audience and the hub advertises none: pass --audience", cmd)
			}
		}
		tok, err := token.Mint(mo)
		if err != nil {
			return "", &usageError{err: fmt.Errorf("%s: --jwt-key: %w", cmd, err)}
		}
		return tok, nil
	}
}

// clientError gives an error of the client library the exit code it
// deserves (see errors.go): 69 unreachable, 77 credentials refused, 2 for a
// request the protocol cannot express, 1 for anything else. The message is
// prefixed with cmd unless it already starts with it.
func clientError(cmd string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*usageError](err); ok {
		return err // already says which command and flag
	}
	msg := err.Error()
	if errors.Is(err, client.ErrInvalidRequest) {
		msg = invalidRequestReason(err)
	}
	if !strings.HasPrefix(msg, cmd+": ") {
		msg = cmd + ": " + msg
	}
	err = &messageError{msg: msg, err: err}
	switch {
	case errors.Is(err, client.ErrUnreachable):
		return newUnreachableError(err)
	case errors.Is(err, client.ErrRefused):
		return newCredentialsError(err)
	case errors.Is(err, client.ErrInvalidRequest):
		return &usageError{err: err}
	default:
		return err
	}
}

// explain is clientError, with a hint when the hub refused the
// credentials: none were given, or the token was signed with another key
// (typically a token exported from the banner of a `serve --dev` whose key
// has changed since).
func (o *connectionOptions) explain(cmd string, err error) error {
	err = clientError(cmd, err)
	if !errors.Is(err, client.ErrRefused) {
		return err
	}
	hint := ""
	// mercurectl hubs say "signature does not verify with the ... key",
	// others "signature is invalid".
	badSignature := strings.Contains(err.Error(), "signature is invalid") || strings.Contains(err.Error(), "signature does not verify")
	switch {
	case !o.hasCredentials():
		hint = "no credentials were given: pass --jwt or --jwt-key, or set MERCURE_JWT or MERCURE_JWT_KEY"
	case badSignature && o.JWT != "":
		hint = "the token was signed with another key than the hub's; for a 'mercurectl serve --dev' hub, " +
			"export the MERCURE_JWT line that it printed at its last start"
	case badSignature:
		hint = "--jwt-key is not the key the hub verifies tokens with"
	default:
		return err
	}
	return newCredentialsError(&messageError{msg: err.Error() + " (" + hint + ")", err: err})
}

// messageError replaces the message of err, keeping err in the chain for
// errors.Is and errors.As.
type messageError struct {
	msg string
	err error
}

func (e *messageError) Error() string { return e.msg }
func (e *messageError) Unwrap() error { return e.err }
