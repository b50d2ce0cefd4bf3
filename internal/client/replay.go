package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mercurectl/mercurectl/internal/sse"
)

// DefaultIdle is how long Replay waits without traffic before deciding that
// a hub without the in-band marker has finished replaying.
const DefaultIdle = time.Second

// ReplayEnd says how a replay ended.
type ReplayEnd int

const (
	// ReplayEndMarker: the hub marked the end of the replay in-band
	// (sse.ReplayDoneComment). Exact.
	ReplayEndMarker ReplayEnd = iota + 1
	// ReplayEndIdle: nothing arrived for ReplayRequest.Idle.
	ReplayEndIdle
	// ReplayEndEOF: the hub closed the stream.
	ReplayEndEOF
	// ReplayEndStopped: OnEvent returned ErrStop.
	ReplayEndStopped
	// ReplayEndCursor: the update that was the hub's newest when the replay
	// started (its subscriptions API cursor) was received, or the hub held
	// nothing after From.
	ReplayEndCursor
)

// String returns "marker", "idle", "eof", "stopped" or "cursor".
func (e ReplayEnd) String() string {
	switch e {
	case ReplayEndMarker:
		return "marker"
	case ReplayEndIdle:
		return "idle"
	case ReplayEndEOF:
		return "eof"
	case ReplayEndStopped:
		return "stopped"
	case ReplayEndCursor:
		return "cursor"
	default:
		return fmt.Sprintf("ReplayEnd(%d)", int(e))
	}
}

// ReplayRequest describes a replay.
type ReplayRequest struct {
	// Selectors are the topics to replay (see Selector). Required.
	Selectors []Selector
	// From is the cursor: an update id, or Earliest. Required.
	From string
	// Idle is how long to wait without traffic before ending, against hubs
	// that do not mark the end of the replay; 0 means DefaultIdle.
	Idle time.Duration
	// AllowGap continues when the hub reports that From is unknown instead
	// of failing with ErrHistoryGap.
	AllowGap bool
	// NoCursorProbe skips asking the hub's subscriptions API for its
	// current cursor (see Replay).
	NoCursorProbe bool
	// OnEvent receives every replayed event, in order. Required. Returning
	// ErrStop ends the replay without error.
	OnEvent func(sse.Event) error
	// OnConnect, when set, is called every time the hub accepts a
	// connection.
	OnConnect func(ConnInfo)
	// Reconnect makes Replay reconnect, as Subscribe does, when the stream
	// ends or breaks before the replay is over (a hub restart), resuming
	// after the last event received. Without it such a replay ends with
	// ReplayEndEOF or the error.
	Reconnect bool
	// OnDisconnect, when set, is called before each reconnection, as
	// SubscribeRequest.OnDisconnect.
	OnDisconnect func(err error, delay time.Duration)
	// MaxEventSize is the reader's safety limit (0: sse.DefaultMaxEventSize).
	MaxEventSize int
}

// ReplayResult describes a finished replay.
type ReplayResult struct {
	// Events is how many events were passed to OnEvent.
	Events int
	// LastEventID is the id of the last event received (From if none).
	LastEventID string
	// Conn describes the last connection (cursors, marker).
	Conn ConnInfo
	// HubCursor is the hub's newest update id when the replay started, as
	// its subscriptions API reported it ("" when unknown).
	HubCursor string
	// Gap reports that the hub did not know the cursor of a connection
	// (From, or the last id received before a reconnection; see
	// ConnInfo.Gap); with AllowGap the replay went on, without it Replay
	// returned ErrHistoryGap.
	Gap bool
	// Reconnections is how many times the replay reconnected.
	Reconnections int
	// End says how the replay ended.
	End ReplayEnd
}

// Replay delivers the history after a cursor and returns once it has caught
// up with what the hub held when the connection was made. It connects once,
// sending r.From as the cursor, and ends:
//
//   - exactly, against a mercurectl hub: that hub sends, right after the
//     replayed history, an SSE comment (sse.ReplayDoneComment) that other
//     clients ignore, and announces it with a response header
//     (sse.ReplayMarkerHeader), so no timer is used;
//   - against other hubs, by the protocol's cursor when the hub exposes it:
//     once connected, Replay asks the subscriptions API (when enabled and
//     authorised) for the hub's newest update id, and ends when that update
//     arrives, or at once if the hub holds nothing after r.From;
//   - otherwise after r.Idle (default 1s) without traffic once the
//     connection is established: a hub sends the replay as one burst, then
//     only live updates and rare keep-alives. This is also the fallback when
//     the newest update is on another topic or private. A hub that sends
//     keep-alives more often than r.Idle keeps the replay going, and one
//     that pauses longer than r.Idle within the burst ends it early;
//   - when the hub closes the stream, unless r.Reconnect: then Replay
//     reconnects after the last event received, as Subscribe does, and goes
//     on until one of the ends above (against a mercurectl hub, the marker
//     of the new connection, which also covers what was published in the
//     meantime).
//
// The hub's cursor header (docs/protocol.md#subscribe-cursors) is compared
// with the cursor sent: if the hub does not hold it (it answers another id,
// or Earliest), updates may have been lost and Replay returns an error
// wrapping ErrHistoryGap before reading anything more, unless r.AllowGap.
// Errors of the first connection are the same as Subscribe's.
func (c *Client) Replay(ctx context.Context, r ReplayRequest) (ReplayResult, error) {
	res := ReplayResult{LastEventID: r.From}
	if r.From == "" {
		return res, fmt.Errorf("%w: replay needs a cursor (an update id or %q)", ErrInvalidRequest, Earliest)
	}
	if r.OnEvent == nil {
		return res, fmt.Errorf("%w: no event handler", ErrInvalidRequest)
	}
	idle := r.Idle
	if idle <= 0 {
		idle = DefaultIdle
	}
	var target string // the hub's newest id, when known: the end of the replay
	probed := false   // the subscriptions API was asked (once, at the start)
	sr := SubscribeRequest{
		Selectors:    r.Selectors,
		LastEventID:  r.From,
		MaxEventSize: r.MaxEventSize,
		Reconnect:    r.Reconnect,
		OnDisconnect: func(err error, delay time.Duration) {
			res.Reconnections++
			if r.OnDisconnect != nil {
				r.OnDisconnect(err, delay)
			}
		},
		OnEvent: func(ev sse.Event) error {
			res.Events++
			res.LastEventID = ev.LastEventID
			err := r.OnEvent(ev)
			if errors.Is(err, ErrStop) {
				res.End = ReplayEndStopped
			}
			if err == nil && target != "" && ev.HasID && ev.ID == target {
				res.End = ReplayEndCursor
				return ErrStop
			}
			return err
		},
		OnReplayDone: func() error {
			res.End = ReplayEndMarker
			return ErrStop
		},
	}
	s, err := c.newSubscription(ctx, sr)
	if err != nil {
		return res, err
	}
	s.activity, s.idleEnds = idle, true
	s.onConnect = func(ci ConnInfo) error {
		res.Conn = ci
		if r.OnConnect != nil {
			r.OnConnect(ci)
		}
		if ci.Gap() {
			res.Gap = true
			if !r.AllowGap {
				return fmt.Errorf("replay: %w: the hub does not hold %q (its cursor is %q); updates after it may have been lost",
					ErrHistoryGap, ci.RequestCursor, ci.ResponseCursor)
			}
		}
		if ci.ReplayMarker || r.NoCursorProbe || probed {
			return nil
		}
		probed = true
		pctx, cancel := context.WithTimeout(ctx, cursorProbeTimeout)
		cur, ok, err := c.HubCursor(pctx)
		cancel()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if err != nil || !ok {
			return nil
		}
		res.HubCursor = cur
		if cur == Earliest || cur == ci.RequestCursor {
			res.End = ReplayEndCursor // nothing after From
			return ErrStop
		}
		target = cur
		return nil
	}
	if err := s.run(ctx); err != nil {
		return res, err
	}
	if res.End == 0 {
		res.End = ReplayEndEOF
		if s.idled {
			res.End = ReplayEndIdle
		}
	}
	c.logger.DebugContext(ctx, "replay finished", "events", res.Events, "end", res.End.String())
	return res, nil
}
