package redisstore

import (
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/historytest"
	"github.com/mercurectl/mercurectl/internal/history/redisstore/redistest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	historytest.Run(t, func(t *testing.T, r history.Retention) history.Store {
		return openStore(t, srv, Options{Retention: r})
	})
}

func TestConformanceClock(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	historytest.RunClock(t, func(t *testing.T, r history.Retention, now func() time.Time) history.Store {
		return openStore(t, srv, Options{Retention: r, Now: now})
	})
}

func TestConformanceRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	historytest.RunRestart(t, func(t *testing.T) historytest.Opener {
		prefix := newPrefix(t)
		return func(t *testing.T, r history.Retention) history.Store {
			// Not openStore: the suite closes the first store itself.
			s, err := Open(t.Context(), srv.DSN(), Options{Retention: r, Stream: prefix, Logger: newTestLog(t).logger()})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		}
	})
}
