package main

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestVerifyDerivedState edits copies of a real data directory the ways an
// insider would, leaving every entry and the Merkle tree intact, and checks
// that sharelog verify names each edit and exits non-zero. The keys are
// written by hand from the documented layout (internal/store/doc.go).
func TestVerifyDerivedState(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, testConfig(dir))
	s1 := ledger.Subject{Scheme: "dbs-ref", ID: "S1"}
	at := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	publishAll(t, m,
		manualRecipient("acro", "dpa-part3", 0),
		manualRecipient("police", "", 0),
		ukDisclosure("d-1", s1, "acro", []string{"user.contact.email"}, at),
		ukDisclosure("d-2", s1, "police", []string{"user.contact"}, at.Add(time.Hour)),
		ce("dpo", "e-1", ledger.TypeErasure, map[string]any{"request": "E-1", "subject": s1, "decidedAt": "2026-02-01T09:00:00Z"}),
	)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(dir, "checkpoint.pub"))
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(string(pub))
	stdout, stderr, err := runCLI("verify", "--data", dir, "--key", vkey)
	if err != nil || !strings.Contains(stdout, "intact: size 5 ") || !strings.Contains(stdout, "derived state: ") {
		t.Fatalf("verify of the untouched directory = %v\n%s%s", err, stdout, stderr)
	}

	h16 := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:16] }
	acroNotice := ledger.NoticeID("E-1", "acro")
	first := func(txn *badger.Txn, prefix string) []byte {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		it.Rewind()
		if !it.Valid() {
			t.Fatalf("no key with prefix %q", prefix)
		}
		return it.Item().KeyCopy(nil)
	}
	replace := func(txn *badger.Txn, key []byte, old, new string) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		edited := strings.Replace(string(v), old, new, 1)
		if edited == string(v) {
			t.Fatalf("%q not in %s", old, v)
		}
		return txn.Set(key, []byte(edited))
	}
	tests := []struct {
		name string
		edit func(txn *badger.Txn) error
		want string
	}{
		{"a disclosure's index key deleted: it vanishes from who", func(txn *badger.Txn) error {
			return txn.Delete(first(txn, "s"))
		}, "in the subject index of "},
		{"a recipient's registry record rewritten", func(txn *badger.Txn) error {
			return replace(txn, []byte("rpolice"), `"type":"manual"`, `"type":"webhook","url":"https://attacker.example.com/"`)
		}, `recipient police: channel.type "webhook", entries say "manual"; channel.url "https://attacker.example.com/", entries say (none)`},
		{"an obligation marked acknowledged", func(txn *badger.Txn) error {
			return replace(txn, []byte("o"+acroNotice), `"state":"pending"`, `"state":"acknowledged"`)
		}, "obligation " + acroNotice + `: state "acknowledged", entries say "pending"`},
		{"a dedupe record deleted: the event would be recorded twice", func(txn *badger.Txn) error {
			return txn.Delete(append(append([]byte("d"), h16("d-1")...), h16("casework")...))
		}, "dedupe record of event casework/d-1 (entry 3): missing (the event would be recorded again)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := filepath.Join(t.TempDir(), "data")
			if err := os.CopyFS(cp, os.DirFS(dir)); err != nil {
				t.Fatal(err)
			}
			db := openLedgerBehindSharelog(t, cp)
			err = db.Update(tt.edit)
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			stdout, _, err := runCLI("verify", "--data", cp, "--key", vkey)
			if err == nil || !strings.HasPrefix(err.Error(), "ledger is not intact: ") {
				t.Fatalf("verify after the edit = %v, want it to fail\n%s", err, stdout)
			}
			if !strings.HasPrefix(stdout, "TAMPERED: ") || !strings.Contains(stdout, tt.want) {
				t.Errorf("verify printed:\n%s\nwant it to say %q", stdout, tt.want)
			}
		})
	}
}
