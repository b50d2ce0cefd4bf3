//go:build unix

package main

import "syscall"

// descriptorLimit returns the soft RLIMIT_NOFILE (which the Go runtime has
// already raised to the hard limit at start-up), or 0 when unknown or
// unlimited (RLIM_INFINITY).
func descriptorLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}
