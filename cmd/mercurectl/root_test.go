package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// runTest runs the whole CLI as main does, on buffers.
func runTest(t *testing.T, env envMap, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if env == nil {
		env = envMap{}
	}
	code = run(args, strings.NewReader(""), &out, &errOut, env.Getenv)
	return code, out.String(), errOut.String()
}

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    string
		wantErr    string
		wantNoErr  bool
		wantNoOut  bool
		wantUsages bool
	}{
		{name: "no arguments prints help", wantOut: "Available Commands:", wantNoErr: true},
		{name: "--help", args: []string{"--help"}, wantOut: "Usage:", wantNoErr: true},
		{name: "help", args: []string{"help"}, wantOut: "Available Commands:", wantNoErr: true},
		{name: "help of a command", args: []string{"help", "token", "mint"}, wantOut: "mercurectl token mint --key <key> [flags]", wantNoErr: true},
		{name: "group without subcommand prints help", args: []string{"token"}, wantOut: "Available Commands:", wantNoErr: true},
		{name: "unknown command", args: []string{"tokn"}, wantCode: 2, wantErr: "mercurectl: unknown command \"tokn\" for \"mercurectl\" (did you mean token?)\nUsage: mercurectl [flags]\n", wantNoOut: true},
		{name: "unknown subcommand", args: []string{"token", "mnt"}, wantCode: 2, wantErr: "unknown command \"mnt\" for \"mercurectl token\" (did you mean mint?)", wantNoOut: true},
		{name: "unknown flag", args: []string{"serve", "--bogus"}, wantCode: 2, wantErr: "mercurectl: unknown flag: --bogus\nUsage: mercurectl serve [flags]\nRun 'mercurectl serve --help' for more information.\n", wantNoOut: true},
		{name: "bad flag value", args: []string{"serve", "--heartbeat", "often"}, wantCode: 2, wantErr: "invalid argument \"often\" for \"--heartbeat\"", wantNoOut: true},
		{name: "help topic", args: []string{"help", "exit-codes"}, wantOut: "  124   --timeout expired", wantNoErr: true},
		{name: "environment topic", args: []string{"help", "environment"}, wantOut: "MERCURE_JWT_KEY", wantNoErr: true},
		{name: "unknown help topic", args: []string{"help", "nope"}, wantCode: 2, wantErr: "unknown help topic \"nope\"", wantNoOut: true},
		{name: "version", args: []string{"version"}, wantOut: "mercurectl version ", wantNoErr: true},
		{name: "--version", args: []string{"--version"}, wantOut: "mercurectl version ", wantNoErr: true},
		{name: "global flag after the command", args: []string{"version", "--no-color"}, wantOut: "mercurectl version ", wantNoErr: true},
		{name: "completion", args: []string{"completion", "bash"}, wantOut: "# bash completion V2 for mercurectl", wantNoErr: true},
		{name: "completion of an unknown shell", args: []string{"completion", "tcsh"}, wantCode: 2, wantErr: "unknown command \"tcsh\"", wantNoOut: true},
		{name: "man without --dir", args: []string{"man"}, wantCode: 2, wantErr: "--dir is required", wantNoOut: true},
		{name: "serve without a key", args: []string{"serve"}, wantCode: 2, wantErr: "no key to verify tokens", wantNoOut: true},
		{name: "token mint without a key", args: []string{"token", "mint"}, wantCode: 2, wantErr: "no key", wantNoOut: true},
		{name: "token inspect of garbage", args: []string{"token", "inspect", "garbage"}, wantCode: 1, wantErr: "malformed token", wantNoOut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runTest(t, nil, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout %q lacks %q", out, tt.wantOut)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr %q lacks %q", errOut, tt.wantErr)
			}
			if tt.wantNoErr && errOut != "" {
				t.Errorf("unexpected stderr %q", errOut)
			}
			if tt.wantNoOut && out != "" {
				t.Errorf("unexpected stdout %q", out)
			}
			if code != 0 && strings.Count(errOut, "mercurectl: ") != 1 {
				t.Errorf("the error is not printed exactly once: %q", errOut)
			}
		})
	}
}

// Every command's help follows one convention, so that help, man pages and
// docs/cli.md read alike: a capitalised Short without a period, a Long,
// examples whose lines start with "$ ", and lower-case flag usages.
func TestCommandHelpConventions(t *testing.T) {
	t.Parallel()
	f, _ := newTestFactory(nil)
	root := newRootCmd(f)
	root.InitDefaultHelpCmd()
	walk(root, func(c *cobra.Command) {
		name := c.CommandPath()
		switch {
		case c.Short == "":
			t.Errorf("%s: no Short", name)
		case !unicode.IsUpper([]rune(c.Short)[0]):
			t.Errorf("%s: Short %q is not capitalised", name, c.Short)
		case strings.HasSuffix(c.Short, "."):
			t.Errorf("%s: Short %q ends with a period", name, c.Short)
		}
		if c.Long == "" {
			t.Errorf("%s: no Long", name)
		}
		if c.Example == "" {
			t.Errorf("%s: no Example", name)
		}
		for line := range strings.SplitSeq(c.Example, "\n") {
			if !strings.HasPrefix(line, "$ mercurectl ") && !strings.Contains(line, " mercurectl ") {
				t.Errorf("%s: Example line %q does not run mercurectl", name, line)
			}
			if !strings.HasPrefix(line, "$ ") {
				t.Errorf("%s: Example line %q does not start with \"$ \"", name, line)
			}
		}
		c.LocalFlags().VisitAll(func(fl *pflag.Flag) {
			first, _, _ := strings.Cut(fl.Usage, " ")
			capitalised := first != strings.ToUpper(first) && unicode.IsUpper([]rune(first)[0]) // "PEM" is fine, "The" is not
			if fl.Usage == "" || capitalised || strings.HasSuffix(fl.Usage, ".") {
				t.Errorf("%s --%s: usage %q should be a lower-case phrase without a final period", name, fl.Name, fl.Usage)
			}
		})
	})
}

// The documented flags and variables exist and are bound
// (docs/cli.md#environment): scripts rely on these names.
func TestEnvBindings(t *testing.T) {
	t.Parallel()
	f, _ := newTestFactory(nil)
	root := newRootCmd(f)
	tests := []struct {
		cmd  []string
		flag string
		envs []string
	}{
		{[]string{"serve"}, "addr", []string{"MERCURE_ADDR"}},
		{[]string{"serve"}, "addr-file", nil},
		{[]string{"serve"}, "jwt-key", []string{"MERCURE_JWT_KEY", "MERCURE_JWT_SECRET"}},
		{[]string{"serve"}, "publisher-jwt-key", []string{"MERCURE_PUBLISHER_JWT_KEY"}},
		{[]string{"serve"}, "subscriber-jwt-key", []string{"MERCURE_SUBSCRIBER_JWT_KEY"}},
		{[]string{"serve"}, "jwt-alg", []string{"MERCURE_JWT_ALG"}},
		{[]string{"serve"}, "jwks-url", []string{"MERCURE_JWKS_URL"}},
		{[]string{"serve"}, "anonymous", []string{"MERCURE_ANONYMOUS"}},
		{[]string{"serve"}, "issuer", []string{"MERCURE_ISSUER"}},
		{[]string{"serve"}, "resource-identifier", []string{"MERCURE_RESOURCE_IDENTIFIER"}},
		{[]string{"serve"}, "transport", []string{"MERCURE_TRANSPORT"}},
		{[]string{"serve"}, "history-size", nil},
		{[]string{"serve"}, "history-max-age", nil},
		{[]string{"serve"}, "subscriptions", []string{"MERCURE_SUBSCRIPTIONS"}},
		{[]string{"serve"}, "cors-origin", []string{"MERCURE_CORS_ORIGINS"}},
		{[]string{"serve"}, "publish-origin", []string{"MERCURE_PUBLISH_ORIGINS"}},
		{[]string{"serve"}, "heartbeat", nil},
		{[]string{"serve"}, "write-timeout", nil},
		{[]string{"serve"}, "dispatch-timeout", nil},
		{[]string{"serve"}, "max-body-size", nil},
		{[]string{"serve"}, "metrics-addr", nil},
		{[]string{"serve"}, "tls-cert", nil},
		{[]string{"serve"}, "tls-key", nil},
		{[]string{"serve"}, "log-format", nil},
		{[]string{"serve"}, "log-level", nil},
		{[]string{"serve"}, "dev", nil},
		{[]string{"serve"}, "shutdown-timeout", nil},
		{[]string{"token", "mint"}, "key", []string{"MERCURE_JWT_KEY", "MERCURE_JWT_SECRET"}},
		{[]string{"token", "mint"}, "alg", nil},
		{[]string{"token", "mint"}, "publish", nil},
		{[]string{"token", "mint"}, "subscribe", nil},
		{[]string{"token", "mint"}, "payload", nil},
		{[]string{"token", "mint"}, "ttl", nil},
		{[]string{"token", "mint"}, "format", nil},
		{[]string{"token", "mint"}, "issuer", nil},
		{[]string{"token", "mint"}, "audience", nil},
		{[]string{"token", "mint"}, "subject", nil},
		{[]string{"token", "verify"}, "key", []string{"MERCURE_JWT_KEY", "MERCURE_JWT_SECRET"}},
		{[]string{"token", "verify"}, "alg", nil},
	}
	for _, tt := range tests {
		c, rest, err := root.Find(tt.cmd)
		if err != nil || len(rest) > 0 {
			t.Errorf("no command %q", tt.cmd)
			continue
		}
		fl := c.Flags().Lookup(tt.flag)
		if fl == nil {
			t.Errorf("%s: no flag --%s", c.CommandPath(), tt.flag)
			continue
		}
		if got := flagEnv(fl); !slices.Equal(got, tt.envs) {
			t.Errorf("%s --%s reads %q, want %q", c.CommandPath(), tt.flag, got, tt.envs)
		}
	}
}

// help environment lists every variable that a flag reads.
func TestEnvironmentTopicListsEveryVariable(t *testing.T) {
	t.Parallel()
	f, _ := newTestFactory(nil)
	root := newRootCmd(f)
	code, out, _ := runTest(t, nil, "help", "environment")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	walk(root, func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(fl *pflag.Flag) {
			for _, e := range flagEnv(fl) {
				if !strings.Contains(out, "\n  "+e+"\n") {
					t.Errorf("help environment lacks %s (%s --%s)", e, c.CommandPath(), fl.Name)
				}
			}
		})
	})
	for _, v := range []string{"NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "SOURCE_DATE_EPOCH"} {
		if !strings.Contains(out, v) {
			t.Errorf("help environment lacks %s", v)
		}
	}
}

// --no-color and NO_COLOR turn styling off even when CLICOLOR_FORCE asks
// for it.
func TestNoColor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  envMap
		want bool
	}{
		{"forced", nil, envMap{"CLICOLOR_FORCE": "1"}, true},
		{"--no-color", []string{"--no-color"}, envMap{"CLICOLOR_FORCE": "1"}, false},
		{"NO_COLOR", nil, envMap{"CLICOLOR_FORCE": "1", "NO_COLOR": "1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, ts := newTestFactory(nil)
			f.IO = newIOStreams(ts.In, ts.Out, ts.Err, tt.env.Getenv)
			var got bool
			cmd := &cobra.Command{Use: "probe", RunE: func(*cobra.Command, []string) error {
				got = f.IO.ColorEnabled() && f.IO.ErrColorEnabled()
				return nil
			}}
			if err := execCmd(t, f, cmd, tt.args...); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("colour = %v, want %v", got, tt.want)
			}
		})
	}
}
