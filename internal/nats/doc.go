// Package nats is sharelog's side of NATS JetStream: the embedded server
// (the single-process default), the streams (SHARELOG_IN, SHARELOG_REJECTED),
// the publisher that HTTP input and `sharelog publish` go through, the
// ingest loop, the ledger's one writer, and the NATS micro service that
// answers producers as POST /v1/events does (service.go).
//
// Ledger order is SHARELOG_IN order. The ingest loop reads the stream with an
// ordered consumer that starts after the last stream sequence the ledger has
// applied (kept in Badger, committed with each batch), so the ledger itself is
// the cursor: no consumer acks, and a restart resumes exactly where the last
// committed batch ended. Input that cannot be recorded is republished, original
// bytes with sharelog's reason headers (none of the original headers, which
// may hold identifiers), to SHARELOG_REJECTED (under RejectedSubject: by
// reason and by the producer's source; kept StreamConfig.RejectedMaxAge)
// before the batch that skips it commits, so nothing is dropped silently. A failed batch is retried, with
// backoff, from the last committed one; a SHARELOG_IN that is gone or ends
// before the ledger's position stops the loop with an error (Ingester.Run);
// in replica mode so does one that starts after it (ErrStreamGap): the
// ledger is then rebuilt from a snapshot (package snapshot) at the next start.
//
// Each signed checkpoint of the ledger's tree is published where others keep
// it (checkpoints.go): on the subject sharelog.checkpoint and in the
// key-value bucket SHARELOG_CHECKPOINTS, which an auditor reads with
// read-only permissions and mirrors.
//
// With an --access file the embedded server authenticates each principal and
// gives it the permissions of its roles (auth.go, permissions.go: one table,
// also printed by `sharelog nats-config`), and the ingest loop and the service
// vouch each event's publisher by the subject it came on.
package nats
