package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
)

// Errors of Open for a ledger kept otherwise than Config asks: Badger's own
// encryption at rest is chosen when the ledger is created and cannot be
// turned on or off afterwards.
var (
	// ErrLedgerUnencrypted: Config asks for encryption at rest, and the
	// ledger on disk was created without it.
	ErrLedgerUnencrypted = errors.New("store: the ledger was created without encryption at rest")
	// ErrLedgerEncrypted: the ledger on disk is encrypted, with another key
	// than Config gives, or Config gives none.
	ErrLedgerEncrypted = errors.New("store: the ledger is encrypted at rest with another key")
)

// keyRegistryFile is Badger's key registry: a 16-byte IV, then the text
// "Hello Badger", in clear when the database is not encrypted and
// encrypted with its key when it is.
const keyRegistryFile = "KEYREGISTRY"

var badgerSanityText = []byte("Hello Badger")

// LedgerEncrypted reports whether the ledger in dir (a Badger directory) is
// encrypted at rest, from its key registry. A directory without a ledger
// gives false and fs.ErrNotExist.
func LedgerEncrypted(dir string) (bool, error) {
	f, err := os.Open(filepath.Join(dir, keyRegistryFile))
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, 16+len(badgerSanityText))
	if _, err := io.ReadFull(f, head); err != nil {
		return false, fmt.Errorf("store: %s: %w", keyRegistryFile, err)
	}
	return !bytes.Equal(head[16:], badgerSanityText), nil
}

// atRestError turns Badger's key mismatch on opening dir into
// ErrLedgerUnencrypted or ErrLedgerEncrypted, and returns other errors as
// they are.
func atRestError(dir string, key []byte, err error) error {
	if !errors.Is(err, badger.ErrEncryptionKeyMismatch) {
		return err
	}
	encrypted, rerr := LedgerEncrypted(dir)
	switch {
	case rerr != nil && !errors.Is(rerr, fs.ErrNotExist):
		return err
	case len(key) > 0 && !encrypted:
		return fmt.Errorf("%w (%s)", ErrLedgerUnencrypted, dir)
	default:
		return fmt.Errorf("%w (%s)", ErrLedgerEncrypted, dir)
	}
}
