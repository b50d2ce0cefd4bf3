// Package poll watches many sockets for readiness with one epoll instance
// and one goroutine, so that a socket nobody is writing to costs no
// goroutine. It exists on Linux only; elsewhere the package is empty and
// its users take their portable path.
package poll
