package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// newHelpTopic returns a help topic: a command that is never run, whose help
// is its Long text. `mercurectl help <topic>` prints it to stdout, and the
// root's help lists it under "Additional help topics".
func newHelpTopic(f *factory, name, short, long, example string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     name,
		Short:   short,
		Long:    long,
		Example: example,
	}
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) {
		_, _ = fmt.Fprint(f.IO.Out, c.Long) // cobra's help functions cannot report errors
	})
	return cmd
}

// newExitCodesTopic is `mercurectl help exit-codes`, written from exitCodeDocs.
func newExitCodesTopic(f *factory) *cobra.Command {
	var b strings.Builder
	b.WriteString("mercurectl exits with one of these codes, whatever the command:\n\n")
	for _, d := range exitCodeDocs {
		fmt.Fprintf(&b, "  %-5d %s\n", d.code, d.meaning)
	}
	b.WriteString("\n" + signalExitText)
	return newHelpTopic(f, "exit-codes", "Exit codes of every command", b.String(),
		"$ mercurectl help exit-codes")
}

// newEnvironmentTopic is `mercurectl help environment`. The variables bound to
// flags are listed from the command tree under root, so the topic cannot
// drift from the flags.
func newEnvironmentTopic(f *factory, root *cobra.Command) *cobra.Command {
	var b strings.Builder
	b.WriteString(envRulesText + "\n")
	b.WriteString(envFlagDocs(root))
	b.WriteString("\n" + otherEnvText)
	return newHelpTopic(f, "environment", "Environment variables that mercurectl reads", b.String(),
		"$ mercurectl help environment\n$ MERCURE_JWT_KEY=@secret.txt mercurectl serve")
}

// envRulesText says how variables are read, in the environment topic and in
// docs/cli.md.
const envRulesText = `mercurectl reads these environment variables. A flag given on the command line
wins over its variable, and the variable wins over the flag's default.

Booleans accept 1, true, yes, on and 0, false, no, off. Lists (origins,
issuers) are separated by spaces or commas. Secrets (keys, tokens) also accept
@path, to read a file, and @-, to read stdin; one trailing newline is stripped.
`

// signalExitText is how signals map to exit codes, in the exit-codes topic
// and in docs/cli.md.
const signalExitText = `A first SIGINT or SIGTERM stops serve, subscribe and replay cleanly (exit 0);
a second one, while they are still shutting down, stops them at once (exit 130).
`

// otherEnvText lists the variables that no flag reads, in the environment
// topic and in docs/cli.md.
const otherEnvText = `Output:

  NO_COLOR          set to anything non-empty: no colour or styling anywhere
                    (as --no-color)
  CLICOLOR          0: no colour, even on a terminal
  CLICOLOR_FORCE    set and not 0: colour even when the stream is not a
                    terminal (NO_COLOR still wins)
  COLORTERM, TERM   the palette when colour is on (truecolor, 256 colours or
                    16 colours); TERM=dumb means no colour

Documentation:

  SOURCE_DATE_EPOCH  the date written in generated man pages (Unix seconds)
`

// envUse is one flag that reads an environment variable.
type envUse struct {
	command string // the command path without the root, such as "token mint"
	flag    string // the flag name, without dashes
	usage   string // the flag's usage, without placeholders' backquotes or the env suffix
	after   string // the variable this one stands in for when it is empty, if any
}

// envFlagUses returns, per environment variable, the flags that read it, from
// the flags' env annotations (see bindEnv), and the variables' names sorted.
func envFlagUses(root *cobra.Command) ([]string, map[string][]envUse) {
	uses := map[string][]envUse{}
	var visit func(c *cobra.Command)
	visit = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(fl *pflag.Flag) {
			envs := flagEnv(fl)
			_, usage := pflag.UnquoteUsage(fl) // drops the backquotes around placeholders
			if i := strings.LastIndex(usage, " [$"); i >= 0 {
				usage = usage[:i]
			}
			for i, e := range envs {
				u := envUse{command: strings.TrimPrefix(c.CommandPath(), root.Name()+" "), flag: fl.Name, usage: usage}
				if i > 0 {
					u.after = envs[i-1]
				}
				uses[e] = append(uses[e], u)
			}
		})
		for _, sub := range c.Commands() {
			visit(sub)
		}
	}
	visit(root)
	names := make([]string, 0, len(uses))
	for name := range uses {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, uses
}

// envFlagDocs lists, per environment variable, the flags that read it.
func envFlagDocs(root *cobra.Command) string {
	names, uses := envFlagUses(root)
	var b strings.Builder
	b.WriteString("Flags:\n")
	for _, name := range names {
		fmt.Fprintf(&b, "\n  %s\n", name)
		for _, u := range uses[name] {
			line := fmt.Sprintf("%s --%s: %s", u.command, u.flag, u.usage)
			if u.after != "" {
				line += " (when $" + u.after + " is empty)"
			}
			fmt.Fprintf(&b, "      %s\n", line)
		}
	}
	return b.String()
}
