package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mercurectl/mercurectl/internal/client"
	"github.com/mercurectl/mercurectl/internal/token"
)

// cmdWaitsub waits until a `mercurectl serve --subscriptions` hub lists a
// subscription to a selector, so that a script knows that a background
// subscriber is connected:
//
//	waitsub [-timeout D] [-count N] KEY HUB_URL SELECTOR
//
// KEY is the hub's HMAC key. The subscriptions API lists the subscriptions
// of each generation to tokens of that generation, so both are asked.
// -count waits for at least N such subscriptions (default 1).
func cmdWaitsub(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! waitsub")
	}
	const usage = "usage: waitsub [-timeout D] [-count N] KEY HUB_URL SELECTOR"
	timeout, count := 10*time.Second, 1
	for len(args) > 1 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-timeout":
			d, err := time.ParseDuration(args[1])
			ts.Check(err)
			timeout = d
		case "-count":
			_, err := fmt.Sscan(args[1], &count)
			ts.Check(err)
		default:
			ts.Fatalf(usage)
		}
		args = args[2:]
	}
	if len(args) != 3 {
		ts.Fatalf(usage)
	}
	u, err := client.ParseHubURL(args[1])
	ts.Check(err)
	key, hubURL, sel := []byte(args[0]), u.String(), args[2]
	legacy, err := token.Mint(token.MintOptions{Key: key, Subscribe: []string{"*"}, TTL: time.Hour})
	ts.Check(err)
	access, err := token.Mint(token.MintOptions{Format: token.FormatAccessToken, Key: key, Subscribe: []string{"*"}, TTL: time.Hour, Audience: hubURL})
	ts.Check(err)
	deadline := time.Now().Add(timeout)
	for {
		n := listedSubscriptions(hubURL, legacy, sel) + listedSubscriptions(hubURL, access, sel)
		if n >= count {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitsub: %d subscriptions to %s after %v, want %d", n, sel, timeout, count)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listedSubscriptions returns how many active subscriptions to sel the
// subscriptions API lists for tok (0 when the hub cannot be asked).
func listedSubscriptions(hubURL, tok, sel string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hubURL+"/subscriptions", nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0
	}
	var doc struct {
		Subscriptions []struct {
			Topic  string `json:"topic"`
			Match  string `json:"match"`
			Active bool   `json:"active"`
		} `json:"subscriptions"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return 0
	}
	n := 0
	for _, s := range doc.Subscriptions {
		if s.Active && slices.Contains([]string{s.Topic, s.Match}, sel) {
			n++
		}
	}
	return n
}

// cmdEnvmatch sets an environment variable from a file, such as a token
// from the banner that serve --dev wrote to stderr:
//
//	envmatch VAR REGEXP FILE
//
// VAR becomes the first group of the first match of REGEXP in FILE.
func cmdEnvmatch(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: envmatch VAR REGEXP FILE")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile(args[2]))
	if len(m) < 2 {
		ts.Fatalf("envmatch: no match for %s (with a group) in %s", args[1], args[2])
	}
	ts.Setenv(args[0], m[1])
}
