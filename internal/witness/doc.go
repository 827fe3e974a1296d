// Package witness has sharelog's replicas witness each other's ledgers
// (issue 15 item 4).
//
// Every replica signs checkpoints of its own Merkle tree (package
// checkpoint) with its own key. In replica mode each one also publishes its
// latest signed checkpoint, with its public verifier key, on
// sharelog.witness.<replica> (SubjectPrefix), captured by the stream
// SHARELOG_WITNESS, which keeps the last few of each replica so that a
// replica that starts late still sees everyone's latest. Each replica reads
// the others' and checks them against its own tree:
//
//   - same size: the roots must be equal;
//   - the other's size below its own: the other's root must be its own
//     tree's root at that size (Tree.RootAt, from its stored hashes), so a
//     rewritten tree is caught even when no two replicas have the same size;
//   - above its own: the latest is kept pending and checked when its own
//     tree has caught up (only the latest: a rewrite of history shows in
//     every later root too);
//   - a replica that signs two different roots for one size is named too.
//
// A difference is latched until the process restarts: once a root differed,
// a later match does not clear it (the tree it signed was rewritten, or
// ours). It raises the alarm: the gauge sharelog_witness_mismatch{replica},
// an error log naming the other replica with both sizes and roots (hex; the
// checkpoints hold no personal data), and /readyz.
//
// Majority: a replica compares itself with the replicas whose checkpoints it
// has checked. It reports itself not ready when those that agree with it,
// itself included, are not more than half of them, itself included: with
// three replicas and one tampered, the tampered one sees two replicas
// differ and goes unready, while the two others stay ready and name it in
// /readyz's detail and their logs. With two replicas a difference has no
// majority: both go unready, since neither can tell which ledger is right;
// an operator verifies each against the checkpoints auditors keep (sharelog
// verify). Run three replicas to keep serving through a tampered one.
//
// Keys: a checkpoint is accepted only with a valid signature of its
// replica's key. With a keys file (--witness-keys: lines "REPLICA
// VERIFIER-KEY") only the keys it lists are accepted. Without one, a
// replica's key is pinned on first sight (trust on first use, logged with
// the line to put in a keys file) for as long as the process runs; a
// checkpoint under that name signed by another key is refused and named
// (sharelog_witness_checks_total{result="refused"}, an error log and
// /readyz's detail), as is one that does not verify. Refusals do not count
// in the majority: they say that someone forged a checkpoint, not which
// ledger is right.
package witness
