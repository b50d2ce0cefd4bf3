package hub

// Limits on what one request may carry. They are the same on every
// transport, so that what one store accepts no other refuses; the README
// section "Security and limits" lists them.
const (
	// MaxTopicLength caps one topic of a publish and one selector of a
	// subscription, in both generations, in bytes. Matching costs grow with
	// topic length, and every subscription event embeds its selector.
	MaxTopicLength = 4096
	// MaxIDLength caps an update id, and a cursor (a longer cursor cannot
	// name a stored update and is answered as unknown). The bolt store
	// indexes ids in keys of at most 32 KiB; 4 KiB keeps every store far
	// from its own bound.
	MaxIDLength = 4096
	// MaxTypeLength caps an update's SSE event type.
	MaxTypeLength = 4096
)
