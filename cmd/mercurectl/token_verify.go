package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"

	"github.com/mercurectl/mercurectl/internal/token"
)

// tokenVerifyOptions are the inputs of `mercurectl token verify`.
type tokenVerifyOptions struct {
	IO  *IOStreams
	Now func() time.Time

	Key      string
	Alg      string
	Audience string
	Issuers  []string
	// Token is the argument: the token, @path or @-.
	Token string
}

func newTokenVerifyCmd(f *factory, runF func(*tokenVerifyOptions) error) *cobra.Command {
	opts := &tokenVerifyOptions{IO: f.IO, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "verify --key <key> <token>",
		Short: "Verify a token's signature and times",
		Long: `Verify a token as a hub would: its signature with --key and --alg, and its
exp and nbf times; for an RFC 9068 access token also its iss (when --issuer is
given) and aud (when --audience is given).

Exit status: 0 when the token is valid, 1 when it is not (bad signature,
expired, malformed), 2 on a usage error. On a terminal, a valid token is
confirmed on stdout; the reason for an invalid one goes to stderr.`,
		Example: `$ mercurectl token verify --key @secret.txt "$MERCURE_JWT"
$ mercurectl token verify --alg RS256 --key @public.pem @token.txt
$ if mercurectl token verify --key "$KEY" "$TOKEN"; then echo valid; fi`,
		Args: exactArgs(1, "the token to verify"),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Token = args[0]
			if opts.Token == "-" { // the usual spelling of stdin
				opts.Token = "@-"
			}
			if opts.Key == "" {
				return usageErrorf("token verify: no key: pass --key, or set MERCURE_JWT_KEY or MERCURE_JWT_SECRET")
			}
			if opts.Key == "@-" && opts.Token == "@-" {
				return usageErrorf("token verify: the key and the token cannot both be read from stdin")
			}
			alg, err := token.CanonicalAlg(opts.Alg)
			if err != nil {
				return usageErrorf("token verify: --alg: %w", err)
			}
			opts.Alg = alg
			if runF != nil {
				return runF(opts)
			}
			return runTokenVerify(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Key, "key", "", "verification `KEY`: HMAC secret or PEM public key (@file, @- for stdin)")
	bindEnv(fl, "key", "MERCURE_JWT_KEY", "MERCURE_JWT_SECRET")
	fl.StringVar(&opts.Alg, "alg", "HS256", "expected signing `ALG`")
	fl.StringVar(&opts.Audience, "audience", "", "`AUD` that an access token must carry")
	fl.StringArrayVar(&opts.Issuers, "issuer", nil, "trusted `ISS` of access tokens (repeatable; default: any)")
	return cmd
}

func runTokenVerify(opts *tokenVerifyOptions) error {
	key, err := readSecret(opts.Key, opts.IO.In)
	if err != nil {
		return usageErrorf("token verify: --key: %w", err)
	}
	raw, err := readSecret(opts.Token, opts.IO.In)
	if err != nil {
		return usageErrorf("token verify: %w", err)
	}
	v, err := token.NewVerifier(token.VerifierConfig{
		Alg:       opts.Alg,
		Key:       key,
		Issuers:   opts.Issuers,
		Now:       opts.Now,
		CacheSize: -1, // one token: nothing to cache
	})
	if err != nil {
		return usageErrorf("token verify: --key: %w", err)
	}
	claims, err := v.Verify(strings.TrimSpace(string(raw)), opts.Audience)
	if err != nil {
		return fmt.Errorf("token verify: %w", err) // "invalid token: <reason>", exit 1
	}
	if !opts.IO.IsStdoutTTY() {
		return nil // the exit status is the answer
	}
	return printVerified(opts, claims)
}

// printVerified confirms a valid token on a terminal.
func printVerified(opts *tokenVerifyOptions, c *token.Claims) error {
	r := opts.IO.Renderer()
	ok := r.NewStyle().Foreground(lipgloss.Color("2")).Bold(true).Render("✓ Valid token")
	format := "legacy (draft-07)"
	if c.Format == token.FormatAccessToken {
		format = "RFC 9068 access token (draft-08)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s\n", ok, format)
	if c.Expiry.IsZero() {
		b.WriteString("  expires    never\n")
	} else {
		fmt.Fprintf(&b, "  expires    %s (in %s)\n", c.Expiry.UTC().Format(time.RFC3339), c.Expiry.Sub(opts.Now()).Round(time.Second))
	}
	for _, f := range []struct{ name, v string }{{"issuer", c.Issuer}, {"subject", c.Subject}, {"client_id", c.ClientID}} {
		if f.v != "" {
			fmt.Fprintf(&b, "  %-10s %s\n", f.name, f.v)
		}
	}
	for _, g := range []struct {
		name string
		sel  []token.Selector
	}{{"publish", c.Publish}, {"subscribe", c.Subscribe}} {
		if len(g.sel) == 0 {
			continue
		}
		names := make([]string, len(g.sel))
		for i, s := range g.sel {
			names[i] = s.Match
			if s.Type != "" {
				names[i] += " (" + s.Type + ")"
			}
		}
		fmt.Fprintf(&b, "  %-10s %s\n", g.name, strings.Join(names, ", "))
	}
	_, err := fmt.Fprint(opts.IO.Out, b.String())
	return err
}
