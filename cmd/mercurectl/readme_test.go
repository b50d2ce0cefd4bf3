//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlock is one ```sh block of README.md.
type readmeBlock struct {
	line      int    // of the opening fence
	directive string // of the preceding <!-- readme-test: … --> comment ("" for none)
	text      string
}

var readmeDirective = regexp.MustCompile(`^<!-- readme-test: (background|from-banner|script|skip \(.+\)) -->$`)

// readmeBlocks returns the sh blocks of the README, with their directives.
func readmeBlocks(tb testing.TB, path string) []readmeBlock {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var blocks []readmeBlock
	var cur *readmeBlock
	directive := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case strings.HasPrefix(line, "<!-- readme-test:"):
			m := readmeDirective.FindStringSubmatch(line)
			if m == nil {
				tb.Fatalf("README.md:%d: unknown directive %q (want background, from-banner, script or skip (why))", n, line)
			}
			directive = m[1]
		case line == "```sh":
			cur = &readmeBlock{line: n, directive: directive}
			directive = ""
		case strings.HasPrefix(line, "```"):
			directive = "" // another language: not a command
		}
	}
	return blocks
}

// Every command of the README runs, in order, against the real binary: the
// tour against the `mercurectl serve --dev` it starts, the CI snippet as a
// script of its own. A block that fails fails the test, and a block can be
// left out only by a `skip (why)` comment in the README itself, so the README
// cannot drift from what the commands do.
func TestREADMECommands(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bin := buildClusterBinary(t)
	blocks := readmeBlocks(t, filepath.Join("..", "..", "README.md"))
	if len(blocks) < 8 {
		t.Fatalf("only %d sh blocks in README.md", len(blocks))
	}

	// One bash script runs the blocks in the README's order, so that the
	// variables a block exports reach the next ones, as in a terminal.
	var script strings.Builder
	script.WriteString("set -eu\nbg=()\nbanner=\n")
	script.WriteString(`stop_bg() { for p in "${bg[@]}"; do kill -INT "$p" 2>/dev/null || true; done; for p in "${bg[@]}"; do wait "$p" || true; done; }` + "\n")
	script.WriteString("trap stop_bg EXIT\n")
	ran := 0
	for i, b := range blocks {
		fmt.Fprintf(&script, "echo '--- README.md:%d' >&2\n", b.line)
		switch {
		case strings.HasPrefix(b.directive, "skip"):
			t.Logf("README.md:%d: %s", b.line, b.directive)
			continue
		case b.directive == "background":
			// Each line runs until the end of the tour. bash -c execs a
			// simple command, so SIGINT reaches mercurectl itself.
			for j, line := range strings.Split(strings.TrimSpace(b.text), "\n") {
				out := fmt.Sprintf("bg-%d-%d", i, j)
				fmt.Fprintf(&script, "bash -c %s > %s.out 2> %s.err &\nbg+=($!)\n", shellQuote(line), out, out)
				if strings.HasPrefix(line, "mercurectl serve") {
					fmt.Fprintf(&script, "for k in $(seq 200); do grep -q '\"msg\":\"listening\"' %s.err && break; sleep 0.05; done\n", out)
					fmt.Fprintf(&script, "grep -q '\"msg\":\"listening\"' %s.err || { cat %s.err >&2; exit 1; }\nbanner=%s.err\n", out, out, out)
				} else {
					script.WriteString("sleep 0.5\n") // let it connect
				}
			}
		case b.directive == "from-banner":
			// The lines are pasted from what serve printed: the README's
			// variables must be the banner's, and the URL exactly the one
			// serve prints at its default address.
			for line := range strings.SplitSeq(strings.TrimSpace(b.text), "\n") {
				name, value, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
				if !strings.HasPrefix(line, "export ") || !ok {
					t.Errorf("README.md:%d: %q is not an export line", b.line, line)
					continue
				}
				if name == "MERCURE_URL" && value != publicURLOf(t, defaultServeAddr) {
					t.Errorf("README.md:%d: MERCURE_URL=%s, but serve --dev prints %s", b.line, value, publicURLOf(t, defaultServeAddr))
				}
				fmt.Fprintf(&script, "grep -q '^export %s=' \"$banner\" || { echo 'the banner has no %s' >&2; cat \"$banner\" >&2; exit 1; }\n", name, name)
			}
			script.WriteString("eval \"$(grep '^export MERCURE_' \"$banner\")\"\n")
		case b.directive == "script":
			// A script of its own (a CI job): a fresh shell, without what
			// the tour exported.
			name := fmt.Sprintf("block-%d.sh", i)
			fmt.Fprintf(&script, "cat > %s <<'README_BLOCK_END'\n%sREADME_BLOCK_END\n", name, b.text)
			fmt.Fprintf(&script, "env -i PATH=\"$PATH\" HOME=\"$HOME\" bash %s\n", name)
		default:
			script.WriteString(b.text)
		}
		ran++
	}
	script.WriteString("echo '--- end' >&2\n")

	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "readme.sh"), []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "readme.sh")
	cmd.WaitDelay = 5 * time.Second // a process left behind must not hang the test
	cmd.Dir = work
	home := filepath.Join(work, "home")
	// The tour's serve --dev listens on a free port of the loopback
	// interface, not on the fixed default (its MERCURE_URL is checked
	// against the default above).
	cmd.Env = append(procEnv(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+home, "XDG_STATE_HOME=", "MERCURE_ADDR=127.0.0.1:0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, ended with the script: a block that fails
	// half-way (the CI snippet's hub, under set -e) leaves nothing running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil || !strings.Contains(out.String(), "--- end") {
		t.Fatalf("the README's commands failed (%v):\n%s\nscript:\n%s", err, out.String(), script.String())
	}
	if ran < 6 {
		t.Fatalf("only %d README blocks ran", ran)
	}
	// The background subscriber of the tour saw the books published.
	subOut, err := filepath.Glob(filepath.Join(work, "bg-*-0.out"))
	if err != nil {
		t.Fatal(err)
	}
	saw := false
	for _, f := range subOut {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "Dune") && strings.Contains(string(b), "Foundation") {
			saw = true
		}
	}
	if !saw {
		t.Errorf("the tour's subscriber did not print both books:\n%s", out.String())
	}
}

// publicURLOf is the hub URL serve prints for a listen address.
func publicURLOf(_ testing.TB, addr string) string { return publicURL(listenAddr(addr), false) }

// listenAddr is a net.Addr given as HOST:PORT.
type listenAddr string

func (listenAddr) Network() string  { return "tcp" }
func (a listenAddr) String() string { return string(a) }

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
