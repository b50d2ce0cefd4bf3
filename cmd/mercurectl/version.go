package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mercurectl/mercurectl/internal/version"
)

// versionOptions are the inputs of `mercurectl version`.
type versionOptions struct {
	IO   *IOStreams
	Info version.Info

	JSON bool
}

func newVersionCmd(f *factory, runF func(*versionOptions) error) *cobra.Command {
	opts := &versionOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of mercurectl",
		Long: `Print the version of mercurectl, the commit it was built from, the build date,
and the Go toolchain and platform. With --json, print them as one JSON object.`,
		Example: `$ mercurectl version
$ mercurectl version --json`,
		Args: noArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			opts.Info = version.Get()
			if runF != nil {
				return runF(opts)
			}
			return runVersion(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON object")
	return cmd
}

func runVersion(opts *versionOptions) error {
	if !opts.JSON {
		_, err := fmt.Fprintf(opts.IO.Out, "mercurectl version %s\n", opts.Info)
		return err
	}
	b, err := json.Marshal(struct {
		Version   string `json:"version"`
		Commit    string `json:"commit,omitempty"`
		Date      string `json:"date,omitempty"`
		GoVersion string `json:"go"`
		Platform  string `json:"platform"`
	}{opts.Info.Version, opts.Info.Commit, opts.Info.Date, opts.Info.GoVersion, opts.Info.Platform})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(opts.IO.Out, "%s\n", b)
	return err
}
