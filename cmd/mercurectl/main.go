// Command mercurectl runs a Mercure hub and talks to any Mercure hub: see
// README.md, or run `mercurectl help`.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
