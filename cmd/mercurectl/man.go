package main

// Regenerate the committed man pages, completion scripts and command-line
// reference (TestDocsUpToDate fails when they are stale):
//
//	go generate ./cmd/mercurectl
//
//go:generate go run . man --dir ../../man
//go:generate go run . completion --dir ../../completions
//go:generate go run . docs --file ../../docs/cli.md

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
)

// defaultManDate is the date of generated man pages when SOURCE_DATE_EPOCH
// is not set: fixed, so that regenerating them changes nothing.
var defaultManDate = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// manOptions are the inputs of the hidden `mercurectl man`.
type manOptions struct {
	Getenv func(string) string
	Root   *cobra.Command

	Dir string
}

func newManCmd(f *factory) *cobra.Command {
	return newGeneratorCmd(generator{
		use:   "man --dir <dir>",
		short: "Generate the man pages",
		long: `Generate one man page per command into a directory, replacing the pages
already there. The page date comes from SOURCE_DATE_EPOCH (Unix seconds), or
is fixed, so that the output is reproducible.`,
		example: "$ mercurectl man --dir man/",
		flag:    "dir",
		usage:   "write the pages into `DIR`",
		run: func(root *cobra.Command, dir string) error {
			return runMan(&manOptions{Getenv: f.Getenv, Root: root, Dir: dir})
		},
	})
}

// generator describes a hidden command that writes documentation generated
// from the command tree (man pages, docs/cli.md) to the path its one flag
// names; go generate runs them.
type generator struct {
	use, short, long, example string
	flag, usage               string // the required path flag
	run                       func(root *cobra.Command, path string) error
}

func newGeneratorCmd(g generator) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:     g.use,
		Short:   g.short,
		Long:    g.long,
		Example: g.example,
		Hidden:  true, // for the repository and packaging: go generate ./cmd/mercurectl
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return usageErrorf("%s: --%s is required", cmd.Name(), g.flag)
			}
			return g.run(cmd.Root(), path)
		},
	}
	cmd.Flags().StringVar(&path, g.flag, "", g.usage)
	return cmd
}

func runMan(opts *manOptions) error {
	date := defaultManDate
	if epoch := opts.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		sec, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return usageErrorf("invalid SOURCE_DATE_EPOCH %q: want Unix seconds", epoch)
		}
		date = time.Unix(sec, 0).UTC()
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil { //nolint:gosec // G301: a public documentation directory
		return fmt.Errorf("generate man pages: %w", err)
	}
	// Remove the pages of commands that no longer exist.
	old, err := filepath.Glob(filepath.Join(opts.Dir, "mercurectl*.1"))
	if err != nil {
		return fmt.Errorf("generate man pages: %w", err)
	}
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("generate man pages: %w", err)
		}
	}
	header := &doc.GenManHeader{
		Section: "1",
		Date:    &date,
		Source:  "mercurectl",
		Manual:  "mercurectl manual",
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		prepareForMan(c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(opts.Root)
	if err := doc.GenManTree(opts.Root, header, opts.Dir); err != nil {
		return fmt.Errorf("generate man pages: %w", err)
	}
	return nil
}

// prepareForMan adapts the help texts of c to cobra/doc, which renders them
// as Markdown: "<token>" would vanish as an HTML tag, and the indented
// command lines of Long would run into one paragraph. It changes c, so the
// man command only runs on a tree built for it.
func prepareForMan(c *cobra.Command) {
	c.Use = escapeMarkdown(c.Use)
	c.Short = escapeMarkdown(c.Short)
	lines := strings.Split(c.Long, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "  ") {
			lines[i] = "  " + l // four spaces: a Markdown code block, shown verbatim
		} else {
			lines[i] = escapeMarkdown(l)
		}
	}
	c.Long = strings.Join(lines, "\n")
	c.Flags().VisitAll(func(fl *pflag.Flag) { fl.Usage = escapeMarkdown(fl.Usage) })
}

// escapeMarkdown escapes the characters that Markdown would read as HTML.
func escapeMarkdown(s string) string {
	return strings.NewReplacer("<", `\<`, ">", `\>`).Replace(s)
}
