package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// rawFormat reads the format record of the closed ledger in cfg.Dir with
// Badger alone, as it is on disk: 1 when there is none.
func rawFormat(t *testing.T, cfg Config) uint64 {
	t.Helper()
	db, err := badger.Open(badgerOptions(cfg.Dir, cfg.Logger).WithReadOnly(true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n uint64
	if err := db.View(func(txn *badger.Txn) error { n, err = readFormat(txn); return err }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLedgerFormat: a ledger written before the format record (format 1:
// testdata/ledger-v0) gets today's at Open, and one of a newer format is
// refused by Open and by Verify, saying which formats, and left as it is.
func TestLedgerFormat(t *testing.T) {
	ctx := context.Background()
	cfg, verifier := openLedgerV0(t)
	if got := rawFormat(t, cfg); got != 1 {
		t.Fatalf("ledger-v0 is of format %d; want 1 (no record)", got)
	}

	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	count := s.Count()
	newer := uint64(ledgerFormat + 1)
	err = s.db.Update(func(txn *badger.Txn) error {
		n, err := readFormat(txn)
		if err != nil || n != ledgerFormat {
			return fmt.Errorf("format %d (%v) after Open; want %d", n, err, ledgerFormat)
		}
		// What a newer sharelog would record.
		return txn.Set(formatKey, binary.BigEndian.AppendUint64(nil, newer))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	want := fmt.Sprintf("is of format %d, and this sharelog reads formats 1 to %d", newer, ledgerFormat)
	if _, err := Open(cfg); !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open of a ledger of format %d: %v; want ErrNewerFormat saying %q", newer, err, want)
	}
	_, err = Verify(ctx, VerifyConfig{Dir: cfg.Dir, Verifier: verifier, Logger: cfg.Logger, Deadlines: cfg.Deadlines})
	if !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Verify of a ledger of format %d: %v; want ErrNewerFormat saying %q", newer, err, want)
	}
	if got := rawFormat(t, cfg); got != newer {
		t.Fatalf("the refused ledger's format is now %d; want %d, as it was", got, newer)
	}

	// Put back as this sharelog wrote it, the ledger opens and verifies
	// with every entry: the refusals changed nothing.
	db, err := badger.Open(badgerOptions(cfg.Dir, cfg.Logger))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		return txn.Set(formatKey, binary.BigEndian.AppendUint64(nil, ledgerFormat))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(ctx, VerifyConfig{Dir: cfg.Dir, Verifier: verifier, Logger: cfg.Logger, Deadlines: cfg.Deadlines})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Size != int64(count) {
		t.Fatalf("Verify: %d entries; want %d", res.Size, count)
	}
	s = openTest(t, cfg)
	if s.Count() != count {
		t.Fatalf("%d entries after the refusals; want %d", s.Count(), count)
	}
}

// TestLedgerFormatCorrupt: Open refuses a format record that is not 8
// bytes of a format, rather than take the ledger for one it knows.
func TestLedgerFormatCorrupt(t *testing.T) {
	cfg := testConfig(t)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(formatKey, []byte{2}) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cfg); !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), "format record") {
		t.Fatalf("Open with a 1-byte format record: %v; want errCorrupt naming the format record", err)
	}
}
