package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestParseBool(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"1", "true", "TRUE", "yes", "Yes", "on", " on "} {
		if b, err := parseBool(s); err != nil || !b {
			t.Errorf("parseBool(%q) = %v, %v; want true", s, b, err)
		}
	}
	for _, s := range []string{"0", "false", "False", "no", "off", "OFF"} {
		if b, err := parseBool(s); err != nil || b {
			t.Errorf("parseBool(%q) = %v, %v; want false", s, b, err)
		}
	}
	for _, s := range []string{"", "2", "y", "enabled", "tru"} {
		if _, err := parseBool(s); err == nil {
			t.Errorf("parseBool(%q) succeeded, want an error", s)
		}
	}
}

func TestSplitList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a,b", []string{"a", "b"}},
		{"a b", []string{"a", "b"}},
		{" https://a.example, https://b.example  ,,https://c.example ", []string{"https://a.example", "https://b.example", "https://c.example"}},
		{"a\tb\nc", []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		if got := splitList(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReadSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nl := write("nl", "s3cr3t\n")
	crlf := write("crlf", "s3cr3t\r\n")
	two := write("two", "s3cr3t\n\n")
	none := write("none", "s3cr3t")
	empty := write("empty", "\n")
	pem := write("pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")

	tests := []struct {
		name    string
		value   string
		stdin   string
		want    string
		wantErr string
	}{
		{"literal", "s3cr3t", "", "s3cr3t", ""},
		{"literal keeps newline", "s3cr3t\n", "", "s3cr3t\n", ""},
		{"literal does not read stdin", "x", "from stdin", "x", ""},
		{"file strips one newline", "@" + nl, "", "s3cr3t", ""},
		{"file strips one CRLF", "@" + crlf, "", "s3cr3t", ""},
		{"file strips only one newline", "@" + two, "", "s3cr3t\n", ""},
		{"file without newline", "@" + none, "", "s3cr3t", ""},
		{"PEM file keeps inner newlines", "@" + pem, "", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", ""},
		{"stdin", "@-", "s3cr3t\n", "s3cr3t", ""},
		{"empty stdin", "@-", "", "", "empty"},
		{"empty file", "@" + empty, "", "", "empty"},
		{"missing file", "@" + filepath.Join(dir, "nope"), "", "", "no such file"},
		{"bare @", "@", "", "", "file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := readSecret(tt.value, strings.NewReader(tt.stdin))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("readSecret(%q) error = %v, want one containing %q", tt.value, err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("readSecret(%q) = %q, %v; want %q", tt.value, got, err, tt.want)
			}
		})
	}
}

// envTestCmd has one flag of each kind bound to a variable.
type envTestOpts struct {
	Addr    string
	Anon    bool
	Origins []string
	Key     string
}

func newEnvTestCmd(opts *envTestOpts, ran *bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:  "envtest",
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { *ran = true; return nil },
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Addr, "addr", "localhost:3000", "listen address")
	bindEnv(fl, "addr", "T_ADDR")
	fl.BoolVar(&opts.Anon, "anonymous", false, "anonymous")
	bindEnv(fl, "anonymous", "T_ANON")
	fl.StringArrayVar(&opts.Origins, "origin", nil, "origin")
	bindEnv(fl, "origin", "T_ORIGINS")
	fl.StringVar(&opts.Key, "key", "", "key")
	bindEnv(fl, "key", "T_KEY", "T_SECRET")
	return cmd
}

func TestApplyEnvPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		env      envMap
		want     envTestOpts
		wantCode int
		wantErr  string
	}{
		{"defaults", nil, nil, envTestOpts{Addr: "localhost:3000"}, 0, ""},
		{"env over default", nil, envMap{"T_ADDR": ":4000", "T_ANON": "yes", "T_ORIGINS": "https://a.example, https://b.example"},
			envTestOpts{Addr: ":4000", Anon: true, Origins: []string{"https://a.example", "https://b.example"}}, 0, ""},
		{"flag over env", []string{"--addr", ":5000", "--anonymous=false", "--origin", "https://c.example"},
			envMap{"T_ADDR": ":4000", "T_ANON": "on", "T_ORIGINS": "https://a.example"},
			envTestOpts{Addr: ":5000", Origins: []string{"https://c.example"}}, 0, ""},
		{"first variable wins", nil, envMap{"T_KEY": "k", "T_SECRET": "s"}, envTestOpts{Addr: "localhost:3000", Key: "k"}, 0, ""},
		{"second variable as fallback", nil, envMap{"T_SECRET": "s"}, envTestOpts{Addr: "localhost:3000", Key: "s"}, 0, ""},
		{"empty variable is unset", nil, envMap{"T_KEY": "", "T_SECRET": "s"}, envTestOpts{Addr: "localhost:3000", Key: "s"}, 0, ""},
		{"env false", nil, envMap{"T_ANON": "off"}, envTestOpts{Addr: "localhost:3000"}, 0, ""},
		{"bad env bool", nil, envMap{"T_ANON": "maybe"}, envTestOpts{}, 2, "T_ANON (--anonymous)"},
		{"bad flag", []string{"--nope"}, nil, envTestOpts{}, 2, "unknown flag: --nope"},
		{"bad flag value", []string{"--anonymous=maybe"}, nil, envTestOpts{}, 2, "invalid argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, _ := newTestFactory(tt.env)
			var got envTestOpts
			var ran bool
			err := execCmd(t, f, newEnvTestCmd(&got, &ran), tt.args...)
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit code %d (err %v), want %d", code, err, tt.wantCode)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				if ran {
					t.Fatal("the command ran despite the error")
				}
				return
			}
			if got.Addr != tt.want.Addr || got.Anon != tt.want.Anon || got.Key != tt.want.Key || !slices.Equal(got.Origins, tt.want.Origins) {
				t.Fatalf("options = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBindEnvShowsVariablesInHelp(t *testing.T) {
	t.Parallel()
	var opts envTestOpts
	var ran bool
	cmd := newEnvTestCmd(&opts, &ran)
	if u := cmd.Flags().Lookup("key").Usage; u != "key [$T_KEY, else $T_SECRET]" {
		t.Errorf("usage = %q", u)
	}
	if u := cmd.Flags().Lookup("addr").DefValue; u != "localhost:3000" {
		t.Errorf("default = %q: the environment must not change defaults", u)
	}
}

func TestByteSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int64
		str     string
		wantErr bool
	}{
		{"1048576", 1 << 20, "1MiB", false},
		{"1MiB", 1 << 20, "1MiB", false},
		{"512KiB", 512 << 10, "512KiB", false},
		{"2GiB", 2 << 30, "2GiB", false},
		{"1MB", 1e6, "1000000", false},
		{"10KB", 10e3, "10000", false},
		{"100B", 100, "100", false},
		{"1536", 1536, "1536", false},
		{"3K", 3 << 10, "3KiB", false},
		{" 4 MiB ", 4 << 20, "4MiB", false},
		{"-1", 0, "", true},
		{"1.5MiB", 0, "", true},
		{"MiB", 0, "", true},
		{"lots", 0, "", true},
		{"99999999999GiB", 0, "", true},
	}
	for _, tt := range tests {
		var b byteSize
		err := b.Set(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("Set(%q) = %d, want an error", tt.in, b)
			}
			continue
		}
		if err != nil || int64(b) != tt.want || b.String() != tt.str {
			t.Errorf("Set(%q) = %d (%s), %v; want %d (%s)", tt.in, b, b.String(), err, tt.want, tt.str)
		}
	}
}
