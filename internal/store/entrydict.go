package store

import (
	"crypto/sha256"
	_ "embed"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/zstd"
)

// Entry values are compressed one by one at the storage boundary, with zstd
// and a raw-content dictionary (entry1.dict): the Merkle leaf, verification,
// snapshots, replicas and receipts all see the uncompressed value, and only
// the bytes Badger keeps differ. An entry on its own is too short for zstd
// to find much to repeat; the dictionary gives it the strings every entry
// shares.
//
// The dictionary is built from sharelog's own event vocabulary, not from any
// ledger's or the bench generator's events: the CloudEvents envelope in the
// order the ingest records it (and the one ledger.MarshalEvent writes), a skeleton of each event type's data
// with every field name of the contract (internal/ledger), and the values
// of the embedded vocabularies (regimes, lawful bases, purposes, fideslang
// categories) and the event types. TestEntryDictionary writes it with
// -entrydict.write and pins its hash.
//
// A value compressed with a dictionary opens only with that dictionary:
// entry1.dict must never change. A new dictionary gets a new file and a new
// id (the zstd frame of every compressed value names its dictionary), and
// the old one stays for the values written with it.

//go:embed entry1.dict
var entryDict1 []byte

// entryDictID names entryDict1 in the frame of every value compressed with it.
const entryDictID = 1

var (
	// The encoder and decoder are shared: EncodeAll and DecodeAll may be
	// called concurrently. The frames carry no checksum: Badger checksums
	// its tables and value log, and the Merkle tree covers every entry.
	entryEncoder = mustEncoder(zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false),
		zstd.WithEncoderDictRaw(entryDictID, entryDict1)))
	entryDecoder = mustDecoder(zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(64<<20),
		zstd.WithDecoderDictRaw(entryDictID, entryDict1)))
)

func mustEncoder(e *zstd.Encoder, err error) *zstd.Encoder {
	if err != nil {
		panic(fmt.Sprintf("store: entry encoder: %v", err))
	}
	return e
}

func mustDecoder(d *zstd.Decoder, err error) *zstd.Decoder {
	if err != nil {
		panic(fmt.Sprintf("store: entry decoder: %v", err))
	}
	return d
}

// entryDictHash is the SHA-256 of a dictionary, for the test that pins it.
func entryDictHash(d []byte) [32]byte { return sha256.Sum256(d) }

// entryCompression compresses entries. Tests that search the files for
// bytes in clear turn it off, as tableCompression, so that compression
// cannot hide them; the entries are then kept as earlier versions kept them.
var entryCompression = true

// packEntry returns the value Badger keeps for the entry value v: the
// format byte entryZstd, then v compressed (a zstd frame naming its
// dictionary).
func packEntry(v []byte) []byte {
	if !entryCompression {
		return v
	}
	dst := make([]byte, 1, 1+len(v)/2)
	dst[0] = entryZstd
	return entryEncoder.EncodeAll(v, dst)
}

// unpackEntry returns the entry value that stored, a value Badger keeps,
// holds. A value written before entries were compressed (format entryPlain
// or entrySealed) is the entry value itself. The result never shares
// memory with stored, which may be Badger's.
func unpackEntry(stored []byte) ([]byte, error) {
	if len(stored) == 0 || stored[0] != entryZstd {
		return append([]byte(nil), stored...), nil
	}
	v, err := entryDecoder.DecodeAll(stored[1:], nil)
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
