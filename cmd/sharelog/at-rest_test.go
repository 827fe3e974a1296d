package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/store"
)

// TestEncryptedAtRestByDefault: with the default configuration, a person's
// identifier sent over HTTP is in no file under --data (Badger and every
// stream), while the ledger answers for them; the same search finds it when
// both stores are kept in clear, so it can fail.
func TestEncryptedAtRestByDefault(t *testing.T) {
	const personID = "ZQ-AT-REST-31337"
	p := ledger.Subject{Scheme: "dbs-ref", ID: personID}
	for _, plain := range []bool{false, true} {
		dir := t.TempDir()
		cfg := testConfig(dir)
		cfg.UnencryptedLedger, cfg.UnencryptedJetStream = plain, plain
		m := startMain(t, cfg)
		publishAll(t, m,
			recipientEvent("police", map[string]any{"type": "nats"}),
			ukDisclosure("r-1", p, "police", []string{"user.contact.address"}, time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)),
		)
		if w := who(t, m, "dbs-ref:"+personID); w.Disclosures != 1 {
			t.Fatalf("who = %+v", w)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		hits := filesContaining(t, dir, personID)
		if plain && len(hits) == 0 {
			t.Fatal("kept in clear, no file holds the identifier: the search cannot tell")
		}
		if !plain && len(hits) != 0 {
			t.Errorf("encrypted at rest, %v hold the identifier", hits)
		}
	}
}

// TestUnencryptedLedgerRefused: a ledger created without encryption at
// rest is refused by a default start, with an error naming the flag that
// keeps it so, and opens with that flag.
func TestUnencryptedLedgerRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.UnencryptedLedger = true
	m := startMain(t, cfg)
	publishAll(t, m, recipientEvent("police", map[string]any{"type": "nats"}))
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	cfg.UnencryptedLedger = false
	m2 := NewMain(cfg, slog.New(slog.DiscardHandler))
	err := m2.Open(context.Background())
	m2.Close()
	if err == nil || !strings.Contains(err.Error(), "--unencrypted-ledger") || !strings.Contains(err.Error(), "without encryption at rest") {
		t.Fatalf("default start on an unencrypted ledger: %v", err)
	}

	cfg.UnencryptedLedger = true
	m = startMain(t, cfg)
	if rs, err := m.Store.Recipients(context.Background()); err != nil || len(rs) != 1 {
		t.Errorf("recipients after reopening = %v, %v", rs, err)
	}
}

// openLedgerBehindSharelog opens the Badger ledger of data directory dir
// directly, as an insider holding the master key could, to tamper with it.
func openLedgerBehindSharelog(t *testing.T, dir string) *badger.DB {
	t.Helper()
	master, err := os.ReadFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "ledger")).WithLogger(nil).
		WithEncryptionKey(store.AtRestKey(master)).WithIndexCacheSize(16 << 20))
	if err != nil {
		t.Fatal(err)
	}
	return db
}
