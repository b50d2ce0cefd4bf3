package bolt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// appName names the directory that holds the hub's state.
const appName = "mercurectl"

// fileName is the default history file's name.
const fileName = "hub.db"

// DefaultPath returns the default history file, in the user's state
// directory, and creates its directory (mode 0700) if needed. getenv reads the
// environment (os.Getenv in production; tests pass a map):
//
//   - $XDG_STATE_HOME/mercurectl/hub.db when XDG_STATE_HOME is an absolute
//     path (any OS but Windows);
//   - on Windows, %LocalAppData%\mercurectl\hub.db;
//   - on macOS, $HOME/Library/Application Support/mercurectl/hub.db;
//   - on Plan 9, $home/lib/mercurectl/hub.db;
//   - elsewhere, $HOME/.local/state/mercurectl/hub.db (the XDG default).
func DefaultPath(getenv func(string) string) (string, error) {
	dir, err := stateDir(runtime.GOOS, getenv)
	if err != nil {
		return "", fmt.Errorf("default history path: %w", err)
	}
	dir = filepath.Join(dir, appName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("default history path: %w", err)
	}
	return filepath.Join(dir, fileName), nil
}

// stateDir returns the per-user directory for state on goos.
func stateDir(goos string, getenv func(string) string) (string, error) {
	if goos != "windows" {
		// The XDG spec says relative paths are invalid and must be ignored.
		if d := getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
			return d, nil
		}
	}
	switch goos {
	case "windows":
		if d := getenv("LocalAppData"); d != "" {
			return d, nil
		}
		return "", errors.New("%LocalAppData% is not set")
	case "plan9":
		if h := getenv("home"); h != "" {
			return filepath.Join(h, "lib"), nil
		}
		return "", errors.New("$home is not set")
	}
	h := getenv("HOME")
	if h == "" {
		return "", errors.New("neither $XDG_STATE_HOME nor $HOME is set")
	}
	if goos == "darwin" || goos == "ios" {
		return filepath.Join(h, "Library", "Application Support"), nil
	}
	return filepath.Join(h, ".local", "state"), nil
}
