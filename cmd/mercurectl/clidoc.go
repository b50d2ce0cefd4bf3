package main

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// cliDocTemplate is the hand-written frame of docs/cli.md: the prose about
// configuration, output formats and exit codes. Everything that the command
// tree knows (commands, flags, variables, exit codes) is filled in from it.
//
//go:embed cli.md.tmpl
var cliDocTemplate string

func newCLIDocCmd() *cobra.Command {
	return newGeneratorCmd(generator{
		use:   "docs --file <file>",
		short: "Generate the command-line reference in Markdown",
		long: `Generate the command-line reference (docs/cli.md) from the command tree:
every command with its flags, the environment variables and the exit codes.`,
		example: "$ mercurectl docs --file docs/cli.md",
		flag:    "file",
		usage:   "write the reference to `FILE`",
		run:     writeCLIDoc,
	})
}

// writeCLIDoc writes the command-line reference of the tree under root to file.
func writeCLIDoc(root *cobra.Command, file string) error {
	doc, err := renderCLIDoc(root)
	if err != nil {
		return fmt.Errorf("generate the command-line reference: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil { //nolint:gosec // G301: a public documentation directory
		return fmt.Errorf("generate the command-line reference: %w", err)
	}
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil { //nolint:gosec // G306: a public documentation file
		return fmt.Errorf("generate the command-line reference: %w", err)
	}
	return nil
}

// cliDocCommand is one command's section of docs/cli.md.
type cliDocCommand struct {
	Path   string // "mercurectl token mint"
	Anchor string // "token-mint"; "mercurectl" for the root
	Depth  int    // 0 for the root
	Short  string
	Body   string // Markdown: usage, description, examples, subcommands, flags
}

// renderCLIDoc renders docs/cli.md for the command tree under root.
func renderCLIDoc(root *cobra.Command) (string, error) {
	var cmds []cliDocCommand
	walk(root, func(c *cobra.Command) {
		if c != root && (!c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand()) {
			return
		}
		cmds = append(cmds, cliDocCommand{
			Path:   c.CommandPath(),
			Anchor: cliAnchor(root, c),
			Depth:  strings.Count(c.CommandPath(), " "),
			Short:  c.Short,
			Body:   commandDoc(root, c),
		})
	})
	t, err := template.New("cli.md").Funcs(template.FuncMap{
		"indent": func(n int) string { return strings.Repeat("  ", n) },
	}).Parse(cliDocTemplate)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	err = t.Execute(&b, map[string]any{
		"Commands":    cmds,
		"Environment": envDocTable(root),
		"EnvRules":    envRulesText,
		"OtherEnv":    otherEnvText,
		"ExitCodes":   exitCodeTable(),
		"Signals":     signalExitText,
	})
	return b.String(), err
}

// cliAnchor is the stable anchor of a command's section: its path without
// the root, words joined by "-" ("token-mint").
func cliAnchor(root, c *cobra.Command) string {
	if c == root {
		return root.Name()
	}
	return strings.ReplaceAll(strings.TrimPrefix(c.CommandPath(), root.Name()+" "), " ", "-")
}

// commandDoc renders the body of one command's section.
func commandDoc(root, c *cobra.Command) string {
	var b strings.Builder
	b.WriteString("```\n" + c.UseLine() + "\n```\n\n")
	if c.Long != "" {
		b.WriteString(longToMarkdown(c.Long) + "\n")
	} else if c.Short != "" {
		b.WriteString(mdEscape(c.Short) + ".\n\n")
	}
	if c.Example != "" {
		b.WriteString("Examples:\n\n```console\n" + strings.TrimRight(c.Example, "\n") + "\n```\n\n")
	}
	var subs []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() {
			subs = append(subs, fmt.Sprintf("- [`%s`](#%s): %s", sub.CommandPath(), cliAnchor(root, sub), mdEscape(sub.Short)))
		}
	}
	if len(subs) > 0 {
		b.WriteString("Commands:\n\n" + strings.Join(subs, "\n") + "\n\n")
	}
	if rows := flagRows(c.LocalNonPersistentFlags()); rows != "" {
		b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n" + rows + "\n")
	}
	if c == root {
		if rows := flagRows(c.PersistentFlags()); rows != "" {
			b.WriteString("Global flags, accepted by every command:\n\n| flag | environment | default | meaning |\n|---|---|---|---|\n" + rows + "\n")
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// flagRows renders the visible flags of fs as Markdown table rows, leaving
// out --help, which every command has.
func flagRows(fs *pflag.FlagSet) string {
	var b strings.Builder
	fs.VisitAll(func(fl *pflag.Flag) {
		if fl.Hidden || fl.Name == "help" {
			return
		}
		placeholder, usage := pflag.UnquoteUsage(fl)
		if i := strings.LastIndex(usage, " [$"); i >= 0 {
			usage = usage[:i]
		}
		name := "--" + fl.Name
		if fl.Shorthand != "" {
			name = "-" + fl.Shorthand + ", " + name
		}
		if placeholder != "" {
			name += " " + placeholder
		}
		var envs []string
		for _, e := range flagEnv(fl) {
			envs = append(envs, "`$"+e+"`")
		}
		def := ""
		if !zeroDefault(fl) {
			def = "`" + fl.DefValue + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", cellEscape(name), strings.Join(envs, ", else "), cellEscape(def), cellEscape(mdEscape(usage)))
	})
	return b.String()
}

// zeroDefault reports whether a flag's default says nothing worth a cell,
// as pflag decides for its own "(default …)" suffix.
func zeroDefault(fl *pflag.Flag) bool {
	switch fl.DefValue {
	case "", "false", "0", "0s", "[]", "<nil>":
		return true
	}
	return false
}

// envDocTable renders the variables bound to flags as a Markdown table.
func envDocTable(root *cobra.Command) string {
	names, uses := envFlagUses(root)
	var b strings.Builder
	b.WriteString("| variable | read by |\n|---|---|\n")
	for _, name := range names {
		var cells []string
		for _, u := range uses[name] {
			cell := fmt.Sprintf("[`%s --%s`](#%s)", u.command, u.flag, strings.ReplaceAll(u.command, " ", "-"))
			if u.after != "" {
				cell += " (when `$" + u.after + "` is empty)"
			}
			cells = append(cells, cell)
		}
		fmt.Fprintf(&b, "| `%s` | %s |\n", name, strings.Join(cells, "<br>"))
	}
	return b.String()
}

// exitCodeTable renders exitCodeDocs as a Markdown table.
func exitCodeTable() string {
	var b strings.Builder
	b.WriteString("| code | meaning |\n|---|---|\n")
	for _, d := range exitCodeDocs {
		fmt.Fprintf(&b, "| %d | %s |\n", d.code, mdEscape(d.meaning))
	}
	return b.String()
}

// walk calls fn for every command of the tree under root, except cobra's
// hidden completion plumbing.
func walk(root *cobra.Command, fn func(*cobra.Command)) {
	fn(root)
	for _, c := range root.Commands() {
		if strings.HasPrefix(c.Name(), "__") {
			continue
		}
		walk(c, fn)
	}
}

// longToMarkdown turns a command's Long text into Markdown: paragraphs stay
// paragraphs, and runs of indented lines (command lines, aligned lists)
// become code blocks, shown verbatim.
func longToMarkdown(long string) string {
	var b strings.Builder
	lines := strings.Split(strings.TrimRight(long, "\n"), "\n")
	for i := 0; i < len(lines); {
		if strings.HasPrefix(lines[i], "  ") {
			b.WriteString("```text\n")
			for ; i < len(lines) && (strings.HasPrefix(lines[i], "  ") || lines[i] == "" && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "  ")); i++ {
				b.WriteString(strings.TrimPrefix(lines[i], "  ") + "\n")
			}
			b.WriteString("```\n")
			continue
		}
		b.WriteString(mdEscape(lines[i]) + "\n")
		i++
	}
	return b.String()
}

// mdEscape escapes the characters that Markdown would read as markup in
// plain help text: HTML tags, emphasis and links.
func mdEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "`", "\\`").Replace(s)
}

// cellEscape escapes the column separator of a Markdown table cell.
func cellEscape(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
