package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mercurectl/mercurectl/internal/token"
)

// tokenInspectOptions are the inputs of `mercurectl token inspect`.
type tokenInspectOptions struct {
	IO  *IOStreams
	Now func() time.Time

	// Token is the argument: the token, @path or @-.
	Token string
}

func newTokenInspectCmd(f *factory, runF func(*tokenInspectOptions) error) *cobra.Command {
	opts := &tokenInspectOptions{IO: f.IO, Now: f.Now}
	return &cobra.Command{
		Use:   "inspect <token>",
		Short: "Decode a token without verifying it",
		Long: `Decode a token without verifying its signature, and print its header and
claims as {"header": ..., "claims": ...}: indented on a terminal, followed by
the times it carries (iat, nbf, exp) as dates, and on one line when piped.
A malformed token exits 1.

The token can be read from a file (@path) or from stdin (@- or -).`,
		Example: `$ mercurectl token inspect "$MERCURE_JWT"
$ mercurectl token inspect @token.txt
$ mercurectl token inspect "$MERCURE_JWT" | jq .claims.exp`,
		Args: exactArgs(1, "the token to inspect"),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Token = args[0]
			if opts.Token == "-" { // the usual spelling of stdin
				opts.Token = "@-"
			}
			if runF != nil {
				return runF(opts)
			}
			return runTokenInspect(opts)
		},
	}
}

func runTokenInspect(opts *tokenInspectOptions) error {
	raw, err := readSecret(opts.Token, opts.IO.In)
	if err != nil {
		return usageErrorf("token inspect: %w", err)
	}
	header, claims, err := token.Inspect(string(raw))
	if err != nil {
		return fmt.Errorf("token inspect: %w", err)
	}
	b, err := json.Marshal(struct {
		Header json.RawMessage `json:"header"`
		Claims json.RawMessage `json:"claims"`
	}{header, claims})
	if err != nil {
		return fmt.Errorf("token inspect: %w", err)
	}
	var out bytes.Buffer
	if opts.IO.IsStdoutTTY() {
		err = json.Indent(&out, b, "", "  ")
	} else {
		err = json.Compact(&out, b)
	}
	if err != nil {
		return fmt.Errorf("token inspect: %w", err)
	}
	out.WriteByte('\n')
	if opts.IO.IsStdoutTTY() {
		writeClaimTimes(&out, claims, opts.Now())
	}
	_, err = opts.IO.Out.Write(out.Bytes())
	return err
}

// writeClaimTimes writes the NumericDate claims of a token (RFC 7519
// section 2) as dates, with how far they are from now, for people: the
// JSON above shows them as seconds since 1970.
func writeClaimTimes(w *bytes.Buffer, claims json.RawMessage, now time.Time) {
	var c map[string]json.RawMessage
	if json.Unmarshal(claims, &c) != nil {
		return
	}
	first := true
	for _, name := range []string{"iat", "nbf", "exp"} {
		var secs float64
		if json.Unmarshal(c[name], &secs) != nil {
			continue
		}
		at := time.Unix(0, 0).Add(time.Duration(secs * float64(time.Second))).UTC()
		if first {
			w.WriteByte('\n')
			first = false
		}
		fmt.Fprintf(w, "%s  %s  (%s)\n", name, at.Format(time.RFC3339), relativeTime(at, now))
	}
}

// relativeTime says when t is from now: "in 59m30s", "3h0m0s ago", "now".
func relativeTime(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	switch {
	case d == 0:
		return "now"
	case d > 0:
		return "in " + d.String()
	default:
		return (-d).String() + " ago"
	}
}
