// Package ledger is sharelog's domain: the events it records (disclosures,
// recipients, rectification, erasure and restriction requests, notices, acks,
// exemptions and holds), the ledger entry they become, the answers to a DPO's
// questions, and the error vocabulary every other package speaks.
//
// It imports only the standard library. Storage (internal/store), transport
// (internal/nats, internal/http) and validation (internal/cloudevents) depend on
// it; it depends on none of them.
package ledger
