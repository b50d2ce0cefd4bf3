//go:build race

package conformance

// raceEnabled reports whether the race detector is on: it slows the hub
// and the client down enough that the default deep-history run (20,000
// publishes) is not worth its time there.
const raceEnabled = true
