//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/token"
)

// TestSubscriberFloodLeavesDescriptorsForPublishers runs serve with
// RLIMIT_NOFILE at 64 and opens more subscriptions than that: the derived
// cap admits some, refuses the rest with 503 and Retry-After (counted), and
// a publisher and /healthz still get through at once.
func TestSubscriberFloodLeavesDescriptorsForPublishers(t *testing.T) {
	t.Parallel()
	bin := buildClusterBinary(t)
	lowLimit := func(name string, args ...string) *exec.Cmd {
		// sh's ulimit sets the soft and the hard limit, so the Go runtime
		// cannot raise it again.
		return exec.Command("/bin/sh", append([]string{"-c", `ulimit -n 64 && exec "$0" "$@"`, name}, args...)...)
	}
	p := startDurProcWith(t, lowLimit, bin, t.TempDir(), "--anonymous", "--transport", "memory")
	m := regexp.MustCompile(`"max_subscribers":(\d+)`).FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no max_subscribers in the listening line:\n%s", p.stderr.String())
	}
	var limit int
	_, _ = fmt.Sscan(m[1], &limit)
	if limit <= 0 || limit >= 64 {
		t.Fatalf("max_subscribers %d with 64 descriptors, want fewer than 64", limit)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const flood = 80
	ok, refused := 0, 0
	for i := range flood {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"?topic=t", nil)
		if err != nil {
			t.Fatal(err)
		}
		// One connection per subscription, as separate clients would.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 0}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("subscription %d: %v", i, err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
			t.Cleanup(func() { _ = resp.Body.Close() })
		case http.StatusServiceUnavailable:
			refused++
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		default:
			t.Fatalf("subscription %d: %d", i, resp.StatusCode)
		}
	}
	if ok != limit || refused != flood-limit {
		t.Errorf("%d admitted and %d refused, want %d and %d", ok, refused, limit, flood-limit)
	}

	// The flood holds its subscriptions: publishers and /healthz still pass.
	quick := &http.Client{Timeout: 5 * time.Second}
	tok, err := token.Mint(token.MintOptions{Key: []byte(durKey), Publish: []string{"*"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, strings.NewReader(url.Values{"topic": {"t"}, "data": {"x"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := quick.Do(req)
	if err != nil {
		t.Fatalf("publish during the flood: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("publish during the flood: %d", resp.StatusCode)
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metrics+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := quick.Do(req)
		if err != nil {
			t.Fatalf("%s during the flood: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s during the flood: %d", path, resp.StatusCode)
		}
		if want := fmt.Sprintf("mercure_subscriptions_refused_total %d", flood-limit); path == "/metrics" && !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
