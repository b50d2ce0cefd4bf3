package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// manDate matches the date field of a man page's .TH line, which
// SOURCE_DATE_EPOCH may legitimately change.
var manDate = regexp.MustCompile(`(?m)^(\.TH "[^"]*" "[^"]*" )"[^"]*"`)

// readDir returns the files of dir by name, with man page dates blanked.
func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = manDate.ReplaceAllString(string(b), `$1"DATE"`)
	}
	return files
}

// The committed man pages, completion scripts and docs/cli.md are those the
// current command tree generates: generated documentation that nobody
// regenerated would silently describe an older binary. Regenerate them with
// `go generate ./cmd/mercurectl`.
func TestDocsUpToDate(t *testing.T) {
	t.Parallel()
	t.Run("cli.md", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "cli.md")
		if code, _, stderr := runTest(t, nil, "docs", "--file", file); code != 0 {
			t.Fatalf("docs --file: exit %d: %s", code, stderr)
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("docs/cli.md is stale; regenerate with: go generate ./cmd/mercurectl")
		}
	})
	for _, d := range []struct{ args []string }{
		{[]string{"man", "--dir"}},
		{[]string{"completion", "--dir"}},
	} {
		committed := filepath.Join("..", "..", map[string]string{"man": "man", "completion": "completions"}[d.args[0]])
		t.Run(d.args[0], func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			code, _, stderr := runTest(t, nil, append(d.args, tmp)...)
			if code != 0 {
				t.Fatalf("%s: exit %d: %s", strings.Join(d.args, " "), code, stderr)
			}
			want, got := readDir(t, tmp), readDir(t, committed)
			var names []string
			for name := range want {
				names = append(names, name)
			}
			for name := range got {
				if _, ok := want[name]; !ok {
					names = append(names, name)
				}
			}
			slices.Sort(names)
			for _, name := range names {
				w, inWant := want[name]
				g, inGot := got[name]
				switch {
				case !inGot:
					t.Errorf("%s is missing from %s/", name, committed)
				case !inWant:
					t.Errorf("%s/%s belongs to no command", committed, name)
				case w != g:
					t.Errorf("%s/%s is stale", committed, name)
				}
			}
			if t.Failed() {
				t.Log("regenerate with: go generate ./cmd/mercurectl")
			}
		})
	}
}

func TestManDate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		epoch    string
		want     string
		wantCode int
	}{
		{"", `"Jan 2026"`, 0},
		{"0", `"Jan 1970"`, 0},
		{"1700000000", `"Nov 2023"`, 0},
		{"yesterday", "", 2},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		code, _, stderr := runTest(t, envMap{"SOURCE_DATE_EPOCH": tt.epoch}, "man", "--dir", dir)
		if code != tt.wantCode {
			t.Errorf("SOURCE_DATE_EPOCH=%q: exit %d (%s), want %d", tt.epoch, code, stderr, tt.wantCode)
			continue
		}
		if tt.wantCode != 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "mercurectl.1"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `.TH "MERCURECTL" "1" `+tt.want) {
			t.Errorf("SOURCE_DATE_EPOCH=%q: page header %q, want date %s", tt.epoch, strings.SplitN(string(b), "\n", 3)[1], tt.want)
		}
	}
}

// man --dir replaces the pages of commands that no longer exist, and leaves
// other files alone.
func TestManRemovesStalePages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"mercurectl-gone.1", "README"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, stderr := runTest(t, nil, "man", "--dir", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "mercurectl-gone.1")); !os.IsNotExist(err) {
		t.Error("the page of a removed command is still there")
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
		t.Errorf("an unrelated file was removed: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "mercurectl-token-inspect.1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `mercurectl token inspect <token>`) {
		t.Errorf("the synopsis lost its placeholder:\n%s", b)
	}
}

// Every command's --help output is pinned by a golden file in
// testdata/script/help_*.txtar (issue 5).
func TestEveryCommandHasHelpGolden(t *testing.T) {
	t.Parallel()
	scripts, err := filepath.Glob(filepath.Join("testdata", "script", "help_*.txtar"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no help scripts: %v", err)
	}
	var all strings.Builder
	for _, s := range scripts {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	f, _ := newTestFactory(nil)
	root := newRootCmd(f)
	root.InitDefaultHelpCmd()
	walk(root, func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c != root {
			return
		}
		path := strings.TrimSpace(strings.TrimPrefix(c.CommandPath(), root.Name()))
		line := "exec mercurectl " + path + " --help\ncmp stdout "
		if path == "" {
			line = "exec mercurectl --help\ncmp stdout "
		}
		if !strings.Contains(all.String(), line) {
			t.Errorf("no --help golden for %q in testdata/script/help_*.txtar", c.CommandPath())
		}
	})
}
