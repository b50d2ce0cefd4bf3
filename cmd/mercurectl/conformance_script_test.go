package main

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mercurectl/mercurectl/internal/conformance/faultproxy"
)

// The testscript support of the conformance scripts
// (testdata/script/conformance*): the faultproxy command, which puts a
// fault-injecting proxy in front of a hub, and the supervise program,
// which restarts a hub on SIGHUP for --restart-cmd.

// cmdFaultproxy starts a proxy in the test process that breaks one thing
// between the client and the hub:
//
//	faultproxy FAULT HUB_URL
//
// FAULT is a faultproxy.Fault name (such as drop-retry). It sets $PROXY to
// the proxied hub URL and stops the proxy when the script ends.
func cmdFaultproxy(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! faultproxy")
	}
	if len(args) != 2 {
		ts.Fatalf("usage: faultproxy FAULT HUB_URL")
	}
	fault, err := faultproxy.Parse(args[0])
	ts.Check(err)
	p, err := faultproxy.New(args[1], fault)
	ts.Check(err)
	srv := httptest.NewServer(p)
	ts.Defer(srv.Close)
	ts.Setenv("PROXY", srv.URL+"/.well-known/mercure")
}

// superviseMain is the supervise program of the scripts:
//
//	supervise PIDFILE ADDRFILE PROGRAM [ARGS...]
//
// It writes its pid to PIDFILE and runs PROGRAM, a mercurectl serve that
// writes its address to ADDRFILE. On SIGHUP it stops the program with
// SIGINT, waits for it, and starts it again with the same arguments but
// --addr set to the address of the first start: a hub restart on the same
// address, which a script's --restart-cmd asks for with kill -HUP. On
// SIGINT or SIGTERM it stops the program the same way and exits with the
// program's status.
func superviseMain() {
	os.Exit(supervise(os.Args[1:]))
}

func supervise(args []string) int {
	if len(args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: supervise PIDFILE ADDRFILE PROGRAM [ARGS...]")
		return 2
	}
	pidFile, addrFile, prog := args[0], args[1], args[2:]
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "supervise:", err)
		return 1
	}
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	var addr string
	for {
		cmd := exec.Command(prog[0], prog[1:]...) // #nosec G204 -- test support: the script's own command
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "supervise:", err)
			return 1
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		for addr == "" {
			if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
				addr = strings.TrimSpace(string(b))
				break
			}
			select {
			case err := <-exited:
				return exitStatus(err)
			case <-time.After(10 * time.Millisecond):
			}
		}
		select {
		case err := <-exited:
			return exitStatus(err)
		case sig := <-sigc:
			_ = cmd.Process.Signal(os.Interrupt)
			err := <-exited
			if sig != syscall.SIGHUP {
				return exitStatus(err)
			}
		}
		for i := range prog {
			if prog[i] == "--addr" && i+1 < len(prog) {
				prog[i+1] = addr
			}
		}
	}
}

func exitStatus(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, "supervise:", err)
		return 1
	}
}
