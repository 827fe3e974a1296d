// Package store keeps sharelog's ledger in Badger: the entries, the record
// that makes each event count once, the indexes that answer the DPO's
// questions, and the stream sequence the ledger has applied.
//
// # Writing
//
// The ledger has one writer, the ingest loop. It applies SHARELOG_IN in
// stream order, in batches: Begin, Append for each event, Commit with the
// last stream sequence of the batch. A batch is one Badger transaction, so an
// event's dedupe record, its entry, its indexes and the applied stream
// sequence commit together, with one sync (Badger runs with SyncWrites).
// Entries are numbered densely from 1 (Entry.Seq). The store holds no rule:
// Append asks ledger.Decide what the event does, reading the ledger through
// ledger.State (state.go, over the batch's transaction), and writes the plan
// it returns (batch.go); every check that does not depend on the ledger
// happened before.
//
// Besides the recipient registry (see Propagation), the writer keeps in
// memory only what saves it reads and work, each bounded: the salts of
// subjects named recently (saltcache.go: 64 Ki slots, about 3 MiB), the
// keys of subjects sealed under recently, expanded for AES-GCM
// (sealcache.go: 4 Ki slots, about 3.3 MiB), and the set of the subjects
// that may have erasure markers (x keys, below), so that a disclosure of
// anyone else reads none (marked.go). The set is filled at Open by a
// key-only scan of the x keys, grows when a batch writes an x key, before
// it commits, and shrinks only at the next Open: 24 to 40 bytes a subject
// ever erased or restricted (a million of them: at most 40 MiB).
//
// Append looks the event's dedupe key (d) up in Badger only when the dedupe
// filter cannot rule it out (seen.go): a Bloom filter in memory of every d
// key the ledger holds, at 1% false positives, 1.2 bytes per key of
// capacity. Open sizes it for twice the entries, 4M keys at least (4.8
// MiB: a ledger of up to 2M events, 1M included; 23 MiB when opened at
// 10M), so 1.2 to 2.4 bytes per event, 3.6 for the time a larger one is
// built when the keys outgrow it. It builds it in the background from a
// key-only scan of d on a snapshot, while the writer adds each d key it
// writes, in the batch, before commit; until the scan ends every key is
// looked up. d keys are never deleted, so the filter never misses one.
//
// Commits are pipelined (CommitNext, pipeline.go): while Badger writes and
// syncs batch N (write-ahead log, memtable, fsync), the writer appends
// batch N+1. Badger opens a transaction at a read timestamp that waits for
// every commit issued before it, so N+1's transaction is opened just before
// N's commit is issued, and its snapshot lacks N's writes. N+1 starts from
// N's state kept in memory: applied stream sequence, count, Merkle tail,
// the indexedBy record, recipient registry and profiles, and N's salts in
// the writer's salt cache. What N+1 reads from its snapshot is checked by
// Badger's conflict detection: when N wrote a key N+1 read (a dedupe
// record, a salt, erasure markers, a request, an obligation), Badger
// refuses N+1's commit. It does not see a key N adds to a range N+1 scans,
// so a speculative batch does not scan (subject index, holds, a forgotten
// subject's records): that fails the batch with ErrSpeculationFailed. Nor
// does it refuse an event (the ingest loop republishes a refusal before the
// commit, and it may rest on a stale read): it stops at the event with
// ErrRefusalDeferred, holding the events before it, whose commit Badger
// still refuses if the rules read for the refused event what N wrote; the
// event then goes to a batch begun after N's commit. A failed batch records
// nothing and fails the batch after it, and the ingest loop applies their
// events again on batches begun after N's commit. At most one commit is in
// flight, commits complete in stream order, and Applied, Count and
// WaitApplied move only once a batch is durable. The writes made beside
// the one writer (checkpoints, scrub and shred records, Compact's
// sentinel) read nothing, so Badger never refuses them, and write keys no
// batch reads, so it never refuses a batch for them. A replica taking shared secrets
// (Config.Secrets) commits one batch at a time, and so does the writer
// while Compact waits.
//
// # Key layout
//
// Every key starts with one byte naming its kind. Numbers are big-endian, so
// keys sort by them. "at" is a DisclosedAt instant as Unix nanoseconds with
// the sign bit flipped (8 bytes, sorts like time; clamped to 1678–2262), and
// a position is at(8) seq(8): the (DisclosedAt, Seq) order of listings, and
// the content of a page cursor.
//
//	m                                  -> applied stream seq(8) entry count(8)
//	V                                  -> format(8) what a sharelog must understand to read the ledger: 2 since entries are keyed \x00 seq; refused when newer than the sharelog's (format.go)
//	Y                                  -> seq(8)    disclosures from entry seq on have no y keys (written by the first batch a ledger without it commits)
//	d H16(id) H16(source)              -> seq(8)    dedupe record and lookup by id
//	\x00 seq(8)                        -> entry     plain:  1 streamSeq(uvarint) recordedAt(varint ns) Raw
//	                                                sealed: 3 streamSeq(uvarint) recordedAt(varint ns) len+clear keyref sealed-personal
//	                                                kept as: 4 S2-block(entry, against dictionary 1), in the value log (entrydict.go); 1 and 3 as written before it
//	e seq(8)                           -> entry     as above: where ledgers written before kept entries 1 to some n; the entries after n are under \x00
//	                                                (entryKey: first in key order, so that merges of Badger's levels do not rewrite every older entry key)
//	s K16(subject) at(8) seq(8)        -> summary   subject index, one key per subject of a disclosure
//	P H8(profile)                      -> profile   a summary's purpose, lawful basis, regime and categories, written once, named by summaries (profiles.go)
//	p recipient 0x00 at(8) seq(8)      -> (empty)   disclosures by recipient and time
//	t at(8) seq(8)                     -> (empty)   disclosures by time: written by ledgers before, read by no one (verify checks each names a disclosure)
//	r recipient                        -> JSON      recipient registry, latest definition wins
//	T level(1) n(8)                    -> hashes    Merkle tree: full tile n of tile level level (tlog.Tile, height 8): 256 hashes of 32 bytes, written once, by the batch that fills it (tree.go)
//	h index(8)                         -> hash(32)  Merkle tree of ledgers written before tiles: tlog stored hash number index, read, never written (tree.go)
//	c size(8)                          -> note      signed checkpoint of that tree size (tree.go)
//	C t|p H16(principal)|s K16 at(8) seq(8) -> (empty) the consultation log by time, principal, person (consultations.go)
//
// The keystore (crypto.go), apart from the entries but in the same Badger
// so that a batch changes both atomically:
//
//	a L16(subject)                     -> salt(32)  the subject's random salt; with the master key it gives the subject's key
//	z K16(subject)                     -> L16       the locator of the subject's salt
//	k seq(8)                           -> wrapped   data key of entry seq, which names several subjects: nonce(12) AES-256-GCM(master key, key, aad "k" seq)
//	y K16(subject) seq(8)              -> (empty)   entry seq is sealed under a key this subject's forgetting destroys (kept after it: the hash then links to no one);
//	                                                not written for a disclosure from entry Y on, whose s keys say the same; forgetting writes it
//	                                                then for a disclosure naming several people, for verify
//	l hold                             -> JSON      legal hold (holds.go)
//	i seq(8)                           -> JSON      JetStream messages to scrub after forgetting entry seq (forget.go)
//	U seq(8) streamSeq(8)              -> (empty)   a later delivery of entry seq's event in SHARELOG_IN, scrubbed with it (replay.go)
//	R L16(subject) streamSeq(8)        -> seq(8)    a refused message naming the subject: its SHARELOG_IN and SHARELOG_REJECTED sequences (replay.go)
//	S K16(subject)                     -> name      the name of the subject's salt in the secrets replicas share (secrets.go; replicas only)
//	D seq(8)                           -> JSON      shared secrets forgetting entry seq destroyed, to destroy in SHARELOG_KEYS (secrets.go; replicas only)
//	!                                  -> (empty)   sentinel written and dropped by Compact
//
// H16 is the first 16 bytes of SHA-256, which bounds key sizes (ids may be
// 256 bytes, sources 1024); all sources of an id are adjacent, so looking a
// disclosure up by id alone is one prefix scan, and a dedupe hit is confirmed
// against the recorded event. The summary is compact binary (flags,
// recipient, purpose, lawful basis, regime, categories as length-prefixed
// strings), so Who is one prefix scan. The part many disclosures share, the
// profile (purpose, lawful basis, regime, categories), is written once
// under P and named in the summary by its 8-byte hash (flag 8; summaries
// written before hold it inline, and are read as they are).
//
// There is no index by time alone: it would be one more key for every
// disclosure. The listing of every disclosure merges the recipients'
// indexes (p), each in (DisclosedAt, Seq) order, one iterator per
// recipient with a disclosure (query.go): about 1.3 ms more than one index
// for a page of 100 among 200 recipients (BenchmarkDisclosuresAll).
//
// Badger keeps each entry compressed on its own (S2) against a dictionary
// of the event vocabulary, in its value log (written once, not rewritten
// by compactions); everything above reading and writing entries sees the
// entry value, uncompressed (entrydict.go). Entries written before are
// kept as they were and read as they are.
//
// Every entry is a leaf of an RFC 6962 Merkle tree over the entry values,
// which are immutable once written. The tree is stored in tlog tiles of
// height 8, as the Go checksum database keeps its own: a tile is written
// once, in the transaction of the batch whose entries fill it, so the
// stored tree always covers exactly the committed entries; the hashes of
// the partial tiles at the right edge (at most 255 per tile level) are not
// stored: the writer keeps them in memory, and readers and Verify recompute
// them from the last entries' values and the full tiles (tree.go). A commit
// writes a tree key once every 256 entries. Signed checkpoints are written by the Checkpointer in their own
// transactions, under keys no batch writes. Verify recomputes it all offline.
// Package checkpoint describes the tree and the checkpoints.
//
// # Subjects: keyed hashes with a per-subject salt
//
// A data subject's identifier never appears in plain text in a key or a
// value. L16, the locator, is the first 16 bytes of HMAC-SHA256(site
// secret, scheme 0x00 id): it finds the subject's salt. K16, the subject's
// keyed hash used by every index, is the first 16 bytes of
// HMAC-SHA256(salt, scheme 0x00 id). The salt is made (32 random bytes)
// when a disclosure, request or hold first names the subject; on a replica
// it is the one every replica shares (secrets.go). Forgetting
// the subject deletes a and z: afterwards no identifier leads to K16, and
// the K16 left in request records and forgettings links to no one.
//
// # Entries: a clear part and a sealed part
//
// An entry that names subjects (disclosures, requests, acknowledgements and
// exemptions of their notices, holds by subject) is sealed (redact.go): its
// value holds a clear part, the event's Raw with the values of identifiers,
// free text, the people who decided or disclosed, record references and
// rectified values cut out and replaced by "" or null, and the personal
// part, those values and where they go, encrypted with AES-256-GCM and
// bound to its entry's place, "e" seq(8) (entryAAD: the key entries had
// when sealing began, wherever they are kept now). Joining the two gives back Raw byte for byte;
// only the personal values are ciphertext, so the rest still compresses.
//
// The key (keyref: 2 K16, or 1 seq(8)) is the subject's key when the entry
// names one subject: HKDF-SHA256 of the master key (Config.MasterKey or
// MasterKeyFile, 32 bytes, made on first start) with the subject's salt,
// never stored. An entry naming several subjects has a random data key of
// its own, kept in the keystore (k seq) wrapped by the master key. Either
// way the entry is indexed under each subject it names: a disclosure by
// its subject index keys (s), other entries by y (and disclosures too in
// ledgers written before Y). Entries that
// name no one (recipients, deliveries, forgettings) stay plain. Entry
// values are never rewritten, so every Merkle leaf stays valid whatever is
// forgotten.
//
// Reading an entry opens the personal part when its key exists; when it is
// gone (the subject was forgotten) the entry is read from the clear part
// and marked Forgotten, with empty subject identifiers. Notice payloads
// (n) are sealed under the key of their request's entry.
//
// # Forgetting
//
// org.sharelog.subject.forgotten.v1 (published by sharelog's retention job
// on sharelog.in.notify, refused from anywhere else) destroys, in its
// entry's transaction, the subject's salt and locator (and with the salt
// the subject's key), the data keys of the entries naming it with others
// (a disclosure naming several people becomes unreadable for all of them:
// one data key seals it; the others keep their subject index entries), its subject index, obligation and request
// indexes, erasure markers and notices; it keeps obligations and request
// records, so status still shows every recipient told. Legal holds stop it.
// See forget.go and holds.go.
//
// Deleted keys stay in Badger's files until compaction: Compact (run by the
// retention job after forgetting) flushes the memtables with their
// write-ahead logs and flattens the LSM tree, after which no file holds a
// destroyed key or salt. The retention package documents the bound on the
// time to physical erasure.
//
// Badger's own encryption at rest (Config.EncryptionKey or EncryptAtRest,
// a key derived from the master key) encrypts every file besides. It is
// chosen when the ledger is created: Open names a ledger kept otherwise
// (ErrLedgerUnencrypted, ErrLedgerEncrypted; atrest.go).
//
// # Replays
//
// An event whose (source, id) is recorded is compared with the recorded
// entry, opened with its key (replay.go): the same content is a duplicate,
// other content a conflict (ledger.Replay).
//
// # Propagation
//
// A rectification, erasure, restriction or lifting (propagation.go) opens,
// in the transaction of its entry, one obligation per recipient that
// received the affected data, with a notice id derived from (request,
// recipient), so a replay opens the same notices or none. Its keys
// (obligation_keys.go):
//
//	q request                          -> JSON      request record: type, decision, subject as K16, its notices
//	o notice                           -> JSON      obligation: state, attempts, answer, exemption (no identifier)
//	n notice                           -> sealed    notice payload (subject, rectified values): 3 keyref of the request's entry, sealed JSON
//	u due(8) notice                    -> (empty)   obligations by due date (--overdue)
//	v recipient 0x00 due(8) notice     -> (empty)   obligations by recipient and due date
//	w opened(8) notice                 -> due(8)    open obligations only, in (OpenedAt, Notice) order
//	j K16(subject) notice              -> recipient obligations by subject (Who's OpenObligations)
//	g K16(subject) request             -> (empty)   requests by subject (the subject report)
//	x K16(subject)                     -> markers   the subject's erasures and restrictions: (decidedAt(8), request, categories)...
//	f seq(8)                           -> request   disclosure entry seq came after that erasure
//	b seq(8)                           -> request   disclosure entry seq was made while that restriction was in force (Art. 18(2))
//
// The disclosure summary in the subject index also ends with the
// disclosure's event id (then, when the disclosure names it, the competent
// authority the data came from), and its flags byte marks an inquiry, a
// disclosure made after an erasure of the same data, and one made while it
// was restricted. The x markers hold restrictions as well as erasures. The notice payload is the only propagation
// value holding personal data; it is sealed whole, under its request's key.
//
// The recipient registry is small: it is also kept in memory, replaced on
// each commit that changes it, and serves Append's checks, Recipients,
// Recipient and the names in Who.
//
// # Reading
//
// Queries run concurrently with the writer, each in its own read-only
// transaction, and see only committed batches. Badger's errors are
// translated here: a missing key becomes ledger.ENOTFOUND, a closed database
// ledger.EUNAVAILABLE.
package store
