// Package checkpoint makes sharelog's ledger tamper-evident: the signed
// checkpoints of its Merkle tree, the keys that sign them, the proofs a third
// party checks against them, and the goroutine that signs them.
//
// # The tree
//
// Every ledger entry is a leaf of an RFC 6962 / RFC 9162 Merkle tree
// (SHA-256; leaf hash SHA-256(0x00 || leaf data), node hash
// SHA-256(0x01 || left || right)), in ledger order: entry Seq s is leaf
// index s-1, and the tree size is the number of entries. The leaf data is
// the entry's stored value, byte for byte, as written under its entry key:
// format byte, header and sealed Raw event (see package store). Entry values
// are immutable once written: nothing ever rewrites one, so every leaf can be
// recomputed for as long as the ledger exists. Personal data in an entry is
// only ever held as ciphertext and keyed hashes (the Raw event is sealed), so
// forgetting a person destroys a key, never a leaf, and verification keeps
// working.
//
// The tree itself is computed by golang.org/x/mod/sumdb/tlog, not by
// sharelog: package store keeps it in tlog's tiles of height 8 (as the Go
// checksum database does), each written once, in the transaction of the
// entries that fill it; the hashes of the partial tiles at the right edge
// (fewer than 256 per tile level) are held in memory by the writer and
// recomputed from the last entries by anyone else, which makes tree roots
// and proofs a handful of reads.
//
// # Checkpoints
//
// A checkpoint is a C2SP signed note (c2sp.org/tlog-checkpoint and
// c2sp.org/signed-note) whose body is three lines: the origin (the signing
// key's name, "sharelog/<host>" by default), the tree size in decimal and
// the root hash in standard base64. It is signed with Ed25519 through
// golang.org/x/mod/sumdb/note. The Checkpointer signs one at most once a
// second and only when the tree has grown, and once more when it stops, so
// a checkpoint trails the ledger by at most about a second while entries
// arrive.
//
// Checkpoints are stored by package store under their own key kind, in their
// own Badger transactions, apart from the ingest loop's batches. They are not
// events: a checkpoint published through SHARELOG_IN would itself become an
// entry, growing the tree it signs, so the ledger would never be still.
// Writing them beside the one writer is safe because their keys are
// disjoint from every key a batch writes and Badger's conflict detection is
// off; nothing in a checkpoint changes the ledger's state, it only attests
// to it.
//
// # Keys
//
// The signing key lives in <data>/checkpoint.key by default, or in the file
// `serve --checkpoint-key-file` names (the note signer key text,
// "PRIVATE+KEY+<name>+<hash>+<key>"), created with mode 0600 on first start;
// a key file its group or others may read is refused. The verifier key
// ("<name>+<hash>+<key>") is written to <data>/checkpoint.pub and printed by
// `sharelog checkpoint-key`. Anyone who can write the data directory can
// read a key kept inside it and re-sign a rewritten ledger, so serve warns
// while it is there, and refuses to start with a new key elsewhere while the
// old one is still in the data directory (it must be moved, not replaced).
//
// # Kept checkpoints
//
// The Checkpointer publishes each checkpoint it signs through a Publisher:
// package nats puts it on the subject sharelog.checkpoint and in the
// key-value bucket SHARELOG_CHECKPOINTS (key "latest", with history), where
// an auditor subscribes or mirrors it. A publication that fails is tried
// again at the next tick; the checkpoint is stored either way. An auditor
// holds the verifier key and checkpoints kept apart from the data directory
// (`sharelog checkpoints --nats URL --save FILE`, or GET /v1/checkpoint):
// those are the defence against a ledger rewritten and re-signed by someone
// who could read the key. `sharelog verify --checkpoint FILE` checks the
// ledger extends each, and names a ledger TRUNCATED (smaller than the kept
// checkpoint), ROLLED BACK / REWRITTEN (its tree does not extend the kept
// one) or RE-SIGNED (its own checkpoints signed by another key, or by the
// key over another root).
//
// # Verifying
//
// `sharelog verify --data DIR --key PUBKEY` (store.Verify) checks a data
// directory offline. It opens the ledger read-only, so the server must be
// stopped or DIR must be a copy (a copy taken while the server ran is
// recovered in a scratch directory first). It recomputes every leaf from the
// entry values and every tree hash from the leaves, compares them with the
// stored tiles (and the one key per hash of ledgers written before tiles),
// checks every stored checkpoint (and any the auditor
// passes with --checkpoint) for a valid signature and for a root equal to
// the recomputed tree of its size, and refuses a ledger shorter than a
// signed checkpoint. Since every checkpoint is matched against one
// recomputed tree, each later checkpoint is consistent with every earlier
// one. It prints "intact: size N root R", or names the first entry that was
// modified, deleted, inserted or moved, or the rollback.
//
// The stored tiles are what let verify name the exact entry: they are the
// ledger's own record of each leaf. Someone who rewrites an entry and
// recomputes the tiles to match is caught by the signed checkpoints
// instead, which narrows the change to the entries since the last matching
// checkpoint; so is a change to the last entries, of the partial tile, whose
// leaves are not stored.
//
// # Proofs over HTTP
//
// GET /v1/checkpoint serves the latest signed checkpoint (or, with ?size=,
// the one of that size); GET /v1/proof/inclusion?seq=N&size=M an inclusion
// proof of entry N in the tree of size M; GET /v1/proof/consistency?from=A&to=B
// a consistency proof. `sharelog prove` and `sharelog consistency` fetch
// them and check them against checkpoints whose signatures they verify with
// the public key the caller holds; nothing the server says is trusted
// without it.
package checkpoint
