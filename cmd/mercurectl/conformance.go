package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"

	"github.com/mercurectl/mercurectl/internal/client"
	"github.com/mercurectl/mercurectl/internal/conformance"
	"github.com/mercurectl/mercurectl/internal/token"
)

// conformanceOptions are the inputs of `mercurectl conformance`.
type conformanceOptions struct {
	IO         *IOStreams
	HTTPClient func() (*http.Client, error)
	Logger     func() *slog.Logger
	// notify relays SIGINT and SIGTERM; tests send fake signals.
	notify signalNotifier

	Hub           string
	JWTKey        string
	JWTAlg        string
	PublisherJWT  string
	SubscriberJWT string
	Issuer        string
	Audience      string
	Protocol      string
	Run           string
	List          bool
	Timeout       time.Duration
	Output        string
	TopicPrefix   string
	Origin        string
	Resource      string
	Heartbeat     time.Duration
	HistoryDepth  int
	RestartCmd    string
	Parallel      int

	// Set by validate.
	protocol client.Protocol
	run      *regexp.Regexp
}

func newConformanceCmd(f *factory, runF func(*conformanceOptions) error) *cobra.Command {
	opts := &conformanceOptions{IO: f.IO, HTTPClient: f.HTTPClient, Logger: f.Logger, notify: notifySignals}
	cmd := &cobra.Command{
		Use:   "conformance [--hub <url>] [--jwt-key <key> | --publisher-jwt <token> --subscriber-jwt <token>] [flags]",
		Short: "Check a hub, any hub, against both Mercure protocol generations",
		Long: `Check a Mercure hub against the protocol: every testable requirement of
draft-07 (the 0.x hubs) and draft-08 (the hubs from 1.0 on), one case each,
named group/name and citing the section of the specification it checks.

The groups: discovery (RFC 9728 metadata, --resource's Link headers),
publish, subscribe, auth, history, cors (with --origin), subscriptions (when
the hub serves the API) and beyond: what the specifications imply without
testing it. The beyond cases check that a cursor more than 10,000 updates
deep is still found (they publish --history-depth updates, and skip when the
hub keeps fewer), that one reconnection replays more than 1,000 events, that
a cursor survives a restart (with --restart-cmd), that keep-alives arrive
within the interval (with --heartbeat) and that nothing between the hub and
this machine holds events back (each arrives within 1 s).

The generation is detected as the client commands do: draft-08 when the hub
serves RFC 9728 metadata; a hub that serves both is checked in both (a
topic= subscription tells whether it still speaks draft-07). --protocol 7 or
8 checks only that one. Tokens are minted for each case from --jwt-key, in
each generation's format (--issuer and --audience as for publish), or taken
ready-made from --publisher-jwt and --subscriber-jwt, which win over
--jwt-key; the cases that need tokens with specific grants are then skipped.

Every topic lives under --topic-prefix (by default a prefix unique to the
run, under the reserved .invalid domain), so a run never disturbs a hub's
real traffic. Cases are independent and run in parallel, each with its own
--timeout.

Output: one line per case, 'PASS name (spec)', 'FAIL name (spec): what was
expected, what came' or 'SKIP name (spec): why', then one summary line
'N passed, M failed' (', K skipped' when some were). -o json writes one JSON
object per case, then the summary object. --list prints the cases without
running them.

Exit codes: 0 nothing failed, 1 a case failed, 2 usage error, 69 hub
unreachable, 77 the hub refused every token.`,
		Example: `$ mercurectl conformance --hub http://localhost:3000 --jwt-key @secret.txt
$ mercurectl conformance --hub https://hub.example.com --jwt-key "$MERCURE_JWT_KEY" --origin https://app.example.com -o json
$ mercurectl conformance --protocol 8 --run '^history/' --jwt-key @secret.txt
$ mercurectl conformance --publisher-jwt @pub.jwt --subscriber-jwt @sub.jwt --history-depth 2000
$ mercurectl conformance --list`,
		Args: noArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runConformance(context.Background(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Hub, "hub", defaultHubURL, "hub `URL` to check; a URL with an empty path gets "+client.HubPath)
	bindEnv(fl, "hub", "MERCURE_URL")
	fl.StringVar(&opts.JWTKey, "jwt-key", "", "mint the tokens of each case, signed with `KEY`: HMAC secret or PEM private key (@file, @- for stdin)")
	bindEnv(fl, "jwt-key", "MERCURE_JWT_KEY", "MERCURE_JWT_SECRET")
	fl.StringVar(&opts.JWTAlg, "jwt-alg", "HS256", "signing `ALG` of minted tokens: "+strings.Join(token.SupportedAlgs(), ", "))
	bindEnv(fl, "jwt-alg", "MERCURE_JWT_ALG")
	fl.StringVar(&opts.PublisherJWT, "publisher-jwt", "", "a ready publisher `TOKEN` granting the topic prefix (@file, @- for stdin); with --subscriber-jwt, wins over --jwt-key")
	bindEnv(fl, "publisher-jwt", "MERCURE_PUBLISHER_JWT")
	fl.StringVar(&opts.SubscriberJWT, "subscriber-jwt", "", "a ready subscriber `TOKEN` granting the topic prefix (@file, @- for stdin)")
	bindEnv(fl, "subscriber-jwt", "MERCURE_SUBSCRIBER_JWT")
	fl.StringVar(&opts.Issuer, "issuer", "", "the iss claim (`ISS`) of minted draft-08 tokens; default "+token.DefaultMintIdentity+" (of a list, the first)")
	bindEnv(fl, "issuer", "MERCURE_ISSUER")
	fl.StringVar(&opts.Audience, "audience", "", "the aud claim (`AUD`) of minted draft-08 tokens; default: the resource identifier the hub advertises")
	bindEnv(fl, "audience", "MERCURE_AUDIENCE")
	fl.StringVar(&opts.Protocol, "protocol", "auto", "generation to check (`MODE`): auto (every one the hub serves), 7 (draft-07) or 8 (draft-08)")
	bindEnv(fl, "protocol", "MERCURE_PROTOCOL")
	fl.StringVar(&opts.Run, "run", "", "run only the cases whose 'name (spec)' matches `REGEX`")
	fl.BoolVar(&opts.List, "list", false, "print the cases and exit, without contacting the hub")
	fl.DurationVar(&opts.Timeout, "timeout", conformance.DefaultTimeout, "time limit of each case (`D`); cases that publish many updates get 1ms more per update")
	fl.StringVarP(&opts.Output, "output", "o", "text", "output `FORMAT`: text or json")
	fl.StringVar(&opts.TopicPrefix, "topic-prefix", "", "where every topic of the run lives (`URL`); default "+conformance.DefaultTopicPrefix+"<run id>/")
	fl.StringVar(&opts.Origin, "origin", "", "check CORS for this browser `ORIGIN`, which the hub should allow")
	fl.StringVar(&opts.Resource, "resource", "", "check the Link headers of this `URL` of your application, which should advertise the hub")
	fl.DurationVar(&opts.Heartbeat, "heartbeat", 0, "the hub's keep-alive interval (`D`), to check that keep-alives arrive in time")
	fl.IntVar(&opts.HistoryDepth, "history-depth", conformance.DefaultHistoryDepth, "`N` updates published by the deep-cursor case")
	fl.StringVar(&opts.RestartCmd, "restart-cmd", "", "shell `COMMAND` that restarts the hub and returns once it is back up (or while it is down), to check that cursors survive a restart")
	fl.IntVar(&opts.Parallel, "parallel", conformance.DefaultConcurrency, "run up to `N` cases at once")
	return cmd
}

// validate checks the flags before anything is read.
func (o *conformanceOptions) validate() error {
	if o.Output != "text" && o.Output != "json" {
		return usageErrorf("conformance: -o %q: want text or json", o.Output)
	}
	p, err := client.ParseProtocol(o.Protocol)
	if err != nil {
		return usageErrorf("conformance: --protocol %q: want auto, 7 or 8", o.Protocol)
	}
	o.protocol = p
	if o.Run != "" {
		if o.run, err = regexp.Compile(o.Run); err != nil {
			return usageErrorf("conformance: --run: %w", err)
		}
	}
	if o.List {
		return nil
	}
	if _, err := client.ParseHubURL(o.Hub); err != nil {
		return usageErrorf("conformance: --hub: %s", invalidRequestReason(err))
	}
	switch {
	case (o.PublisherJWT == "") != (o.SubscriberJWT == ""):
		return usageErrorf("conformance: --publisher-jwt and --subscriber-jwt go together")
	case o.PublisherJWT == "" && o.JWTKey == "":
		return usageErrorf("conformance: no credentials: pass --jwt-key KEY (the hub's key), or both --publisher-jwt and --subscriber-jwt, or set MERCURE_JWT_KEY")
	}
	stdin := 0
	for _, v := range []string{o.PublisherJWT, o.SubscriberJWT} {
		if v == "@-" {
			stdin++
		}
	}
	if o.PublisherJWT == "" && o.JWTKey == "@-" {
		stdin++
	}
	if stdin > 1 {
		return usageErrorf("conformance: only one of the credentials can read stdin")
	}
	if o.PublisherJWT == "" {
		alg, err := token.CanonicalAlg(o.JWTAlg)
		if err != nil {
			return usageErrorf("conformance: --jwt-alg: %w", err)
		}
		o.JWTAlg = alg
	}
	if o.Timeout <= 0 {
		return usageErrorf("conformance: --timeout must be positive")
	}
	if o.HistoryDepth < 3 {
		return usageErrorf("conformance: --history-depth must be at least 3")
	}
	if o.Parallel < 1 {
		return usageErrorf("conformance: --parallel must be at least 1")
	}
	if o.Heartbeat < 0 {
		return usageErrorf("conformance: --heartbeat must not be negative")
	}
	if o.Origin != "" {
		u, err := url.Parse(o.Origin)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return usageErrorf("conformance: --origin %q: want scheme://host[:port]", o.Origin)
		}
		o.Origin = strings.TrimSuffix(o.Origin, "/")
	}
	if o.Resource != "" {
		if u, err := url.Parse(o.Resource); err != nil || !u.IsAbs() {
			return usageErrorf("conformance: --resource %q: want an absolute URL", o.Resource)
		}
	}
	if o.TopicPrefix != "" {
		if u, err := url.Parse(o.TopicPrefix); err != nil || !u.IsAbs() {
			return usageErrorf("conformance: --topic-prefix %q: want an absolute URL", o.TopicPrefix)
		}
	}
	return nil
}

func runConformance(ctx context.Context, opts *conformanceOptions) error {
	out := newConformanceWriter(opts.Output, opts.IO)
	if opts.List {
		for _, r := range conformance.List(conformance.Options{Protocol: opts.protocol, Run: opts.run}) {
			if err := out.listed(r); err != nil {
				return err
			}
		}
		return nil
	}
	co, err := opts.runOptions()
	if err != nil {
		return err
	}
	var writeErr error
	co.OnResult = func(r conformance.Result) {
		if writeErr == nil {
			writeErr = out.result(r)
		}
	}
	diag := newDiagnostics(opts.IO)
	co.OnStart = func(p conformance.Plan) {
		gens := make([]string, len(p.Generations))
		for i, g := range p.Generations {
			gens[i] = g.String()
		}
		diag.printf("conformance: checking %s in %s; topics under %s", p.HubURL, strings.Join(gens, " and "), p.TopicPrefix)
		for _, g := range []client.Protocol{client.Protocol07, client.Protocol08} {
			if why, ok := p.Skipped[g]; ok {
				diag.printf("conformance: not checking %s: %s", g, why)
			}
		}
	}
	var sum conformance.Summary
	stopped, err := runInterruptible(ctx, opts.notify, func(ctx context.Context) error {
		var err error
		sum, err = conformance.Run(ctx, co)
		return err
	})
	if _, ok := errors.AsType[*interruptedError](err); ok {
		return err
	}
	if err != nil && (!stopped || !errors.Is(err, context.Canceled)) {
		switch {
		case errors.Is(err, conformance.ErrUnreachable):
			return newUnreachableError(fmt.Errorf("conformance: %w", err))
		case errors.Is(err, conformance.ErrRefused):
			return newCredentialsError(fmt.Errorf("conformance: %w", err))
		case errors.Is(err, conformance.ErrInvalidOptions):
			return usageErrorf("conformance: %s", strings.TrimPrefix(err.Error(), conformance.ErrInvalidOptions.Error()+": "))
		}
		return fmt.Errorf("conformance: %w", err)
	}
	if writeErr != nil {
		return writeErr
	}
	if err := out.summary(sum); err != nil {
		return err
	}
	switch {
	case stopped:
		return fmt.Errorf("conformance: interrupted before every case ran")
	case sum.Failed > 0:
		return fmt.Errorf("conformance: %d of %d cases failed", sum.Failed, sum.Passed+sum.Failed+sum.Skipped)
	}
	return nil
}

// runOptions reads the credentials and builds the library's options.
func (o *conformanceOptions) runOptions() (conformance.Options, error) {
	httpc, err := o.HTTPClient()
	if err != nil {
		return conformance.Options{}, err
	}
	co := conformance.Options{
		HubURL:       o.Hub,
		HTTPClient:   httpc,
		Protocol:     o.protocol,
		Alg:          o.JWTAlg,
		Audience:     o.Audience,
		TopicPrefix:  o.TopicPrefix,
		Origin:       o.Origin,
		Resource:     o.Resource,
		Heartbeat:    o.Heartbeat,
		HistoryDepth: o.HistoryDepth,
		Run:          o.run,
		Timeout:      o.Timeout,
		Concurrency:  o.Parallel,
	}
	if items := splitList(o.Issuer); len(items) > 0 {
		co.Issuer = items[0] // MERCURE_ISSUER may list the issuers a hub trusts
	}
	if o.Logger != nil {
		co.Logger = o.Logger()
	}
	if o.PublisherJWT != "" {
		for _, t := range []struct {
			flag, value string
			dst         *string
		}{{"--publisher-jwt", o.PublisherJWT, &co.PublisherToken}, {"--subscriber-jwt", o.SubscriberJWT, &co.SubscriberToken}} {
			b, err := readSecret(t.value, o.IO.In)
			if err != nil {
				return co, usageErrorf("conformance: %s: %w", t.flag, err)
			}
			*t.dst = strings.TrimSpace(string(b))
		}
	} else {
		key, err := readSecret(o.JWTKey, o.IO.In)
		if err != nil {
			return co, usageErrorf("conformance: --jwt-key: %w", err)
		}
		if _, err := token.ParseSigningKey(o.JWTAlg, key); err != nil {
			return co, usageErrorf("conformance: --jwt-key: %w", err)
		}
		co.Key = key
	}
	if o.RestartCmd != "" {
		co.Restart = func(ctx context.Context) error {
			c := exec.CommandContext(ctx, "sh", "-c", o.RestartCmd) // #nosec G204 -- the user's own command, by design
			c.Stdout, c.Stderr = o.IO.ErrOut, o.IO.ErrOut
			return c.Run()
		}
	}
	return co, nil
}

// conformanceWriter prints cases and the summary as text or JSON lines.
type conformanceWriter struct {
	w                  io.Writer
	json               bool
	pass, fail, skip   lipgloss.Style
	name, spec, detail lipgloss.Style
}

func newConformanceWriter(format string, ios *IOStreams) *conformanceWriter {
	r := ios.Renderer()
	return &conformanceWriter{
		w:      ios.Out,
		json:   format == "json",
		pass:   r.NewStyle().Foreground(lipgloss.Color("2")).Bold(true),
		fail:   r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		skip:   r.NewStyle().Foreground(lipgloss.Color("3")),
		name:   r.NewStyle(),
		spec:   r.NewStyle().Faint(true),
		detail: r.NewStyle(),
	}
}

// caseJSON is the JSON form of a case.
type caseJSON struct {
	Name       string `json:"name"`
	Group      string `json:"group"`
	Protocol   string `json:"protocol"`
	Spec       string `json:"spec"`
	Status     string `json:"status,omitempty"`
	Detail     string `json:"detail,omitempty"`
	DurationMS *int64 `json:"duration_ms,omitempty"`
}

func toJSON(r conformance.Result) caseJSON {
	return caseJSON{Name: r.Name, Group: r.Group, Protocol: r.Protocol, Spec: r.Spec, Status: string(r.Status), Detail: r.Detail}
}

func (c *conformanceWriter) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.w, "%s\n", b)
	return err
}

// listed prints a case of --list.
func (c *conformanceWriter) listed(r conformance.Result) error {
	if c.json {
		return c.line(toJSON(r))
	}
	_, err := fmt.Fprintf(c.w, "%s %s\n", c.name.Render(r.Name), c.spec.Render("("+r.Spec+")"))
	return err
}

// result prints a case's result.
func (c *conformanceWriter) result(r conformance.Result) error {
	if c.json {
		j := toJSON(r)
		ms := r.Duration.Milliseconds()
		j.DurationMS = &ms
		return c.line(j)
	}
	var status string
	switch r.Status {
	case conformance.Pass:
		status = c.pass.Render("PASS")
	case conformance.Fail:
		status = c.fail.Render("FAIL")
	default:
		status = c.skip.Render("SKIP")
	}
	line := status + " " + c.name.Render(r.Name) + " " + c.spec.Render("("+r.Spec+")")
	if r.Status != conformance.Pass {
		line += ": " + c.detail.Render(escapeControls(r.Detail))
	}
	_, err := fmt.Fprintln(c.w, line)
	return err
}

// summary prints the closing line or object.
func (c *conformanceWriter) summary(s conformance.Summary) error {
	if c.json {
		return c.line(struct {
			Passed     int   `json:"passed"`
			Failed     int   `json:"failed"`
			Skipped    int   `json:"skipped"`
			DurationMS int64 `json:"duration_ms"`
		}{s.Passed, s.Failed, s.Skipped, s.Duration.Milliseconds()})
	}
	line := fmt.Sprintf("%d passed, %d failed", s.Passed, s.Failed)
	if s.Skipped > 0 {
		line += fmt.Sprintf(", %d skipped", s.Skipped)
	}
	_, err := fmt.Fprintln(c.w, line)
	return err
}
