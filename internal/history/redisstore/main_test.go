package redisstore

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a store leaves goroutines behind after Close
// (its reader, its janitor, or the Redis client's).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
