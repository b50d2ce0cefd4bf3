package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mercurectl/mercurectl/internal/token"
)

// tokenInspectOptions are the inputs of `mercurectl token inspect`.
type tokenInspectOptions struct {
	IO *IOStreams

	// Token is the argument: the token, @path or @-.
	Token string
}

func newTokenInspectCmd(f *factory, runF func(*tokenInspectOptions) error) *cobra.Command {
	opts := &tokenInspectOptions{IO: f.IO}
	return &cobra.Command{
		Use:   "inspect <token>",
		Short: "Decode a token without verifying it",
		Long: `Decode a token without verifying its signature, and print its header and
claims as {"header": ..., "claims": ...}: indented on a terminal, on one line
when piped. A malformed token exits 1.

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
	_, err = opts.IO.Out.Write(out.Bytes())
	return err
}
