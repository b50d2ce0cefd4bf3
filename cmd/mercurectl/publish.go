package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mercurectl/mercurectl/internal/client"
)

// publishOptions are the inputs of `mercurectl publish`.
type publishOptions struct {
	IO         *IOStreams
	HTTPClient func() (*http.Client, error)
	Now        func() time.Time
	Logger     func() *slog.Logger

	Conn    connectionOptions
	Topics  []string
	Data    string
	Private bool
	ID      string
	Type    string
	// Retry is the --retry value, set only when the flag was given.
	Retry *uint64

	retry uint64 // bound to --retry
}

func newPublishCmd(f *factory, runF func(*publishOptions) error) *cobra.Command {
	opts := &publishOptions{IO: f.IO, HTTPClient: f.HTTPClient, Now: f.Now, Logger: f.Logger}
	cmd := &cobra.Command{
		Use:   "publish --topic <topic> [--topic <topic>...] [--data <data>|@file|@-] [flags]",
		Short: "Publish an update to a hub",
		Long: `Publish one update to a Mercure hub and print the id the hub assigned to it
(one line on stdout). The command ends as soon as the hub has answered.

The first --topic is the update's canonical topic, the others its alternate
topics. --data gives the content: the value itself, @path for the exact bytes
of a file (nothing added, nothing stripped), or @- for the bytes of stdin.
stdin is read only for @- (to send data that starts with @, put it in a file
or pipe it with @-). Without --data the update has empty data.

Publishing needs credentials: --jwt with a token that grants publishing on
the topics, or --jwt-key with the hub's key, from which a token valid for a
few minutes and for exactly these topics is minted (a legacy token for a
draft-07 hub, an RFC 9068 access token for a draft-08 hub). 'mercurectl serve
--dev' prints a ready MERCURE_JWT. Without any, publish exits 2.

A hub that answers 503 Service Unavailable ("try again": its history store
is briefly unreachable) stored nothing, as a rule: publish sends the update
again, three more times at most, after 250 ms, 500 ms and 1 s (or the hub's
Retry-After). With Redis, a 503 can in rare cases come after the update was
stored, which the retry then stores twice: give an --id to recognise it.

--retry is not about this: it sets the SSE retry field of the update, the
reconnection time that subscribers receiving it should use.

Exit codes: 0 published, 2 usage error or no credentials, 69 hub unreachable,
77 credentials refused (401/403, or a malformed token), 1 any other failure
(such as a 400 from the hub, whose message is shown, or a 503 that lasted).`,
		Example: `$ mercurectl publish --topic https://example.com/books/1 --data '{"title":"Dune"}'
$ MERCURE_JWT_KEY=@secret.txt mercurectl publish --topic https://example.com/books/1 --data @book.json
$ mercurectl publish --topic https://example.com/users/42/inbox --private --type message --data 'hi'
$ date -Iseconds | mercurectl publish --hub http://localhost:3000 --jwt "$MERCURE_JWT" --topic clock --data @-`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("retry") {
				opts.Retry = &opts.retry
			}
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runPublish(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&opts.Topics, "topic", "t", nil, "`TOPIC` of the update (repeatable: the first is canonical, the others alternates)")
	fl.StringVarP(&opts.Data, "data", "d", "", "the update's content: `DATA`, @file for a file's exact bytes, @- for stdin")
	fl.BoolVar(&opts.Private, "private", false, "make the update private: only subscribers authorised for its topics receive it")
	fl.StringVar(&opts.ID, "id", "", "ask for this update `ID` (default: the hub generates one)")
	fl.StringVar(&opts.Type, "type", "", "SSE event `TYPE` of the update")
	fl.Uint64Var(&opts.retry, "retry", 0, "set the update's SSE retry field: the reconnection time `MS` (milliseconds) for the subscribers that receive it (publish itself retries a 503 regardless)")
	addConnectionFlags(fl, &opts.Conn, "publish")
	return cmd
}

// validate checks the flags before anything is read.
func (o *publishOptions) validate() error {
	if len(o.Topics) == 0 {
		return usageErrorf("publish: at least one --topic is required")
	}
	for _, t := range o.Topics {
		if t == "" {
			return usageErrorf("publish: --topic must not be empty")
		}
	}
	if err := o.Conn.validate("publish"); err != nil {
		return err
	}
	if !o.Conn.hasCredentials() {
		return usageErrorf("publish: no credentials: pass --jwt TOKEN or --jwt-key KEY, or set MERCURE_JWT or MERCURE_JWT_KEY ('mercurectl serve --dev' prints a MERCURE_JWT)")
	}
	if o.Data == "@-" && o.Conn.readsStdin() {
		return usageErrorf("publish: --data @- and the credentials cannot both read stdin")
	}
	if o.Data == "@" {
		return usageErrorf(`publish: --data "@" needs a file name ("@path") or "-" for stdin`)
	}
	return nil
}

func runPublish(ctx context.Context, opts *publishOptions) error {
	data, err := readData(opts.Data, opts.IO.In)
	if err != nil {
		return usageErrorf("publish: --data: %w", err)
	}
	c, err := opts.Conn.newClient("publish", clientDeps{
		In: opts.IO.In, HTTPClient: opts.HTTPClient, Now: opts.Now, Logger: opts.Logger,
	})
	if err != nil {
		return err
	}
	id, err := c.Publish(ctx, client.PublishRequest{
		Topics:  opts.Topics,
		Data:    data,
		Private: opts.Private,
		ID:      opts.ID,
		Type:    opts.Type,
		Retry:   opts.Retry,
		// A hub whose store is briefly unreachable answers 503 "try
		// again": a script should not fail on the first one.
		Attempts: publishAttempts,
	})
	if err != nil {
		return opts.Conn.explain("publish", err)
	}
	_, err = fmt.Fprintln(opts.IO.Out, id)
	return err
}

// publishAttempts is how many times publish sends an update that the hub
// answers 503 (three retries: 250 ms, 500 ms, 1 s, or the hub's
// Retry-After).
const publishAttempts = 4

// readData resolves --data: "@-" is stdin, "@path" a file, anything else the
// data itself. Unlike secrets, nothing is stripped: the bytes are sent
// exactly. stdin is read only for "@-".
func readData(value string, stdin io.Reader) (string, error) {
	switch {
	case value == "@-":
		if stdin == nil {
			return "", fmt.Errorf("read stdin: no stdin")
		}
		b, err := io.ReadAll(stdin)
		if err != nil {
			return "", fmt.Errorf("read stdin: %w", err)
		}
		return string(b), nil
	case strings.HasPrefix(value, "@"):
		b, err := os.ReadFile(value[1:])
		if err != nil {
			return "", err
		}
		return string(b), nil
	default:
		return value, nil
	}
}
