package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/mercurectl/mercurectl/internal/hub"
)

// listen binds addr, turning the common failures into clear messages.
func listen(ctx context.Context, addr, flag string) (net.Listener, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	switch {
	case isAddrInUse(err):
		return nil, fmt.Errorf("serve: cannot listen on %s: the address is already in use (another hub running? choose another port with %s)", addr, flag)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("serve: cannot listen on %s: permission denied (ports below 1024 need privileges; choose another with %s)", addr, flag)
	case err != nil:
		return nil, fmt.Errorf("serve: cannot listen on %s: %w", addr, err)
	}
	return ln, nil
}

// wsaeaddrinuse is Windows' WSAEADDRINUSE, which syscall.EADDRINUSE does not match.
const wsaeaddrinuse = syscall.Errno(10048)

// isAddrInUse reports whether a listen error means the port is taken.
func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || (runtime.GOOS == "windows" && errors.Is(err, wsaeaddrinuse))
}

// publicURL is the hub URL for a bound address: an unspecified host (":3000",
// "0.0.0.0") becomes localhost.
func publicURL(addr net.Addr, tls bool) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		host, port = addr.String(), ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: hub.Path}).String()
}

// writeAddrFile writes addr and a newline to path atomically: readers see
// either no file or the whole line.
func writeAddrFile(path, addr string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(addr + "\n")
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}
