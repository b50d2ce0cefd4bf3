package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mercurectl/mercurectl/internal/version"
)

// run executes mercurectl with args (without the program name) and returns
// the exit code. main and the testscript harness both call it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	f := newFactory(stdin, stdout, stderr, getenv)
	root := newRootCmd(f)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(context.Background())
	if err != nil {
		printError(f.IO.ErrOut, cmd, err)
	}
	return exitCode(err)
}

// newRootCmd builds a fresh command tree, never a global one: tests and the
// documentation generators each get their own, with nothing shared.
func newRootCmd(f *factory) *cobra.Command {
	root := newRootCmdBase(f)
	root.AddCommand(
		newServeCmd(f, nil),
		newTokenCmd(f),
		newPublishCmd(f, nil),
		newSubscribeCmd(f, nil),
		newReplayCmd(f, nil),
		newConformanceCmd(f, nil),
		newBenchCmd(f, nil),
		newVersionCmd(f, nil),
		newCompletionCmd(f),
		newManCmd(f),
		newCLIDocCmd(),
	)
	// Help topics come last: the environment topic lists the variables
	// bound by all the commands above.
	root.AddCommand(newExitCodesTopic(f), newEnvironmentTopic(f, root))
	root.SetHelpCommand(newHelpCmd())
	registerFlagCompletions(root)
	return root
}

// newRootCmdBase returns the root command without subcommands: its flags,
// its error handling, and the hook that applies environment variables to
// every command's flags. Unit tests hang the command under test on it.
func newRootCmdBase(f *factory) *cobra.Command {
	var noColor bool
	info := version.Get()
	root := &cobra.Command{
		Use:   "mercurectl",
		Short: "Run a Mercure hub and talk to any Mercure hub",
		Long: `mercurectl runs a Mercure hub (pub/sub over Server-Sent Events, with JWT
authorization) and works with any Mercure hub from the command line: mint,
inspect and verify tokens, publish updates, subscribe to topics and replay
their history.

The hub speaks both protocol generations at once: draft-07, used by every 0.x
hub and most deployed clients, and draft-08, used by hubs from 1.0 on.

Every flag that names an environment variable reads it when the flag is not
given (see 'mercurectl help environment'). Exit codes are listed by
'mercurectl help exit-codes'.`,
		Example: `$ mercurectl serve --dev
$ mercurectl token mint --key @secret.txt --publish 'https://example.com/books/{id}'
$ mercurectl help exit-codes`,
		Version:           info.Version,
		SilenceErrors:     true,
		SilenceUsage:      true,
		DisableAutoGenTag: true, // man pages carry no generation date (reproducible)
		Args:              cobra.ArbitraryArgs,
		RunE:              runGroup,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if noColor {
				f.IO.DisableColor()
			}
			return applyEnv(cmd, f.Getenv)
		},
	}
	root.SetVersionTemplate("mercurectl version " + info.String() + "\n")
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		// "mercurectl subscibe --topic x": the unknown flag is a symptom of
		// the unknown command before it, which is what to report.
		if cmd == root {
			if args := cmd.Flags().Args(); len(args) > 0 {
				return unknownCommand(root, args[0])
			}
		}
		return &usageError{err: err}
	})
	root.CompletionOptions.DisableDefaultCmd = true // newCompletionCmd replaces it
	root.PersistentFlags().BoolVar(&noColor, "no-color", false, "disable colour and styling on every stream")
	return root
}

// runGroup is the RunE of commands that only group subcommands: with no
// argument it prints the help, and any argument is an unknown subcommand.
// (Without it, cobra would print the help and exit 0 for "mercurectl tokn".)
func runGroup(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return unknownCommand(cmd, args[0])
}

// unknownCommand returns the usage error for an unknown subcommand of cmd,
// with suggestions.
func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which SuggestionsFor does not apply
	}
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += " (did you mean " + strings.Join(s, " or ") + "?)"
	}
	return &usageError{err: fmt.Errorf("%s", msg)}
}

// newHelpCmd replaces cobra's help command, which prints the root's usage
// and exits 0 for an unknown topic; this one is a usage error.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command | topic]",
		Short: "Show help for a command or a topic",
		Long: `Show the help of any command, or one of the help topics:

  exit-codes    what each exit code means
  environment   the environment variables mercurectl reads`,
		Example: `$ mercurectl help serve
$ mercurectl help token mint
$ mercurectl help exit-codes`,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			parent, rest, err := cmd.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, c := range parent.Commands() {
				if (c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand()) && strings.HasPrefix(c.Name(), toComplete) {
					names = append(names, cobra.CompletionWithDesc(c.Name(), c.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil || len(rest) > 0 {
				msg := fmt.Sprintf("unknown help topic %q", strings.Join(args, " "))
				parent, more, err := cmd.Root().Find(args[:len(args)-1])
				if err != nil || len(more) > 0 {
					parent = cmd.Root()
				}
				if s := helpSuggestions(parent, args[len(args)-1]); len(s) > 0 {
					msg += ": did you mean " + strings.Join(s, " or ") + "?"
				}
				return usageErrorf("%s (see 'mercurectl help')", msg)
			}
			target.InitDefaultHelpFlag()
			target.InitDefaultVersionFlag()
			return target.Help()
		},
	}
}

// helpSuggestions returns the subcommands and help topics of root whose name
// is close to name: a prefix of it, or at most two edits away. (cobra's own
// suggestions leave help topics out.)
func helpSuggestions(root *cobra.Command, name string) []string {
	var out []string
	for _, c := range root.Commands() {
		if !c.IsAvailableCommand() && !c.IsAdditionalHelpTopicCommand() {
			continue
		}
		if strings.HasPrefix(c.Name(), name) || editDistance(strings.ToLower(name), c.Name()) <= 2 {
			out = append(out, c.Name())
		}
	}
	return out
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
