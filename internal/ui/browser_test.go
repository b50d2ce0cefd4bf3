package ui_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// playwrightVersion is the playwright-core release the browser test is
// written against; CI installs exactly this one (.ci/run).
const playwrightVersion = "1.65.2"

// browserTools finds Chromium, node and playwright-core. Without them the
// test is skipped with a message saying what to install, except under
// CI=true, where CI is expected to have installed them and absence fails.
func browserTools(t *testing.T) (chromium, node, playwright string) {
	t.Helper()
	var missing []string
	chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		if p, err := exec.LookPath("chromium"); err == nil {
			chromium = p
		} else {
			missing = append(missing, "chromium (apt-get install chromium)")
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node (apt-get install nodejs npm)")
	}
	playwright, _ = filepath.Abs(filepath.Join("testdata", "node", "node_modules", "playwright-core"))
	if _, err := os.Stat(filepath.Join(playwright, "index.mjs")); err != nil {
		missing = append(missing, "playwright-core (npm install --no-save --prefix internal/ui/testdata/node playwright-core@"+playwrightVersion+")")
	}
	if len(missing) > 0 {
		msg := "the browser test needs " + strings.Join(missing, ", ")
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: .ci/run installs them)")
		}
		t.Skip(msg)
	}
	return chromium, node, playwright
}

// buildMercurectl builds the binary under test.
func buildMercurectl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mercurectl")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "../../cmd/mercurectl")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// lockedBuffer collects a process's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cleanEnv is the environment of the processes: none of the developer's
// MERCURE_* variables, no colour.
func cleanEnv(extra ...string) []string {
	env := []string{"NO_COLOR=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MERCURE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// TestDebugUIInBrowser starts `mercurectl serve --dev` and drives its debug
// UI in headless Chromium by accessible names (testdata/browser.mjs):
// subscribe by label, publish from the page and from `mercurectl publish`,
// see both in the Events region, check that a private update reaches only a
// subscriber with a token, and keep a screenshot.
func TestDebugUIInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mercurectl and runs a browser; skipped with -short")
	}
	chromium, node, playwright := browserTools(t)
	bin := buildMercurectl(t)

	state := t.TempDir()
	addrFile := filepath.Join(state, "addr")
	serve := exec.Command(bin, "serve", "--dev", "--addr", "127.0.0.1:0", "--addr-file", addrFile,
		"--transport", "memory", "--log-format", "json", "--subscriptions")
	serve.Env = cleanEnv("HOME="+state, "XDG_STATE_HOME="+filepath.Join(state, "state"))
	stderr := &lockedBuffer{}
	serve.Stderr = stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() {
		_ = serve.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = serve.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("serve stderr:\n%s", stderr.String())
		}
	})
	var addr string
	for deadline := time.Now().Add(20 * time.Second); ; {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			addr = strings.TrimSpace(string(b))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not listen within 20s:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var devJWT string
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "export MERCURE_JWT="); ok {
			devJWT = v
		}
	}
	if devJWT == "" {
		t.Fatalf("serve --dev printed no MERCURE_JWT:\n%s", stderr.String())
	}

	// The screenshot is kept in $MERCURECTL_UI_SCREENSHOTS (.ci/run sets
	// it), else in a temporary directory of the test (see testing.T.ArtifactDir).
	dir := os.Getenv("MERCURECTL_UI_SCREENSHOTS")
	if dir == "" {
		dir = t.ArtifactDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "debug-ui.png")

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, node, filepath.Join("testdata", "browser.mjs"))
	run.Env = cleanEnv(
		"PLAYWRIGHT_CORE="+playwright,
		"CHROMIUM="+chromium,
		"HUB_URL=http://"+addr+"/.well-known/mercure",
		"MERCURECTL="+bin,
		"MERCURE_JWT="+devJWT,
		"SCREENSHOT="+shot,
		"HOME="+state,
	)
	out, err := run.CombinedOutput()
	t.Logf("browser.mjs:\n%s", out)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatal("the browser test did not finish within 2 minutes")
		}
		t.Fatalf("browser.mjs: %v", err)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Fatal("browser.mjs did not finish")
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}
