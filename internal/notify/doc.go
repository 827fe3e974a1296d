// Package notify delivers notices: it tells each recipient of a person's data
// about a rectification, erasure or restriction, over the channel the
// recipient registry names, and records every attempt in the ledger.
//
// # How delivery works
//
// The store (internal/store) opens one obligation per (request, recipient)
// and builds its notice, an org.sharelog.notice.v1 CloudEvent carrying only
// what that recipient received, with a stable notice id. The Dispatcher polls
// the store for notices due an attempt (Store.DueNotices), sends each over its
// channel, and publishes one org.sharelog.notice.delivery.v1 event per attempt
// to SHARELOG_IN (subject sharelog.in.notify), like any other input. The
// ingest loop applies those records and the store updates the obligations;
// the Dispatcher changes no state itself. Before it computes the next round it
// waits until its records are applied, so that one round never sends a
// notice the previous round already delivered.
//
// Channels:
//
//   - nats: the notice is published to sharelog.notice.<recipient> in the
//     stream SHARELOG_NOTICES (EnsureStream) with Nats-Msg-Id = the notice id
//     (plus "-r<attempt>" for reminders); JetStream's ack means delivered.
//     The recipient acknowledges by publishing org.sharelog.notice.ack.v1 to
//     sharelog.in.ack.<recipient>. With an access file it reads its notices
//     live or through the durable consumer named after it that sharelog
//     makes (internal/nats EnsureRecipientConsumers), and nothing else.
//   - webhook: the notice is POSTed as a structured CloudEvent, signed with
//     the recipient's secret (Sign, Verify; see deploy/WEBHOOKS.md). A 2xx
//     means delivered, not acknowledged; anything else is retried with
//     exponential backoff and full jitter. Redirects are not followed. The
//     recipient acknowledges by POSTing a signed ack to
//     /v1/recipients/{id}/acks.
//   - manual: never sent automatically. A person exports the queue
//     (ManualQueue), sends each notice, and marks it sent (MarkSent).
//
// # Guarantees
//
// Delivery is at least once, idempotent by notice id: the notice id is
// stable, so a repeated delivery (after a crash between a send and its
// record, or a lost response) carries the same id and the recipient can
// deduplicate. No notice is lost: an obligation stays due until a record of
// its delivery is applied. A delivery record's event id is notice + "/" +
// attempt, so publishing the same record twice records it once.
//
// Nothing that identifies a data subject is logged, put in an error, a
// header or a URL: errors recorded for an attempt are of the form "HTTP 503"
// or "connection refused".
package notify
