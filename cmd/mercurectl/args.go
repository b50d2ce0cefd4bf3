package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// Positional-argument validators that fail with usage errors (exit 2) and
// say what is missing, unlike cobra's own.

// noArgs is cobra.NoArgs as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s: takes no arguments, got %q", commandName(cmd), args[0])
	}
	return nil
}

// exactArgs is cobra.ExactArgs as a usage error naming what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return usageErrorf("%s: missing %s", commandName(cmd), what)
		case len(args) > n:
			return usageErrorf("%s: too many arguments (want %s)", commandName(cmd), what)
		}
		return nil
	}
}

// commandName is cmd's path without the program name ("token verify"), as
// messages name commands: printError already starts them with
// "mercurectl: ".
func commandName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}
