package conformance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mercurectl/mercurectl/internal/client"
)

// prepare probes the hub: which generations it serves, whether it accepts
// the credentials at all, anonymous subscribers, and the subscriptions API.
func (r *runner) prepare(ctx context.Context) (Plan, error) {
	plan := Plan{HubURL: r.c.HubURL(), TopicPrefix: r.prefix, Skipped: map[client.Protocol]string{}}
	md, err := r.c.Metadata(ctx)
	if err != nil {
		return plan, err // wraps client.ErrUnreachable, or ctx's error
	}
	r.md = md
	probe := &T{ctx: ctx, r: r, timeout: r.timeout, base: r.prefix + "probe/"}
	defer probe.cleanup()

	for _, g := range generationsFor(r.o.Protocol) {
		why, err := r.serves(probe, g)
		if err != nil {
			return plan, err
		}
		if why != "" {
			plan.Skipped[g] = why
			continue
		}
		plan.Generations = append(plan.Generations, g)
	}
	if len(plan.Generations) == 0 {
		var reasons []string
		for _, g := range generationsFor(r.o.Protocol) {
			reasons = append(reasons, g.String()+": "+plan.Skipped[g])
		}
		return plan, fmt.Errorf("%w: %s", ErrNoGeneration, strings.Join(reasons, "; "))
	}

	// Credentials: refused outright when every probe is refused.
	var refusals []string
	probes := 0
	for _, g := range plan.Generations {
		probe.gen = g
		for _, check := range []func(*T) (string, error){probePublish, probeSubscribe} {
			probes++
			why, err := check(probe)
			if err != nil {
				return plan, err
			}
			if why != "" {
				refusals = append(refusals, g.String()+" "+why)
			}
		}
	}
	if len(refusals) == probes {
		return plan, fmt.Errorf("%w: %s", ErrRefused, strings.Join(refusals, "; "))
	}

	// Anonymous subscribers, and the subscriptions API, per generation.
	for _, g := range plan.Generations {
		probe.gen = g
		st, _, err := probe.open(sub{sels: []sel{exact(probe.topic("anonymous"))}, token: str("")})
		if err != nil {
			return plan, err
		}
		if st != nil {
			r.anonymous = true
			st.close()
		}
		r.subsAPI[g], err = probeSubscriptionsAPI(probe)
		if err != nil {
			return plan, err
		}
	}
	return plan, nil
}

// serves returns why generation g is not checked, or "".
func (r *runner) serves(t *T, g client.Protocol) (string, error) {
	if r.signingKey == nil && r.readyGen != g {
		return fmt.Sprintf("the given tokens are %s tokens: pass --jwt-key to check %s too", r.readyGen, g), nil
	}
	if r.o.Protocol == g {
		return "", nil // forced
	}
	switch g {
	case client.Protocol08:
		if r.md == nil {
			return fmt.Sprintf("the hub serves no RFC 9728 metadata at %s, as draft-08 hubs do: it speaks draft-07 only", r.c.MetadataURL()), nil
		}
		return "", nil
	default:
		if r.md == nil {
			return "", nil // a hub without metadata is a draft-07 hub
		}
		// A draft-08 hub: does it serve draft-07 too? A topic= subscription
		// tells (draft-08-only hubs answer 400).
		t.gen = client.Protocol07
		st, rp, err := t.open(sub{sels: []sel{exact(t.topic("generation"))}})
		if err != nil {
			return "", unreachable(err)
		}
		if st != nil {
			st.close()
			return "", nil
		}
		switch rp.status {
		case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
			return fmt.Sprintf("the hub does not serve draft-07: a topic= subscription got %s", rp), nil
		}
		return "", nil
	}
}

// probePublish publishes one update; it returns why the token was refused.
func probePublish(t *T) (string, error) {
	rp, err := t.publishReply(pub{topics: []string{t.topic("credentials")}, data: str("probe")})
	if err != nil {
		return "", unreachable(err)
	}
	if rp.status == http.StatusUnauthorized || rp.status == http.StatusForbidden {
		return "publish: " + rp.String(), nil
	}
	return "", nil
}

// probeSubscribe subscribes once; it returns why the token was refused.
func probeSubscribe(t *T) (string, error) {
	st, rp, err := t.open(sub{sels: []sel{exact(t.topic("credentials"))}})
	if err != nil {
		return "", unreachable(err)
	}
	if st != nil {
		st.close()
		return "", nil
	}
	if rp.status == http.StatusUnauthorized || rp.status == http.StatusForbidden {
		return "subscribe: " + rp.String(), nil
	}
	return "", nil
}

// probeSubscriptionsAPI reports whether the subscriptions API answers.
func probeSubscriptionsAPI(t *T) (bool, error) {
	rp, err := t.subscriptionsGet(subscriptionsPath, nil)
	if err != nil {
		return false, unreachable(err)
	}
	return rp.status == http.StatusOK, nil
}

// unreachable marks a transport failure during the probes as the hub being
// unreachable.
func unreachable(err error) error {
	var we *waitError
	if errors.Is(err, context.Canceled) || errors.As(err, &we) || errors.Is(err, client.ErrUnreachable) {
		return err
	}
	return fmt.Errorf("%w: %w", client.ErrUnreachable, err)
}
