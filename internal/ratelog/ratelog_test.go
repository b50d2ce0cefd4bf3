package ratelog

import (
	"testing"
	"time"
)

func TestLimiterLetsOnePerIntervalThroughWithACount(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	l := &Limiter{Every: time.Second, Now: func() time.Time { return now }}
	if ok, n := l.Allow(); !ok || n != 0 {
		t.Fatalf("first: %v %d", ok, n)
	}
	for range 5 {
		if ok, _ := l.Allow(); ok {
			t.Fatal("a second occurrence within the interval got through")
		}
	}
	now = now.Add(time.Second)
	if ok, n := l.Allow(); !ok || n != 5 {
		t.Fatalf("after the interval: %v %d, want true 5", ok, n)
	}
	if ok, _ := l.Allow(); ok {
		t.Fatal("the interval did not restart")
	}
}
