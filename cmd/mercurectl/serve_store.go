package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/bolt"
	"github.com/mercurectl/mercurectl/internal/history/redisstore"
)

// Transport kinds of --transport.
const (
	transportMemory = "memory"
	transportBolt   = "bolt"
	transportRedis  = "redis"
)

// transportSpec is a parsed --transport DSN.
type transportSpec struct {
	kind string
	// path is the bolt file; "" means the default file in the user's state
	// directory.
	path string
	// dsn is the Redis DSN, checked by the Redis store when it connects.
	dsn string
}

// parseTransport reads a --transport DSN (docs/cli.md#serve): "memory",
// "bolt://relative/file.db", "bolt:///absolute/file.db", "" for the default
// bolt file, or a Redis DSN (redis://, rediss://, unix://).
func parseTransport(dsn string) (transportSpec, error) {
	scheme, rest, hasScheme := strings.Cut(dsn, "://")
	switch {
	case dsn == "":
		return transportSpec{kind: transportBolt}, nil
	case dsn == transportMemory || (hasScheme && scheme == transportMemory && rest == ""):
		return transportSpec{kind: transportMemory}, nil
	case hasScheme && scheme == transportBolt:
		if rest == "" {
			return transportSpec{}, usageErrorf("--transport %q: name the file: bolt://relative/file.db or bolt:///absolute/file.db", dsn)
		}
		if strings.ContainsAny(rest, "?#") {
			return transportSpec{}, usageErrorf("--transport %q: the bolt transport takes no parameters", dsn)
		}
		// bolt:///C:/state/hub.db on Windows names C:\state\hub.db.
		if runtime.GOOS == "windows" && len(rest) >= 3 && rest[0] == '/' && rest[2] == ':' {
			rest = rest[1:]
		}
		return transportSpec{kind: transportBolt, path: filepath.FromSlash(rest)}, nil
	case hasScheme && (scheme == "redis" || scheme == "rediss" || scheme == "unix"):
		return transportSpec{kind: transportRedis, dsn: dsn}, nil
	}
	return transportSpec{}, usageErrorf("--transport %q: unknown transport (want memory, bolt://FILE, redis://, rediss:// or unix://)", redactDSN(dsn))
}

// redactDSN hides the password of a DSN that has one.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		if strings.Contains(dsn, "@") {
			return "<redacted>"
		}
		return dsn
	}
	return u.Redacted()
}

// storeOptions are what opening a history store needs besides the DSN.
type storeOptions struct {
	Retention history.Retention
	Getenv    func(string) string
	Logger    *slog.Logger
	Now       func() time.Time
}

// openStore opens the history store that spec names, and describes it for
// the start-up log (without secrets). ctx bounds connecting to Redis.
func openStore(ctx context.Context, spec transportSpec, o storeOptions) (history.Store, string, error) {
	switch spec.kind {
	case transportMemory:
		return history.NewMemory(o.Retention, o.Now), transportMemory, nil
	case transportBolt:
		path := spec.path
		if path == "" {
			var err error
			if path, err = bolt.DefaultPath(o.Getenv); err != nil {
				return nil, "", fmt.Errorf("%w (choose a file with --transport bolt://FILE, or --transport memory)", err)
			}
		}
		s, err := bolt.Open(path, bolt.Options{Retention: o.Retention, Now: o.Now, Logger: o.Logger, LockTimeout: bolt.DefaultLockTimeout})
		if errors.Is(err, bolt.ErrInUse) {
			return nil, "", fmt.Errorf("%w (is another mercurectl serve running? stop it, or choose another file with --transport bolt://FILE)", err)
		}
		if errors.Is(err, bolt.ErrCorrupt) {
			return nil, "", fmt.Errorf("%w (move the file aside to start with an empty history, or choose another file with --transport bolt://FILE)", err)
		}
		if err != nil {
			return nil, "", err
		}
		return s, "bolt://" + filepath.ToSlash(path), nil
	case transportRedis:
		s, err := redisstore.Open(ctx, spec.dsn, redisstore.Options{Retention: o.Retention, Now: o.Now, Logger: o.Logger})
		if errors.Is(err, redisstore.ErrBadDSN) {
			return nil, "", &usageError{err: fmt.Errorf("--transport: %w", err)}
		}
		if err != nil {
			return nil, "", err
		}
		return s, redactDSN(spec.dsn), nil
	}
	return nil, "", fmt.Errorf("unknown transport kind %q", spec.kind)
}
