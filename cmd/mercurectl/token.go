package main

import "github.com/spf13/cobra"

// newTokenCmd groups the token subcommands.
func newTokenCmd(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token <command>",
		Short: "Mint, inspect and verify Mercure tokens",
		Long: `Mint, inspect and verify the JWTs that Mercure hubs accept: legacy tokens
with a "mercure" claim (draft-07, understood by every hub) and RFC 9068 access
tokens with authorization_details (draft-08).

Keys are HMAC secrets or PEM keys (a private key to mint, a public key or
certificate to verify). Like every secret, a key or a token can be read from a
file (@path) or from stdin (@-).`,
		Example: `$ mercurectl token mint --key @secret.txt --publish 'https://example.com/books/{id}'
$ mercurectl token inspect "$MERCURE_JWT"
$ mercurectl token verify --key @secret.txt "$MERCURE_JWT"`,
		Args: cobra.ArbitraryArgs,
		RunE: runGroup,
	}
	cmd.AddCommand(
		newTokenMintCmd(f, nil),
		newTokenInspectCmd(f, nil),
		newTokenVerifyCmd(f, nil),
	)
	return cmd
}
