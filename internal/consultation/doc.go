// Package consultation records the consultation log (DPA 2018 s.62): each
// request that reads a person's data becomes an org.sharelog.consultation.v1
// entry of the ledger before it is answered.
//
// A consultation takes the ordinary input path of sharelog's own events: it
// is published to SHARELOG_IN on sharelog.in.notify (the subject only
// sharelog may publish to) and applied by the ingest loop, the ledger's one
// writer, in its batches. Log.Consult returns once the entry is committed,
// or an error: the caller then refuses the request (fail closed). Calls
// made at the same time are published together (asynchronously: serve
// gives Log a publisher without atomic batches, whose commit would cost
// JetStream a sync per batch) and the ingest applies them in one
// transaction, with one sync: a lookup costs no sync of its own.
package consultation
