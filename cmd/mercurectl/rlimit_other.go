//go:build !unix

package main

// descriptorLimit is 0 where there is no descriptor limit to derive a
// subscription cap from.
func descriptorLimit() int { return 0 }
