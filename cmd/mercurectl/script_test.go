package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/hub"
	"github.com/mercurectl/mercurectl/internal/token"
)

// update rewrites the golden files embedded in the scripts from the actual
// output: go test ./cmd/mercurectl -run TestScripts -update
var update = flag.Bool("update", false, "rewrite the golden files of testdata/script/*.txtar")

// TestMain turns the test binary into mercurectl itself when testscript runs
// it under that name, so that scripts drive the real binary's code path
// (main → run) without a separate build.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"mercurectl": main,
		"supervise":  superviseMain, // conformance_script_test.go
	})
}

// TestScripts runs testdata/script/*.txtar: CLI behaviour is checked against
// the real command, its streams and its exit codes, as a user would see it.
func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       *update,
		Setup: func(env *testscript.Env) error {
			// Scripts run without colour, and keep their state (the default
			// bolt file) in their own work directory.
			env.Setenv("NO_COLOR", "1")
			env.Setenv("XDG_STATE_HOME", filepath.Join(env.WorkDir, ".state"))
			return nil
		},
		Condition: scriptCondition, // [redis]: cluster_script_test.go
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfile":   cmdWaitfile,
			"exits":      cmdExits,
			"hub":        cmdHub,
			"waitsub":    cmdWaitsub,  // script_cmds_test.go
			"envmatch":   cmdEnvmatch, // script_cmds_test.go
			"damage":     cmdDamage,
			"redis":      cmdRedis,      // cluster_script_test.go
			"faultproxy": cmdFaultproxy, // conformance_script_test.go
		},
	})
}

// cmdWaitfile waits until a file exists and is not empty:
//
//	waitfile [-timeout D] [-env VAR] FILE
//
// -timeout bounds the wait (default 10s); -env sets $VAR to the file's first
// line, such as the address written by serve --addr-file.
func cmdWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! waitfile")
	}
	timeout := 10 * time.Second
	var envVar string
	for len(args) > 1 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-timeout":
			d, err := time.ParseDuration(args[1])
			ts.Check(err)
			timeout = d
		case "-env":
			envVar = args[1]
		default:
			ts.Fatalf("usage: waitfile [-timeout D] [-env VAR] FILE")
		}
		args = args[2:]
	}
	if len(args) != 1 {
		ts.Fatalf("usage: waitfile [-timeout D] [-env VAR] FILE")
	}
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			if envVar != "" {
				line, _, _ := strings.Cut(string(b), "\n")
				ts.Setenv(envVar, strings.TrimSpace(line))
			}
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s: still missing or empty after %v", args[0], timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cmdExits runs a program and checks its exact exit code, which exec cannot:
//
//	exits CODE PROGRAM [ARGS...]
//
// Its stdout and stderr are then checked as exec's are.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exits (give the expected code)")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// cmdHub starts a hub in the test process, on httptest, for scripts that
// exercise the client commands against a known hub:
//
//	hub [-anonymous]
//
// It sets $HUB (the hub URL) and $HUB_SECRET (the HS256 key of publishers and
// subscribers), and stops the hub when the script ends.
func cmdHub(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! hub")
	}
	anonymous := false
	for _, a := range args {
		switch a {
		case "-anonymous":
			anonymous = true
		default:
			ts.Fatalf("usage: hub [-anonymous]")
		}
	}
	secret := make([]byte, 32)
	_, err := rand.Read(secret)
	ts.Check(err)
	key := hex.EncodeToString(secret)
	verifier, err := token.NewVerifier(token.VerifierConfig{Alg: "HS256", Key: []byte(key)})
	ts.Check(err)
	store := history.NewMemory(history.Retention{MaxUpdates: defaultHistorySize}, nil)
	srv := httptest.NewUnstartedServer(nil)
	cfg := hub.DefaultConfig()
	cfg.Store, cfg.PublisherVerifier, cfg.SubscriberVerifier, cfg.Anonymous = store, verifier, verifier, anonymous
	// Pinned as serve pins it: the URL of the listen address.
	cfg.ResourceIdentifier = "http://" + srv.Listener.Addr().String() + hub.Path
	h, err := hub.New(cfg)
	if err != nil {
		srv.Close()
	}
	ts.Check(err)
	srv.Config.Handler = h
	srv.Start()
	ts.Defer(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		srv.Close()
		_ = h.Close()
		_ = store.Close()
	})
	ts.Setenv("HUB", srv.URL+hub.Path)
	ts.Setenv("HUB_SECRET", key)
}
