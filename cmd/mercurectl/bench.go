package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mercurectl/mercurectl/internal/bench"
	"github.com/mercurectl/mercurectl/internal/client"
	"github.com/mercurectl/mercurectl/internal/token"
)

// benchOptions are the inputs of `mercurectl bench`.
type benchOptions struct {
	IO     *IOStreams
	Getenv func(string) string

	Hub         string
	JWT         string
	JWTKey      string
	Subscribers int
	Topics      int
	Selector    string
	Publishers  int
	Duration    time.Duration
	Updates     int
	PayloadSize int
	Drain       time.Duration
	Hold        time.Duration
	Churn       int
	Output      string
	json        bool // the older --json, as -o json
}

func newBenchCmd(f *factory, runF func(context.Context, *benchOptions) error) *cobra.Command {
	opts := &benchOptions{IO: f.IO, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "bench [--hub URL] [flags]",
		Short: "Measure a hub's publish and delivery throughput",
		Long: `Open many subscriptions to a hub, publish from many concurrent publishers, and
measure acknowledged publishes per second, deliveries per second and delivery
latency (from the start of a publish to its receipt by a subscriber).

Subscriber i listens to topic i modulo --topics: with --topics equal to
--subscribers (the default) every update goes to one subscriber; with
--topics 1 every update is a broadcast to all of them. By default selectors
are exact topics sent as draft-07 "topic=" parameters, which every hub
understands; --selector template gives each subscriber the URI template
https://bench.mercure.test/sel/N/{x} (draft-07), and --selector urlpattern
the URL pattern https://bench.mercure.test/sel/N/:x (draft-08
"match_urlpattern=", with an access token minted for the hub URL), updates
going to .../sel/N/item. The run stops
starting publishes after --duration (or --updates), lets those in flight
finish (they count: the hub delivers them), then waits up to --drain for
deliveries. On a terminal a status line on stderr shows the progress; piped,
stderr only gets a line per phase. The result goes to stdout: text, or one
JSON object with -o json.

The hub is --hub, else $MERCURE_URL, else http://localhost:3000.

Credentials: --jwt (a token granting publish and subscribe on the bench
topics), or --jwt-key to mint one. Each subscription holds one connection:
mind the open-file limit (ulimit -n) of both processes. For numbers worth
comparing, pin the hub and this command to different cores (taskset) and
compare against 'mercurectl bench baseline', a minimal broadcaster, measured
the same way.`,
		Example: `$ mercurectl bench --hub http://localhost:3000 --jwt-key @key --subscribers 1000 --publishers 64 --duration 10s
$ mercurectl bench --jwt "$MERCURE_JWT" --subscribers 10000 --topics 1 --updates 200 -o json
$ mercurectl bench --jwt-key @key --subscribers 19500 --publishers 256 --selector template
$ mercurectl bench baseline --addr 127.0.0.1:0 --addr-file addr`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.json {
				opts.Output = outputJSON
			}
			if opts.Output != outputText && opts.Output != outputJSON {
				return usageErrorf("bench: --output %q: want text or json", opts.Output)
			}
			if _, err := client.ParseHubURL(opts.Hub); err != nil {
				return usageErrorf("bench: --hub: %s", invalidRequestReason(err))
			}
			if opts.Subscribers < 0 || opts.Publishers < 1 || opts.Topics < 0 || opts.Churn < 0 {
				return usageErrorf("bench: --subscribers must be >= 0, --publishers >= 1, --topics >= 0, --churn >= 0")
			}
			switch opts.Selector {
			case bench.SelectExact, bench.SelectTemplate, bench.SelectURLPattern:
			default:
				return usageErrorf("bench: --selector must be exact, template or urlpattern")
			}
			if opts.JWT == "" && opts.JWTKey == "" {
				return usageErrorf("bench: --jwt or --jwt-key is required (or $MERCURE_JWT, $MERCURE_JWT_KEY)")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runBench(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Hub, "hub", defaultHubURL, "hub `URL`; a URL with an empty path gets "+client.HubPath)
	fl.StringVar(&opts.JWT, "jwt", "", "`TOKEN` granting publish and subscribe on the bench topics (@file, @- for stdin)")
	fl.StringVar(&opts.JWTKey, "jwt-key", "", "HMAC `KEY` to mint a token with (@file, @- for stdin)")
	fl.IntVar(&opts.Subscribers, "subscribers", 1000, "`N` subscriptions to open")
	fl.IntVar(&opts.Topics, "topics", 0, "`N` distinct topics (0: one per subscriber)")
	fl.StringVar(&opts.Selector, "selector", bench.SelectExact, "how subscribers select their topic: exact (topic=), template (one URI template each, topic=) or urlpattern (one URL pattern each, draft-08 match_urlpattern=)")
	fl.IntVar(&opts.Publishers, "publishers", 16, "`N` concurrent publishers")
	fl.DurationVar(&opts.Duration, "duration", 10*time.Second, "publish for `D`; the publishes in flight at the end finish and count")
	fl.IntVar(&opts.Updates, "updates", 0, "publish `N` updates instead of running for --duration")
	fl.IntVar(&opts.PayloadSize, "payload-size", 64, "`BYTES` of data per update (at least a timestamp)")
	fl.DurationVar(&opts.Drain, "drain", 5*time.Second, "give up on missing deliveries after `D` without any")
	fl.DurationVar(&opts.Hold, "hold", 0, "keep the subscriptions open for `D` after the run (to measure a hub's memory per idle subscription)")
	fl.IntVar(&opts.Churn, "churn", 0, "instead of publishing, connect and disconnect `N` subscriptions per second for --duration")
	fl.StringVarP(&opts.Output, "output", "o", outputText, "output `FORMAT`: text or json (one object)")
	fl.BoolVar(&opts.json, "json", false, "the same as -o json")
	_ = fl.MarkHidden("json") // kept for scripts written before -o
	bindEnv(fl, "hub", "MERCURE_URL")
	bindEnv(fl, "jwt", "MERCURE_JWT")
	bindEnv(fl, "jwt-key", "MERCURE_JWT_KEY", "MERCURE_JWT_SECRET")
	cmd.AddCommand(newBenchBaselineCmd(f))
	return cmd
}

func runBench(ctx context.Context, opts *benchOptions) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	u, err := client.ParseHubURL(opts.Hub)
	if err != nil {
		return usageErrorf("bench: --hub: %v", err)
	}
	hubURL := u.String()
	tok, subTok := "", ""
	if opts.JWT != "" {
		b, err := readSecret(opts.JWT, opts.IO.In)
		if err != nil {
			return usageErrorf("bench: --jwt: %v", err)
		}
		tok = string(b)
	} else {
		key, err := readSecret(opts.JWTKey, opts.IO.In)
		if err != nil {
			return usageErrorf("bench: --jwt-key: %v", err)
		}
		tok, err = token.Mint(token.MintOptions{Key: key, Publish: []string{"*"}, Subscribe: []string{"*"}, TTL: 24 * time.Hour})
		if err != nil {
			return fmt.Errorf("bench: mint a token: %w", err)
		}
		if opts.Selector == bench.SelectURLPattern {
			// Draft-08 subscriptions need an access token for the hub.
			subTok, err = token.Mint(token.MintOptions{
				Format: token.FormatAccessToken, Key: key, Subscribe: []string{"*"}, TTL: 24 * time.Hour, Audience: hubURL,
			})
			if err != nil {
				return fmt.Errorf("bench: mint a token: %w", err)
			}
		}
	}
	if subTok == "" {
		subTok = tok
	}
	res, err := bench.Run(ctx, bench.Options{
		HubURL: hubURL, PublisherToken: tok, SubscriberToken: subTok,
		Subscribers: opts.Subscribers, Topics: opts.Topics, Selector: opts.Selector, Publishers: opts.Publishers,
		Duration: opts.Duration, Updates: opts.Updates, PayloadSize: opts.PayloadSize, Drain: opts.Drain, Hold: opts.Hold,
		Churn:    opts.Churn,
		Progress: opts.IO.ErrOut,
		Live:     liveWriter(opts.IO),
	})
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) {
			return newUnreachableError(err)
		}
		return err
	}
	if opts.Churn > 0 {
		return printChurn(opts, res)
	}
	if opts.Output == outputJSON {
		b, err := json.Marshal(map[string]any{
			"subscribers": res.Subscribers, "published": res.Published, "failed": res.Failed,
			"delivered": res.Delivered, "expected": res.Expected,
			"publish_per_second": res.PublishRate(), "deliveries_per_second": res.DeliveryRate(),
			"latency_p50_ms": ms(res.P50), "latency_p99_ms": ms(res.P99), "latency_max_ms": ms(res.Max),
		})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(opts.IO.Out, "%s\n", b)
		return err
	}
	_, err = fmt.Fprintf(opts.IO.Out, `subscribers     %d
published       %d (%d failed)
delivered       %d of %d expected
publish rate    %.0f/s
delivery rate   %.0f/s
latency         p50 %.2f ms, p99 %.2f ms, max %.2f ms
`, res.Subscribers, res.Published, res.Failed, res.Delivered, res.Expected, res.PublishRate(), res.DeliveryRate(), ms(res.P50), ms(res.P99), ms(res.Max))
	if err == nil && res.Delivered < res.Expected {
		err = fmt.Errorf("bench: %d deliveries missing", res.Expected-res.Delivered)
	}
	return err
}

// printChurn prints the result of a --churn run; failed cycles make it fail.
func printChurn(opts *benchOptions, res bench.Result) error {
	var err error
	if opts.Output == outputJSON {
		var b []byte
		if b, err = json.Marshal(map[string]any{
			"subscribers": res.Subscribers, "churned": res.Churned, "churn_failed": res.ChurnFailed,
		}); err == nil {
			_, err = fmt.Fprintf(opts.IO.Out, "%s\n", b)
		}
	} else {
		_, err = fmt.Fprintf(opts.IO.Out, "subscribers     %d\nchurned         %d (%d failed)\n", res.Subscribers, res.Churned, res.ChurnFailed)
	}
	if err == nil && res.ChurnFailed > 0 {
		err = fmt.Errorf("bench: %d connect-disconnect cycles failed", res.ChurnFailed)
	}
	return err
}

// liveWriter is where bench rewrites its status line: stderr when it is a
// terminal, nowhere when it is piped (a log would fill with it).
func liveWriter(ios *IOStreams) io.Writer {
	if ios.IsStderrTTY() {
		return ios.ErrOut
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// newBenchBaselineCmd serves the minimal broadcaster that bench results are
// compared against.
func newBenchBaselineCmd(f *factory) *cobra.Command {
	var addr, addrFile string
	cmd := &cobra.Command{
		Use:   "baseline [--addr HOST:PORT] [--addr-file PATH]",
		Short: "Serve a minimal broadcaster to compare hubs against",
		Long: `Serve a deliberately minimal Go SSE broadcaster (no authorization, no history,
no validation) at / until interrupted, so that 'mercurectl bench' can measure
the cost of plain fan-out over HTTP on this machine. Never expose it.`,
		Example: `$ mercurectl bench baseline --addr 127.0.0.1:0 --addr-file addr`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var lc net.ListenConfig
			ln, err := lc.Listen(ctx, "tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", addr, err)
			}
			if addrFile != "" {
				if err := writeAddrFile(addrFile, ln.Addr().String()); err != nil {
					_ = ln.Close()
					return err
				}
			}
			_, _ = fmt.Fprintf(f.IO.ErrOut, "baseline broadcaster listening on http://%s/\n", ln.Addr())
			srv := &http.Server{Handler: bench.NewBaseline(), ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
				_ = srv.Close()
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "listen address")
	cmd.Flags().StringVar(&addrFile, "addr-file", "", "write the bound host:port to this file once listening")
	return cmd
}
