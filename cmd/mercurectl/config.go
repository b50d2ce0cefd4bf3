package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Configuration helpers shared by every command
// (docs/cli.md#configuration): flag > environment variable > default, env booleans and lists,
// secrets from files or stdin.

// envAnnotation is the flag annotation listing the environment variables a
// flag falls back to, in order of preference.
const envAnnotation = "mercurectl_env"

// bindEnv makes the flag named name of fs fall back to the first non-empty
// variable of envs when it is not given on the command line, and names the
// variables in the flag's help. The flag's default (shown in help and man
// pages) never depends on the environment. The values are applied by
// applyEnv, which the root command runs before every command.
//
// Boolean flags read 1/true/yes/on and 0/false/no/off; string-array and
// string-slice flags read a list separated by spaces or commas; secrets stay
// raw here (@path and @- are resolved by readSecret, whatever the source).
func bindEnv(fs *pflag.FlagSet, name string, envs ...string) {
	f := fs.Lookup(name)
	if f == nil || len(envs) == 0 {
		return // caught by TestEnvBindings, which checks every documented binding
	}
	names := make([]string, len(envs))
	for i, e := range envs {
		names[i] = "$" + e
	}
	f.Usage += " [" + strings.Join(names, ", else ") + "]"
	_ = fs.SetAnnotation(name, envAnnotation, envs) // cannot fail: the flag exists
}

// flagEnv returns the environment variables bound to f, if any.
func flagEnv(f *pflag.Flag) []string { return f.Annotations[envAnnotation] }

// applyEnv sets every flag of cmd (its own and inherited ones) that has bound
// environment variables and was not given on the command line, from the
// first of those variables that is non-empty. The flag is not marked as
// Changed, so flag-group checks only ever see the command line.
func applyEnv(cmd *cobra.Command, getenv func(string) string) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		envs := flagEnv(f)
		if len(envs) == 0 || f.Changed {
			return
		}
		for _, name := range envs {
			v := getenv(name)
			if v == "" {
				continue
			}
			if err := setFromEnv(f, v); err != nil {
				errs = append(errs, usageErrorf("invalid value %q for %s (--%s): %w", v, name, f.Name, err))
			}
			return
		}
	})
	return errors.Join(errs...)
}

// setFromEnv sets f from an environment variable's value.
func setFromEnv(f *pflag.Flag, v string) error {
	switch f.Value.Type() {
	case "bool":
		b, err := parseBool(v)
		if err != nil {
			return err
		}
		return f.Value.Set(strconv.FormatBool(b))
	case "stringArray", "stringSlice":
		for _, item := range splitList(v) {
			if err := f.Value.Set(item); err != nil {
				return err
			}
		}
		return nil
	default:
		return f.Value.Set(v)
	}
}

// parseBool reads an environment boolean: 1/true/yes/on or 0/false/no/off, in
// any case.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, errors.New("want 1/true/yes/on or 0/false/no/off")
}

// splitList splits an environment list on spaces and commas, dropping empty
// items.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
}

// readSecret resolves the value of a secret flag or variable (a key or a
// token): "@-" reads stdin, "@path" reads the file, anything else is the
// secret itself. From stdin or a file, one trailing newline ("\n" or
// "\r\n") is stripped, and an empty result is an error. stdin is read only
// for "@-".
func readSecret(value string, stdin io.Reader) ([]byte, error) {
	var (
		b   []byte
		err error
		src string
	)
	switch {
	case value == "@-":
		src = "stdin"
		if stdin == nil {
			return nil, errors.New("read secret from stdin: no stdin")
		}
		b, err = io.ReadAll(stdin)
	case strings.HasPrefix(value, "@"):
		src = value[1:]
		if src == "" {
			return nil, errors.New(`"@" needs a file name ("@path") or "-" for stdin`)
		}
		b, err = os.ReadFile(src) //nolint:gosec // G304: reading the file the user named is the point
	default:
		return []byte(value), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	b = trimOneNewline(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("read secret from %s: empty", src)
	}
	return b, nil
}

// trimOneNewline strips one trailing "\n" or "\r\n".
func trimOneNewline(b []byte) []byte {
	if b, ok := bytes.CutSuffix(b, []byte("\n")); ok {
		b, _ = bytes.CutSuffix(b, []byte("\r"))
		return b
	}
	return b
}

// byteSize is a flag value holding a number of bytes, written as an integer
// with an optional unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB
// (powers of 1024); "1MiB" and "1048576" are the same.
type byteSize int64

var byteUnits = []struct {
	suffix string
	factor int64
}{
	// Longest suffixes first, so that "KiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30},
	{"B", 1},
}

// bytes returns the size as a count of bytes; Set never accepts a negative
// size.
func (b byteSize) bytes() uint64 {
	return uint64(max(b, 0)) //nolint:gosec // G115: clamped to 0 or more just before
}

// String implements pflag.Value, with the largest binary unit that divides
// the size exactly.
func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		suffix string
		factor int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.factor == 0 {
			return strconv.FormatInt(n/u.factor, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// Set implements pflag.Value.
func (b *byteSize) Set(s string) error {
	s = strings.TrimSpace(s)
	factor := int64(1)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, factor = strings.TrimSpace(num), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return errors.New("want a non-negative number of bytes, such as 1048576 or 1MiB")
	}
	if n > math.MaxInt64/factor {
		return errors.New("size too large")
	}
	*b = byteSize(n * factor)
	return nil
}

// Type implements pflag.Value.
func (*byteSize) Type() string { return "bytes" }
