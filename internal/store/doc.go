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
// Entries are numbered densely from 1 (Entry.Seq). Append enforces the rules
// that depend on the ledger's state; every other check happened before.
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
//	d H16(id) H16(source)              -> seq(8)    dedupe record and lookup by id
//	e seq(8)                           -> entry     format(1) streamSeq(uvarint) recordedAt(varint ns) Raw
//	s K16(subject) at(8) seq(8)        -> summary   subject index, one key per subject of a disclosure
//	p recipient 0x00 at(8) seq(8)      -> (empty)   disclosures by recipient and time
//	t at(8) seq(8)                     -> (empty)   disclosures by time
//	r recipient                        -> JSON      recipient registry, latest definition wins
//	h index(8)                         -> hash(32)  Merkle tree: tlog stored hash number index (tree.go)
//	c size(8)                          -> note      signed checkpoint of that tree size (tree.go)
//
// H16 is the first 16 bytes of SHA-256, which bounds key sizes (ids may be
// 256 bytes, sources 1024); all sources of an id are adjacent, so looking a
// disclosure up by id alone is one prefix scan, and a dedupe hit is confirmed
// against the recorded event. K16 is the first 16 bytes of
// HMAC-SHA256(site secret, scheme 0x00 id): a data subject's identifier never
// appears in plain text in a key or an index value. The summary is compact
// binary (flags, recipient, purpose, lawful basis, regime, categories as
// length-prefixed strings), so Who is one prefix scan.
//
// The entry value holds the event's Raw CloudEvents JSON, which contains the
// subjects' identifiers in plain text. sealRaw and openRaw are where its
// encryption will go; the format byte leading every entry value tells the two
// forms apart.
//
// Every entry is a leaf of an RFC 6962 Merkle tree over the entry values,
// which are immutable once written: Append writes the tree hashes a new leaf
// completes (package tlog's "stored hashes", about two per entry) in the
// batch's transaction, so the tree always covers exactly the committed
// entries. Signed checkpoints are written by the Checkpointer in their own
// transactions, under keys no batch writes. Verify recomputes it all offline.
// Package checkpoint describes the tree and the checkpoints.
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
//	n notice                           -> sealed    notice payload (subject, rectified values): format(1) sealRaw(JSON)
//	u due(8) notice                    -> (empty)   obligations by due date (--overdue)
//	v recipient 0x00 due(8) notice     -> (empty)   obligations by recipient and due date
//	w opened(8) notice                 -> due(8)    open obligations only, in (OpenedAt, Notice) order
//	j K16(subject) notice              -> recipient obligations by subject (Who's OpenObligations)
//	g K16(subject) request             -> (empty)   requests by subject (the subject report)
//	x K16(subject)                     -> markers   the subject's erasures: (decidedAt(8), request, categories)...
//	f seq(8)                           -> request   disclosure entry seq came after that erasure
//
// The disclosure summary in the subject index also ends with the
// disclosure's event id, and its flags byte marks a disclosure made after
// an erasure of the same data. The notice payload is the only propagation
// value holding personal data; like Raw it goes through the sealRaw seam.
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
