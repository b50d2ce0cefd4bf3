package hub

import (
	"errors"
	"strings"
	"testing"

	"github.com/mercurectl/mercurectl/internal/history"
)

// New refuses a Config whose values have no meaning under the convention of
// Config: negative values anywhere, and zero where "none" is not allowed.
// Zero switches the heartbeat and the subscription lifetime off.
func TestNewValidatesTheConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // "" means New succeeds
	}{
		{"defaults", func(*Config) {}, ""},
		{"no heartbeat, no lifetime limit", func(c *Config) { c.Heartbeat, c.WriteTimeout = 0, 0 }, ""},
		{"no store", func(c *Config) { c.Store = nil }, "a history store is required"},
		{"negative heartbeat", func(c *Config) { c.Heartbeat = -1 }, "Heartbeat must not be negative"},
		{"negative write timeout", func(c *Config) { c.WriteTimeout = -1 }, "WriteTimeout must not be negative"},
		{"negative dispatch timeout", func(c *Config) { c.DispatchTimeout = -1 }, "DispatchTimeout must not be negative"},
		{"no dispatch timeout", func(c *Config) { c.DispatchTimeout = 0 }, "DispatchTimeout is required"},
		{"no body size", func(c *Config) { c.MaxBodySize = 0 }, "MaxBodySize is required"},
		{"negative queue", func(c *Config) { c.QueueSize = -8 }, "QueueSize must not be negative"},
		{"zero value", func(c *Config) { *c = Config{Store: c.Store} }, "DispatchTimeout is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := history.NewMemory(history.Retention{}, nil)
			t.Cleanup(func() { _ = store.Close() })
			cfg := DefaultConfig()
			cfg.Store = store
			tt.mod(&cfg)
			h, err := New(cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New = %v", err)
				}
				_ = h.Close()
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want ErrInvalidConfig saying %q", err, tt.wantErr)
			}
		})
	}
}
