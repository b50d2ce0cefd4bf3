package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/mercurectl/mercurectl/internal/hub"
	"github.com/mercurectl/mercurectl/internal/token"
	"github.com/mercurectl/mercurectl/internal/ui"
)

// What --dev adds: a key when none is given, kept in the state directory
// for the next start (readKeys, serve_devkey.go), anonymous subscribers and
// CORS for any origin with credentials (hubConfig), the development tokens,
// the debug UI (which --ui serves on its own too) and the banner below.
const (
	// devKeySize is the size of the random HMAC key of --dev (256 bits, as
	// HS256 wants).
	devKeySize = 32
	// devTokenTTL is the lifetime of the token --dev prints when the key was
	// given rather than generated (a generated key is a development key
	// only, so its token needs no expiry: it stays valid across restarts,
	// as long as the key file is kept).
	devTokenTTL = 24 * time.Hour
)

// devTokens mints what --dev hands out: a token granting publish and
// subscribe on every topic, in the legacy format that every hub and client
// understands, and a subscriber token when the subscriber key differs. Each
// is "" when the key cannot mint (no key, or not HMAC).
func (o *serveOptions) devTokens(keys serveKeys, logger *slog.Logger) (jwt, subJWT string) {
	mint := func(key []byte, publish bool) string {
		if key == nil || !token.IsHMAC(o.JWTAlg) {
			return ""
		}
		mo := token.MintOptions{Alg: o.JWTAlg, Key: key, Subscribe: []string{"*"}, Now: o.Now}
		if publish {
			mo.Publish = []string{"*"}
		}
		if !keys.generated {
			mo.TTL = devTokenTTL
		}
		tok, err := token.Mint(mo)
		if err != nil {
			logger.Warn("cannot mint a development token", "err", err)
			return ""
		}
		return tok
	}
	jwt = mint(keys.publisher, true)
	if keys.subscriber != nil && string(keys.subscriber) != string(keys.publisher) {
		subJWT = mint(keys.subscriber, false)
	}
	return jwt, subJWT
}

// uiHandler returns the debug UI for --ui and --dev, nil otherwise; audience
// is the aud of the access tokens the page mints (the hub's resource
// identifier). Only --dev gives the page a secret: the development token,
// and the key itself only when --dev generated it (a configured key never
// leaves the hub).
func (o *serveOptions) uiHandler(keys serveKeys, devJWT, audience string) http.Handler {
	if !o.UI && !o.Dev {
		return nil
	}
	uo := ui.Options{
		HubPath:            hub.Path,
		Dev:                o.Dev,
		ResourceIdentifier: audience,
		Subscriptions:      o.Subscriptions,
		Draft08Only:        o.Draft08Only,
		Anonymous:          o.Anonymous || o.Dev,
	}
	if len(o.Issuers) > 0 {
		uo.Issuer = o.Issuers[0]
	}
	if o.Dev {
		uo.DevToken = devJWT
		if keys.generated {
			uo.MintKey, uo.MintAlg = keys.publisher, o.JWTAlg
		}
	}
	return ui.New(uo)
}

// printDevBanner prints, on stderr, what --dev promises: the hub URL and the
// development tokens, as `export` lines to paste into another shell, where
// the key and the history are kept, and how to try it.
func (o *serveOptions) printDevBanner(hubURL, history string, keys serveKeys, jwt, subJWT string) {
	r := o.IO.ErrRenderer()
	title := r.NewStyle().Bold(true).Foreground(lipgloss.Color("3"))
	var b strings.Builder
	b.WriteString("\n" + title.Render("Development mode: not for production.") + "\n")
	b.WriteString("Anonymous subscribers, CORS for any origin (with cookies), and the debug UI.\n")
	switch {
	case keys.generated && keys.devKeyPath != "":
		fmt.Fprintf(&b, "Key: %s (kept for the next start, so the token below stays valid).\n", keys.devKeyPath)
	case keys.generated:
		fmt.Fprintf(&b, "Key: random, for this process only (%s).\n", keys.devKeyWarning)
	}
	if history == transportMemory {
		b.WriteString("History: in memory, lost when the hub stops.\n")
	} else {
		fmt.Fprintf(&b, "History: %s\n", history)
	}
	b.WriteString("\nPaste these lines into another shell:\n\n")
	fmt.Fprintf(&b, "export MERCURE_URL=%s\n", hubURL)
	if jwt != "" {
		fmt.Fprintf(&b, "export MERCURE_JWT=%s\n", jwt)
	} else {
		b.WriteString("# (no token printed: --dev mints tokens only with an HMAC key)\n")
	}
	if subJWT != "" {
		fmt.Fprintf(&b, "export MERCURE_SUBSCRIBER_JWT=%s\n", subJWT)
	}
	b.WriteString("\nThen try:\n")
	b.WriteString("  mercurectl subscribe --topic '*'\n")
	b.WriteString("  mercurectl publish --topic https://example.com/hello --data 'Hello, world'\n")
	fmt.Fprintf(&b, "  curl -N '%s?topic=*'\n", hubURL)
	fmt.Fprintf(&b, "Or open the debug UI: %s/ui/\n\n", hubURL)
	_, _ = fmt.Fprint(o.IO.ErrOut, b.String()) // as the logs, best effort
}
