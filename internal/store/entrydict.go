package store

import (
	"crypto/sha256"
	_ "embed"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/s2"
)

// Entry values are compressed one by one at the storage boundary, as S2
// blocks (github.com/klauspost/compress/s2) against a raw-content
// dictionary (entry1.dict): the Merkle leaf, verification, snapshots,
// replicas and receipts all see the uncompressed value, and only the bytes
// Badger keeps differ. An entry on its own is too short for a compressor to
// find much to repeat; the dictionary gives it the strings entries share.
//
// S2 rather than zstd: on the test workload's disclosures
// (BenchmarkEntryCompression, the same dictionary) zstd at its fastest
// level kept 368 bytes of 658 for 26-32 µs of CPU per entry, most of it
// restoring its 256 KiB hash table from the dictionary at every call and
// building entropy tables for a few hundred bytes; S2 keeps 354 for about
// 3 µs and decodes in under 1.
//
// The dictionary is built from sharelog's own event vocabulary, not from any
// ledger's or the bench generator's events: the CloudEvents envelope in the
// order the ingest records it (and the one ledger.MarshalEvent writes), a
// skeleton of each event type's data with every field name of the contract
// (internal/ledger), and the values of the embedded vocabularies (regimes,
// lawful bases, purposes, fideslang categories) and the event types.
// TestEntryDictionary writes it with -entrydict.write and pins its hash.
//
// A value compressed with a dictionary opens only with that dictionary:
// entry1.dict must never change. A new dictionary needs a new file and a
// new format byte (entryS2Dict1 names this one), and the old one stays for
// the values written with it.

//go:embed entry1.dict
var entryDict1 []byte

// entryS2Dict is entryDict1 prepared for S2. Encode and Decode may be
// called concurrently.
var entryS2Dict = func() *s2.Dict {
	d := s2.MakeDictManual(entryDict1, 0)
	if d == nil {
		panic(fmt.Sprintf("store: entry dictionary of %d bytes does not make an S2 dictionary", len(entryDict1)))
	}
	return d
}()

// maxEntryLen bounds the length a stored value may claim for its entry
// value: events are at most 1 MiB (cloudevents.MaxEventSize), and a sealed
// entry adds a little to its event.
const maxEntryLen = 4 << 20

// entryDictHash is the SHA-256 of a dictionary, for the test that pins it.
func entryDictHash(d []byte) [32]byte { return sha256.Sum256(d) }

// entryCompression compresses entries. Tests that search the files for
// bytes in clear turn it off, as tableCompression, so that compression
// cannot hide them; the entries are then kept as earlier versions kept them.
var entryCompression = true

// packEntry returns the value Badger keeps for the entry value v: the
// format byte entryS2Dict1, then v as an S2 block compressed against
// entryDict1.
func packEntry(v []byte) []byte {
	p, _ := packEntryWith(nil, v)
	return p
}

// packEntryWith is packEntry compressing in scratch, which it returns grown
// as needed for the next call: the value, in a slice of its own of just its
// length, shares memory with neither v nor scratch. The writer compresses
// every entry so, in room worth the longest compressed form, which is far
// longer than the compressed entry.
func packEntryWith(scratch, v []byte) (packed, grown []byte) {
	if !entryCompression {
		return append([]byte(nil), v...), scratch
	}
	if n := 1 + s2.MaxEncodedLen(len(v)); cap(scratch) < n {
		scratch = make([]byte, n)
	}
	scratch = scratch[:cap(scratch)]
	scratch[0] = entryS2Dict1
	n := len(entryS2Dict.Encode(scratch[1:], v))
	return append([]byte(nil), scratch[:1+n]...), scratch
}

// unpackEntry returns the entry value that stored, a value Badger keeps,
// holds. A value written before entries were compressed (format entryPlain
// or entrySealed) is the entry value itself. The result never shares
// memory with stored, which may be Badger's.
func unpackEntry(stored []byte) ([]byte, error) {
	if len(stored) == 0 || stored[0] != entryS2Dict1 {
		return append([]byte(nil), stored...), nil
	}
	if n, err := s2.DecodedLen(stored[1:]); err != nil || n > maxEntryLen {
		return nil, fmt.Errorf("%w: compressed entry claims %d bytes (%v)", errCorrupt, n, err)
	}
	v, err := entryS2Dict.Decode(nil, stored[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: entry does not decompress: %v", errCorrupt, err)
	}
	return v, nil
}

// entryValue reads the entry value an entry's item holds (unpackEntry).
func entryValue(item *badger.Item) (v []byte, err error) {
	err = item.Value(func(stored []byte) error {
		v, err = unpackEntry(stored)
		return err
	})
	return v, err
}

// EntryValue returns the entry value that stored, the value Badger keeps
// under an entry's key, holds; StoredEntry is its reverse. They are for
// tests and tools that read or change a ledger's Badger files behind
// sharelog's back.
func EntryValue(stored []byte) ([]byte, error) { return unpackEntry(stored) }

// StoredEntry returns the value Badger keeps for the entry value v.
func StoredEntry(v []byte) []byte { return packEntry(v) }

// EntryKey returns the key Badger keeps entry seq under, in a ledger
// written by this version (entryKey; ledgers written before keep their
// first entries under entryV0Key).
func EntryKey(seq uint64) []byte { return entryKey(seq) }
