package cloudevents

import (
	"sync"

	"github.com/sharelog/sharelog/internal/ledger"
)

// maxHandoffBytes bounds the Raw bytes of the events a Decoder holds for
// DecodeMessage after Handoff; past it the oldest are dropped, and decoded
// again when their messages arrive.
const maxHandoffBytes = 16 << 20

// handoff holds events the Decoder decoded and validated that are on their
// way to SHARELOG_IN, by their Raw text, until DecodeMessage reads them
// back. Decoding is a function of the bytes (and of the transport headers,
// which DecodeMessage still checks), so an event found here is what decoding
// its Raw again would give.
type handoff struct {
	mu     sync.Mutex
	byRaw  map[string]heldEvent
	order  []heldKey // in the order they were added, oldest first
	seq    uint64
	bytes  int
	budget int
}

type heldEvent struct {
	ev  *ledger.Event
	seq uint64
}

// heldKey is an entry of order; it is stale once byRaw no longer holds its
// key with its seq (taken, or taken and handed off again).
type heldKey struct {
	key string
	seq uint64
}

// Handoff tells the Decoder that events, which it returned, are about to be
// published to SHARELOG_IN in the structured mode (their Raw as the message
// body). When DecodeMessage then reads one of them, it checks the message's
// headers and returns a copy of the event instead of decoding the same
// bytes a second time. Events never read back are dropped oldest first once
// they hold more than 16 MiB. Call it before publishing: the ingest may
// read a message before Publish returns.
func (d *Decoder) Handoff(events []*ledger.Event) {
	h := &d.handoff
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byRaw == nil {
		h.byRaw = make(map[string]heldEvent)
		h.budget = maxHandoffBytes
	}
	for _, ev := range events {
		if ev == nil || len(ev.Raw) > h.budget {
			continue
		}
		k := string(ev.Raw)
		if _, ok := h.byRaw[k]; ok {
			continue
		}
		for h.bytes+len(k) > h.budget && len(h.order) > 0 {
			h.dropOldest()
		}
		h.seq++
		h.byRaw[k] = heldEvent{ev: ev, seq: h.seq}
		h.order = append(h.order, heldKey{key: k, seq: h.seq})
		h.bytes += len(k)
	}
	if len(h.order) > 2*len(h.byRaw)+1024 {
		// Most entries of order are stale: keep the others.
		kept := h.order[:0]
		for _, o := range h.order {
			if h.holds(o) {
				kept = append(kept, o)
			}
		}
		clear(h.order[len(kept):])
		h.order = kept
	}
}

// holds reports whether o is not stale; h.mu is held.
func (h *handoff) holds(o heldKey) bool {
	e, ok := h.byRaw[o.key]
	return ok && e.seq == o.seq
}

// dropOldest removes the first entry of order, and its event if it is still
// held; h.mu is held.
func (h *handoff) dropOldest() {
	o := h.order[0]
	h.order[0] = heldKey{}
	h.order = h.order[1:]
	if h.holds(o) {
		delete(h.byRaw, o.key)
		h.bytes -= len(o.key)
	}
}

// take returns a copy of the event handed off with Raw raw, and forgets it,
// or returns nil.
func (h *handoff) take(raw []byte) *ledger.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.byRaw[string(raw)]
	if !ok {
		return nil
	}
	delete(h.byRaw, string(raw))
	h.bytes -= len(raw)
	cp := *e.ev // the caller may set From and Internal
	return &cp
}
