//go:build !linux

package hub

import (
	"net/http"
	"time"
)

// Parking needs epoll (park_linux.go); elsewhere every stream keeps its
// goroutine, and these stand-ins do nothing.

const parkingSupported = false

type parker struct{}

type parkedConn struct{}

func newParker(*Hub) *parker { return nil }

func (*parker) park(*conn, *http.Request, uint64) bool { return false }
func (*parker) parkable(*http.Request) bool            { return false }
func (*parker) endAll()                                {}
func (*parker) close()                                 {}
func (*parker) sweep(time.Time)                        {}
func (*parker) count() int                             { return 0 }
func (*parker) registrations() int                     { return 0 }
func (*parkedConn) wake()                              {}
