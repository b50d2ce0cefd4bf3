package memnet

import (
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// An HTTP server on a Listener answers a client of its Transport inside a
// bubble, on the bubble's clock, and a closed Listener refuses dials.
func TestHTTPOverTheListenerInABubble(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ln := Listen("hub.test:80")
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			time.Sleep(time.Minute) // fake time: returns at once
			_, _ = io.WriteString(w, "late")
		}), ReadHeaderTimeout: time.Second}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		tr := ln.Transport()
		client := &http.Client{Transport: tr}

		start := time.Now()
		resp, err := client.Get("http://hub.test/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if string(body) != "late" || time.Since(start) != time.Minute {
			t.Fatalf("body %q after %v, want \"late\" after 1m", body, time.Since(start))
		}

		_ = srv.Close()
		<-served
		tr.CloseIdleConnections()
		if _, err := ln.DialContext(t.Context(), "tcp", "x"); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("dial after Close: %v", err)
		}
	})
}
