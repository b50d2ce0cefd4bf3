package history_test

import (
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/historytest"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	historytest.Run(t, func(_ *testing.T, r history.Retention) history.Store {
		return history.NewMemory(r, nil)
	})
}

func TestMemoryClock(t *testing.T) {
	t.Parallel()
	historytest.RunClock(t, func(_ *testing.T, r history.Retention, now func() time.Time) history.Store {
		return history.NewMemory(r, now)
	})
}
