package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mercurectl/mercurectl/internal/history/bolt"
)

// devKeyFileName is the file, in the user's state directory (beside the
// default history file), that keeps the key `serve --dev` generates, so that
// the tokens it printed stay valid across restarts, as the history does.
const devKeyFileName = "dev.key"

// devKey returns the key of a --dev hub started without one: the key kept
// in the state directory, or a new one written there (mode 0600) for the
// next start. The file holds the key as hex text, which is also how it is
// used (so `--jwt-key @FILE` and `token verify --key @FILE` use the same
// key). When the state directory cannot be used, the key is a random one
// for this process only, and warning says why.
func (o *serveOptions) devKey() (key []byte, path, warning string, err error) {
	random := func() ([]byte, error) {
		b := make([]byte, devKeySize)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("generate a development key: %w", err)
		}
		return []byte(hex.EncodeToString(b)), nil
	}
	dbPath, err := bolt.DefaultPath(o.Getenv) // creates the directory, 0700
	if err != nil {
		key, err := random()
		return key, "", fmt.Sprintf("the development key lives as long as this process: %v", err), err
	}
	path = filepath.Join(filepath.Dir(dbPath), devKeyFileName)
	key, err = readDevKey(path)
	switch {
	case err == nil:
		return key, path, "", nil
	case !errors.Is(err, fs.ErrNotExist):
		// A damaged or unreadable file is not overwritten: it may be a
		// key someone relies on.
		key, rerr := random()
		return key, "", fmt.Sprintf("the development key lives as long as this process: %v (remove the file to have a new key kept there)", err), rerr
	}
	if key, err = random(); err != nil {
		return nil, "", "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // G304: the path is the user's own state directory
	if errors.Is(err, fs.ErrExist) {                                      // another hub created it meanwhile
		if key, err := readDevKey(path); err == nil {
			return key, path, "", nil
		}
	}
	if err != nil {
		return key, "", fmt.Sprintf("the development key lives as long as this process: %v", err), nil
	}
	_, werr := f.Write(append(key, '\n'))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path)
		return key, "", fmt.Sprintf("the development key lives as long as this process: write %s: %v", path, werr), nil
	}
	return key, path, "", nil
}

// readDevKey reads a key file written by devKey.
func readDevKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the path is the user's own state directory
	if err != nil {
		return nil, err
	}
	key := strings.TrimSuffix(string(b), "\n")
	if raw, err := hex.DecodeString(key); err != nil || len(raw) != devKeySize {
		return nil, fmt.Errorf("%s does not hold a development key (%d hex digits)", path, 2*devKeySize)
	}
	return []byte(key), nil
}
