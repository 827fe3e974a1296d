package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"math"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sharelog/sharelog/internal/ledger"
)

// Key prefixes. Each kind of key starts with one byte; doc.go describes the
// layout in full.
const (
	prefixMeta      = 'm' // m                          -> applied(8) count(8)
	prefixDedupe    = 'd' // d H16(id) H16(source)      -> seq(8)
	prefixEntry     = 0   // \x00 seq(8)                -> entry value: the first kind of key, see entryKey
	prefixEntryV0   = 'e' // e seq(8)                   -> entry value, as ledgers wrote it before (read, never written)
	prefixSubject   = 's' // s HMAC16(subject) at(8) seq(8) -> summary
	prefixRecipient = 'r' // r recipient-id             -> recipient JSON
	prefixByRecip   = 'p' // p recipient-id 0x00 at(8) seq(8) -> (empty)
	prefixByTime    = 't' // t at(8) seq(8)             -> (empty)
	prefixIndexedBy = 'Y' // Y                          -> seq(8): disclosures from entry seq on have no y keys
	prefixFormat    = 'V' // V                          -> format(8): what a sharelog must understand to read the ledger (format.go)
)

// Sizes of the hashed parts of keys.
const (
	idHashLen      = 16 // truncated SHA-256 of an event id or source
	subjectHashLen = 16 // truncated HMAC-SHA256 of a subject
	posLen         = 16 // at(8) seq(8): a ledger position in (DisclosedAt, Seq) order
)

var metaKey = []byte{prefixMeta}

// indexedByKey records the first entry whose subjects, if it is a
// disclosure, are listed by the subject index alone: the store writes no
// sealed-for keys (y) for such disclosures, whose subject index keys (s
// K16 at seq) say the same. Ledgers written before have y keys for every
// disclosure up to it; the first batch a store commits without the record
// writes it (Batch.Commit).
var indexedByKey = []byte{prefixIndexedBy}

// decodeIndexedBy decodes the value of indexedByKey.
func decodeIndexedBy(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint64(v), nil
}

// idHash returns the first idHashLen bytes of SHA-256(s).
func idHash(s string) [idHashLen]byte {
	sum := sha256.Sum256([]byte(s))
	var h [idHashLen]byte
	copy(h[:], sum[:idHashLen])
	return h
}

// dedupeKey is the key recording that the event (source, id) is in the ledger.
// Keyed by the id's hash first, so that all sources of one id are adjacent and
// Disclosure can find them with one prefix scan.
func dedupeKey(id, source string) []byte {
	k := make([]byte, 0, 1+2*idHashLen)
	k = append(k, prefixDedupe)
	hi := idHash(id)
	hs := idHash(source)
	k = append(k, hi[:]...)
	return append(k, hs[:]...)
}

// dedupeIDPrefix is the prefix of every dedupe key for the event id.
func dedupeIDPrefix(id string) []byte {
	hi := idHash(id)
	return append([]byte{prefixDedupe}, hi[:]...)
}

// entryKey is the key of entry seq. Entries are keyed in Seq order, and
// their kind sorts first. Badger's tables are cut by size, not by kind, so
// some table of every level spans the end of one kind and the start of the
// next; merged into the level below, it rewrites every table of that level
// its range covers. Keys in Seq order after another kind would put that
// range across every older entry key: in a 5M-event ledger the table
// spanning the dedupe records (d) and the entries (then e) overlapped 39
// tables of the last level, where other tables overlapped 1 to 9, and over
// a 10M-event ingest such merges rewrote 35 tables, then more as the entries
// grew, up to 81: 2.1-4.7 s of both cores each (docs/performance-history.md,
// tenth round). First in key order, the range of a table that
// ends among the newest entries and goes on to the next kind covers no older
// entry.
func entryKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixEntry
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

// entryV0Key is the key entry seq had in ledgers written before entryKey
// moved it first: they hold entries 1 to some n there, and the entries after
// n under entryKey.
func entryV0Key(seq uint64) []byte {
	k := entryKey(seq)
	k[0] = prefixEntryV0
	return k
}

// entryAAD is the additional data that binds the sealed part of entry seq
// to its place in the ledger: its key as it was when sealing began
// (entryV0Key), wherever the entry is kept.
func entryAAD(seq uint64) []byte { return entryV0Key(seq) }

// getEntryItem reads entry seq's item within txn: under entryKey, or
// under entryV0Key in a ledger written before.
func getEntryItem(txn *badger.Txn, seq uint64) (*badger.Item, error) {
	item, err := txn.Get(entryKey(seq))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return txn.Get(entryV0Key(seq))
	}
	return item, err
}

// entryIterator iterates over every entry of a ledger in Seq order, as a
// badger.Iterator over one prefix does: first those under prefixEntryV0,
// all written before any under prefixEntry and so of lower Seq, then those
// under prefixEntry.
type entryIterator struct {
	its [2]*badger.Iterator
	i   int
}

// newEntryIterator opens an entryIterator within txn (a read-only one: it
// opens two Badger iterators) with opts' options but its prefix.
func newEntryIterator(txn *badger.Txn, opts badger.IteratorOptions) *entryIterator {
	e := &entryIterator{}
	for i, p := range []byte{prefixEntryV0, prefixEntry} {
		o := opts
		o.Prefix = []byte{p}
		e.its[i] = txn.NewIterator(o)
	}
	return e
}

func (e *entryIterator) Rewind() {
	e.i = 0
	e.its[0].Rewind()
	e.its[1].Rewind()
	e.skip()
}

// skip goes on to the entries under prefixEntry once those under
// prefixEntryV0 are done.
func (e *entryIterator) skip() {
	if e.i == 0 && !e.its[0].Valid() {
		e.i = 1
	}
}

func (e *entryIterator) Valid() bool        { return e.its[e.i].Valid() }
func (e *entryIterator) Item() *badger.Item { return e.its[e.i].Item() }
func (e *entryIterator) Close()             { e.its[0].Close(); e.its[1].Close() }

func (e *entryIterator) Next() {
	e.its[e.i].Next()
	e.skip()
}

func recipientKey(id string) []byte {
	return append([]byte{prefixRecipient}, id...)
}

// subjectHasher computes keyed hashes of subject identifiers. It is not safe
// for concurrent use; each batch and each query has its own.
type subjectHasher struct {
	mac   hash.Hash
	buf   []byte
	sum   []byte
	keyed *macer // HMACs under subjects' salts; nil until the first
}

func newSubjectHasher(secret []byte) *subjectHasher {
	return &subjectHasher{mac: hmac.New(sha256.New, secret)}
}

// hash returns the first subjectHashLen bytes of
// HMAC-SHA256(secret, scheme 0x00 id). The result is valid until the next call.
func (h *subjectHasher) hash(s ledger.Subject) []byte {
	h.buf = append(h.buf[:0], s.Scheme...)
	h.buf = append(h.buf, 0)
	h.buf = append(h.buf, s.ID...)
	h.mac.Reset()
	h.mac.Write(h.buf)
	h.sum = h.mac.Sum(h.sum[:0])
	return h.sum[:subjectHashLen]
}

// macer returns h's macer for HMACs under keys other than the site secret.
func (h *subjectHasher) macer() *macer {
	if h.keyed == nil {
		h.keyed = newMacer()
	}
	return h.keyed
}

// salted returns the subject's keyed hash under its salt: the first
// subjectHashLen bytes of HMAC-SHA256(salt, scheme 0x00 id), in a new slice.
func (h *subjectHasher) salted(salt []byte, s ledger.Subject) []byte {
	h.buf = append(h.buf[:0], s.Scheme...)
	h.buf = append(h.buf, 0)
	h.buf = append(h.buf, s.ID...)
	return append(make([]byte, 0, subjectHashLen), h.macer().mac(salt, h.buf)[:subjectHashLen]...)
}

// macer computes HMAC-SHA256 (RFC 2104) under a key that changes from one
// message to the next, as crypto/hmac does (TestMacer) but reusing its two
// SHA-256 states rather than allocating them for each key: the writer keys
// one HMAC per subject it looks up, with the subject's salt. It is not safe
// for concurrent use.
type macer struct {
	inner, outer hash.Hash
	pad          [sha256.BlockSize]byte
	sum          [sha256.Size]byte
}

func newMacer() *macer { return &macer{inner: sha256.New(), outer: sha256.New()} }

// mac returns HMAC-SHA256(key, the parts of the message in order). The
// result is valid until the next call.
func (m *macer) mac(key []byte, msg ...[]byte) []byte {
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		key = sum[:]
	}
	m.inner.Reset()
	m.outer.Reset()
	clear(m.pad[:])
	copy(m.pad[:], key)
	for i := range m.pad {
		m.pad[i] ^= 0x36
	}
	m.inner.Write(m.pad[:])
	for i := range m.pad {
		m.pad[i] ^= 0x36 ^ 0x5c
	}
	m.outer.Write(m.pad[:])
	for _, p := range msg {
		m.inner.Write(p)
	}
	m.outer.Write(m.inner.Sum(m.sum[:0]))
	return m.outer.Sum(m.sum[:0])
}

// subjectPrefix is the prefix of every subject index key of the subject,
// with room for the position that ends a key.
func subjectPrefix(hash []byte) []byte {
	k := make([]byte, 0, 1+len(hash)+posLen)
	k = append(k, prefixSubject)
	return append(k, hash...)
}

// byRecipientPrefix is the prefix of every recipient-time index key of the
// recipient. Recipient ids are slugs, so they never contain the 0x00 that ends
// them here.
func byRecipientPrefix(recipient string) []byte {
	k := make([]byte, 0, len(recipient)+2+posLen)
	k = append(k, prefixByRecip)
	k = append(k, recipient...)
	return append(k, 0)
}

var byTimePrefix = []byte{prefixByTime}

// byTimeKey is the time index key of the disclosure at position (at, seq).
func byTimeKey(at time.Time, seq uint64) []byte {
	return appendPos(append(make([]byte, 0, 1+posLen), prefixByTime), at, seq)
}

// The range of instants a position can express: what time.UnixNano can.
var (
	minPosTime = time.Unix(0, math.MinInt64)
	maxPosTime = time.Unix(0, math.MaxInt64)
)

// encodeTime maps t to a uint64 whose big-endian bytes sort like t: Unix
// nanoseconds with the sign bit flipped. Instants outside the years 1678 to
// 2262 are clamped to that range.
func encodeTime(t time.Time) uint64 {
	var n int64
	switch {
	case t.Before(minPosTime):
		n = math.MinInt64
	case t.After(maxPosTime):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	return uint64(n) ^ 1<<63
}

func decodeTime(u uint64) time.Time {
	return time.Unix(0, int64(u^1<<63)).UTC()
}

// appendPos appends the position (at, seq): the suffix shared by the subject,
// recipient-time and time indexes, and the content of a page cursor.
func appendPos(k []byte, at time.Time, seq uint64) []byte {
	k = binary.BigEndian.AppendUint64(k, encodeTime(at))
	return binary.BigEndian.AppendUint64(k, seq)
}

// splitPos returns the encoded time and the seq of a key ending in a position.
func splitPos(key []byte) (at, seq uint64) {
	p := key[len(key)-posLen:]
	return binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])
}

// encodeCursor makes the opaque After cursor for a position.
func encodeCursor(at, seq uint64) string {
	var b [posLen]byte
	binary.BigEndian.PutUint64(b[:], at)
	binary.BigEndian.PutUint64(b[8:], seq)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// decodeCursor reverses encodeCursor.
func decodeCursor(s string) (at, seq uint64, err error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != posLen {
		return 0, 0, ledger.Errorf(ledger.EINVALID, "after: not a cursor from a previous page")
	}
	return binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), nil
}
