package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// go-redis has one process-wide logger and no per-client one. Setting it in
// every Open would let the last store opened take the log lines of all the
// others, so the store installs one router, once, and each client tags what
// it hands the library with its store's logger (logTag): the contexts of its
// calls, and the errors of its dialer, because the library dials from
// goroutines of its own with a bare context and logs the failure with the
// dial error as an argument. A line that carries a tag, in its context or in
// an error argument, goes to that store's logger; a line with neither (a few
// background paths) cannot be attributed, so it goes to every open store's
// logger rather than to stderr or nowhere.

var installRouter sync.Once

// loggerKey is the context key under which logHook stores a *slog.Logger.
type loggerKey struct{}

// openLoggers holds the loggers of the open stores, for the lines that no
// context attributes.
var openLoggers struct {
	mu sync.Mutex
	m  map[*Store]*slog.Logger
}

// newTaggedClient returns a client for ro whose library log lines reach
// logger.
func newTaggedClient(ro *redis.Options, logger *slog.Logger) *redis.Client {
	installRouter.Do(func() { redis.SetLogger(logRouter{}) })
	tag := logTag{logger}
	ro.Dialer = tag.dialer(ro)
	client := redis.NewClient(ro)
	client.AddHook(tag)
	return client
}

// routeLogs makes s's logger receive the library's unattributed lines too,
// until unrouteLogs(s).
func routeLogs(s *Store) {
	openLoggers.mu.Lock()
	defer openLoggers.mu.Unlock()
	if openLoggers.m == nil {
		openLoggers.m = make(map[*Store]*slog.Logger)
	}
	openLoggers.m[s] = s.logger
}

// unrouteLogs stops sending unattributed lines to s's logger.
func unrouteLogs(s *Store) {
	openLoggers.mu.Lock()
	defer openLoggers.mu.Unlock()
	delete(openLoggers.m, s)
}

// logRouter is the Redis library's logger: it sends each line, at debug
// level, to the store whose call it is about.
type logRouter struct{}

func (logRouter) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		logLine(ctx, l, format, v)
		return
	}
	for _, a := range v {
		var de *dialError
		if err, ok := a.(error); ok && errors.As(err, &de) {
			logLine(ctx, de.logger, format, v)
			return
		}
	}
	openLoggers.mu.Lock()
	ls := make([]*slog.Logger, 0, len(openLoggers.m))
	for _, l := range openLoggers.m {
		ls = append(ls, l)
	}
	openLoggers.mu.Unlock()
	for _, l := range ls {
		logLine(ctx, l, format, v)
	}
}

func logLine(ctx context.Context, l *slog.Logger, format string, v []any) {
	if l.Enabled(ctx, slog.LevelDebug) {
		l.DebugContext(ctx, fmt.Sprintf(format, v...), slog.String("component", "go-redis"))
	}
}

// logTag tags the contexts of every call of one client, and the errors of
// its dialer, with its store's logger. As a hook, it tags the contexts.
type logTag struct{ l *slog.Logger }

func (h logTag) tag(ctx context.Context) context.Context {
	return context.WithValue(ctx, loggerKey{}, h.l)
}

// dialer returns the library's own dialer for ro, with its errors tagged.
func (h logTag) dialer(ro *redis.Options) func(context.Context, string, string) (net.Conn, error) {
	if ro.DialTimeout == 0 {
		// The library's default, which it would only fill in on its own
		// copy of ro, after this dialer captured ro.
		ro.DialTimeout = 5 * time.Second
	}
	dial := redis.NewDialer(ro)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, &dialError{logger: h.l, err: err}
		}
		return conn, nil
	}
}

// dialError is a dial error of one store's client. It reads and unwraps as
// the error it carries, so the library and the store classify it as before.
type dialError struct {
	logger *slog.Logger
	err    error
}

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func (h logTag) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(h.tag(ctx), network, addr)
	}
}

func (h logTag) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		return next(h.tag(ctx), cmd)
	}
}

func (h logTag) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		return next(h.tag(ctx), cmds)
	}
}
