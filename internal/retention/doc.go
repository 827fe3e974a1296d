// Package retention runs the forgetting job: it decides when the ledger
// forgets a data subject, has the one writer do it, and then makes the
// erasure physical.
//
// # When
//
// Each round (Job.Round, every Config.Every in Run) asks the ledger for its
// candidates (store.Store.ForgetCandidates):
//
//   - the subject of an erasure of all its data, once every obligation of
//     the erasure is acknowledged or exempted, or once
//     Policy.ErasureAfter has passed since the decision;
//   - a subject all of whose disclosures have passed the retention period
//     of their purpose and regime (the policy file's retention section).
//
// A candidate covered by an active legal hold (org.sharelog.hold.v1, by
// subject, purpose or category) waits, and the round reports the holds;
// once they are released the next round forgets it.
//
// # How
//
// Forgetting changes the ledger's state, so it goes through the one
// writer: the job publishes org.sharelog.subject.forgotten.v1 (source
// "sharelog/retention", id "forget-<subject hash>", data: the keyed hash
// and the reason, never the identifier) to sharelog.in.notify, which only
// sharelog may publish to, and waits for the ledger to apply it. The store
// destroys the subject's data keys, salt and index entries in that entry's
// transaction (see package store, forget.go).
//
// # Physical erasure
//
// Then, in the same round:
//
//  1. JetStream: every SHARELOG_IN message of the subject's entries (and
//     of their later deliveries, duplicates and conflicts), every refused
//     message that named the subject in SHARELOG_IN and SHARELOG_REJECTED
//     (the ledger files a rejection under the subjects its data names, by
//     keyed hash), and every SHARELOG_NOTICES message of its notices, is
//     deleted with
//     SecureDeleteMsg, which overwrites the message's bytes in the stream's
//     block file. A message already purged from SHARELOG_IN (serve
//     --stream-keep purges what the ledger has applied and checkpointed)
//     is gone and skipped. The ledger is then no longer reproducible from
//     SHARELOG_IN for those entries: that is the deliberate price of
//     forgetting. The ledger, with its Merkle tree, is the record; the
//     entries and their leaves are unchanged, so verification still passes.
//  2. Badger: store.Store.Compact flushes the memtables and their logs and
//     flattens the LSM tree, so no file of the ledger still holds a
//     destroyed key or salt.
//
// So a subject is physically gone at most one round interval (Every,
// default one hour) after it became a candidate, plus the round's own
// time, which Compact dominates and which grows with the ledger's size.
// A refused message whose data names no one readable is not linked to a
// subject: SHARELOG_REJECTED's MaxAge (serve --rejected-max-age) bounds it.
package retention
