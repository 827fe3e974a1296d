package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// The ledger's format is what a sharelog must understand to read the
// ledger right, recorded under formatKey:
//
//	1  before the record: entries under e seq (entryV0Key)
//	2  entries from then on under \x00 seq (entryKey), the older ones left under e
//
// A sharelog that took a ledger of a newer format for one it knows would
// miss what it cannot read (entries under keys it does not look at), and
// append to it what the newer one cannot read back. So Open refuses a ledger
// of a format newer than ledgerFormat before it reads or writes anything,
// and records ledgerFormat in a ledger of an older one (a ledger without the
// record is of format 1); openReadOnly refuses it too, for verify. Sharelogs
// from before the record ignore it: they cannot be stopped from opening a
// ledger of format 2, which is why README.md says not to go back to them.
const ledgerFormat = 2

// formatKey holds the ledger's format (8 bytes, big-endian).
var formatKey = []byte{prefixFormat}

// ErrNewerFormat is Open's and Verify's error for a ledger written by a
// newer sharelog, in a format this one does not read.
var ErrNewerFormat = errors.New("the ledger was written by a newer sharelog")

// readFormat returns the format txn's ledger records, 1 when it records
// none.
func readFormat(txn *badger.Txn) (uint64, error) {
	item, err := txn.Get(formatKey)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, err
	}
	var n uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 || binary.BigEndian.Uint64(v) == 0 {
			return fmt.Errorf("%w: the ledger's format record is %x", errCorrupt, v)
		}
		n = binary.BigEndian.Uint64(v)
		return nil
	})
	return n, err
}

// checkFormat returns db's ledger's format, and ErrNewerFormat, naming dir
// and the two formats, when it is newer than ledgerFormat.
func checkFormat(db *badger.DB, dir string) (format uint64, err error) {
	err = db.View(func(txn *badger.Txn) error {
		format, err = readFormat(txn)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read the ledger's format: %w", err)
	}
	if format > ledgerFormat {
		return format, fmt.Errorf("%w: %s is of format %d, and this sharelog reads formats 1 to %d; run the version that wrote it, or a later one (the ledger is left as it is)",
			ErrNewerFormat, dir, format, ledgerFormat)
	}
	return format, nil
}

// openFormat is checkFormat for a ledger opened to be written: it records
// ledgerFormat when the ledger's is older, before the first batch can
// write what older sharelogs cannot read.
func openFormat(db *badger.DB, dir string) error {
	format, err := checkFormat(db, dir)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if format == ledgerFormat {
		return nil
	}
	err = db.Update(func(txn *badger.Txn) error {
		return txn.Set(formatKey, binary.BigEndian.AppendUint64(nil, ledgerFormat))
	})
	if err != nil {
		return fmt.Errorf("store: record the ledger's format: %w", err)
	}
	return nil
}
