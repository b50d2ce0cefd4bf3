package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mercurectl/mercurectl/internal/token"
)

// completionShell is one shell that cobra generates completions for.
type completionShell struct {
	name string
	// file is the script's name in the completions/ directory.
	file string
	// install says how to load the script, for the command's help.
	install string
	gen     func(root *cobra.Command, w io.Writer, descriptions bool) error
}

var completionShells = []completionShell{
	{
		name: "bash",
		file: "mercurectl.bash",
		install: `Load it in the current shell:

  source <(mercurectl completion bash)

Load it for every new session (needs the bash-completion package):

  mercurectl completion bash > ~/.local/share/bash-completion/completions/mercurectl`,
		gen: func(root *cobra.Command, w io.Writer, desc bool) error {
			return root.GenBashCompletionV2(w, desc)
		},
	},
	{
		name: "zsh",
		file: "_mercurectl",
		install: `If completion is not already enabled in your environment, enable it once:

  echo "autoload -U compinit; compinit" >> ~/.zshrc

Load it in the current shell:

  source <(mercurectl completion zsh)

Load it for every new session, from a directory in your $fpath:

  mercurectl completion zsh > "${fpath[1]}/_mercurectl"`,
		gen: func(root *cobra.Command, w io.Writer, desc bool) error {
			if desc {
				return root.GenZshCompletion(w)
			}
			return root.GenZshCompletionNoDesc(w)
		},
	},
	{
		name: "fish",
		file: "mercurectl.fish",
		install: `Load it in the current shell:

  mercurectl completion fish | source

Load it for every new session:

  mercurectl completion fish > ~/.config/fish/completions/mercurectl.fish`,
		gen: func(root *cobra.Command, w io.Writer, desc bool) error {
			return root.GenFishCompletion(w, desc)
		},
	},
	{
		name: "powershell",
		file: "mercurectl.ps1",
		install: `Load it in the current shell:

  mercurectl completion powershell | Out-String | Invoke-Expression

Load it for every new session: add the line above to your PowerShell profile.`,
		gen: func(root *cobra.Command, w io.Writer, desc bool) error {
			if desc {
				return root.GenPowerShellCompletionWithDesc(w)
			}
			return root.GenPowerShellCompletion(w)
		},
	},
}

// newCompletionCmd replaces cobra's default completion command, to give every
// shell an example and to add the hidden --dir that writes all the scripts
// for packaging (go generate ./cmd/mercurectl).
func newCompletionCmd(f *factory) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "completion <shell>",
		Short: "Generate the autocompletion script for a shell",
		Long: `Generate the autocompletion script of mercurectl for bash, zsh, fish or
PowerShell. See each shell's help for how to load it. Release archives and the
deb and rpm packages already ship the scripts.`,
		Example: `$ mercurectl completion bash > ~/.local/share/bash-completion/completions/mercurectl
$ mercurectl completion zsh > "${fpath[1]}/_mercurectl"
$ mercurectl completion fish > ~/.config/fish/completions/mercurectl.fish`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return runGroup(cmd, args)
			}
			if len(args) > 0 {
				return usageErrorf("completion --dir writes every shell's script and takes no argument")
			}
			return writeCompletions(cmd.Root(), dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "write the script of every shell into `DIR`")
	_ = cmd.Flags().MarkHidden("dir") // for packaging only

	for _, sh := range completionShells {
		var noDesc bool
		sub := &cobra.Command{
			Use:     sh.name,
			Short:   "Generate the autocompletion script for " + sh.name,
			Long:    "Generate the autocompletion script of mercurectl for " + sh.name + ".\n\n" + sh.install,
			Example: "$ mercurectl completion " + sh.name,
			Args:    noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return sh.gen(cmd.Root(), f.IO.Out, !noDesc)
			},
		}
		sub.Flags().BoolVar(&noDesc, "no-descriptions", false, "leave out the descriptions of commands and flags")
		cmd.AddCommand(sub)
	}
	return cmd
}

// writeCompletions writes every shell's script into dir.
func writeCompletions(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // G301: a public documentation directory
		return fmt.Errorf("write completions: %w", err)
	}
	for _, sh := range completionShells {
		var b bytes.Buffer
		if err := sh.gen(root, &b, true); err != nil {
			return fmt.Errorf("generate %s completion: %w", sh.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, sh.file), b.Bytes(), 0o644); err != nil { //nolint:gosec // G306: a public script
			return fmt.Errorf("write completions: %w", err)
		}
	}
	return nil
}

// flagValues are the fixed values that shells complete for flags, by flag
// name; a command whose flag of that name takes other values is listed
// under "command/flag" ("bench/output").
var flagValues = map[string][]cobra.Completion{
	"output":               outputFormats,
	"conformance/output":   {"text", "json"},
	"conformance/protocol": {"auto\tevery generation the hub serves", "7\tdraft-07", "8\tdraft-08"},
	"protocol":             {"auto\tdraft-08 when the hub serves metadata, else draft-07", "7\tdraft-07", "8\tdraft-08"},
	"match-type":           {"exact", "urlpattern", "template"},
	"format":               {formatLegacy + "\tdraft-07 mercure claim", formatRFC9068 + "\tdraft-08 access token"},
	"log-format":           {logFormatAuto, logFormatText, logFormatJSON},
	"log-level":            {"debug", "info", "warn", "error"},
}

// transportValues are the --transport completions: the store names and
// DSN prefixes, completed without a trailing space.
var transportValues = []cobra.Completion{"memory", "bolt://", "redis://", "rediss://", "unix://"}

// registerFlagCompletions gives every flag of the tree that takes one of a
// fixed set of values its completions: -o, --protocol, --match-type,
// --format, --alg and --jwt-alg, --transport, --log-format, --log-level.
func registerFlagCompletions(root *cobra.Command) {
	algs := token.SupportedAlgs()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(fl *pflag.Flag) {
			var values []cobra.Completion
			directive := cobra.ShellCompDirectiveNoFileComp
			switch name := fl.Name; {
			case flagValues[c.Name()+"/"+name] != nil:
				values = flagValues[c.Name()+"/"+name]
			case flagValues[name] != nil:
				values = flagValues[name]
			case name == "alg" || name == "jwt-alg":
				values = algs
			case name == "transport":
				values, directive = transportValues, cobra.ShellCompDirectiveNoFileComp|cobra.ShellCompDirectiveNoSpace
			default:
				return
			}
			_ = c.RegisterFlagCompletionFunc(fl.Name, func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return values, directive
			})
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
