package store

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestEncryptionAtRestChosenAtCreation: a ledger created without Badger's
// encryption at rest is refused with ErrLedgerUnencrypted when opened with
// a key, an encrypted one with ErrLedgerEncrypted when opened without its
// key or with another, and each opens as it was created.
func TestEncryptionAtRestChosenAtCreation(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	plain, encrypted := testConfig(t), testConfig(t)
	encrypted.EncryptionKey = key
	for _, cfg := range []Config{plain, encrypted} {
		s := openTest(t, cfg)
		applyBatch(t, s, rcp(t, "web", "nats", "", 0), disc{id: "x1", recipient: "web", subjects: []ledger.Subject{subj("Z9")}, at: day(1)}.event(t))
		s.Close()
	}
	for _, c := range []struct {
		name string
		cfg  Config
		key  []byte
		want error
	}{
		{"plain ledger opened with a key", plain, key, ErrLedgerUnencrypted},
		{"plain ledger opened with EncryptAtRest", plain, nil, ErrLedgerUnencrypted},
		{"encrypted ledger opened without a key", encrypted, nil, ErrLedgerEncrypted},
		{"encrypted ledger opened with another key", encrypted, bytes.Repeat([]byte{8}, 32), ErrLedgerEncrypted},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.EncryptionKey = c.key
			cfg.EncryptAtRest = c.name == "plain ledger opened with EncryptAtRest"
			s, err := Open(cfg)
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Open = %v, want %v", err, c.want)
			}
		})
	}
	for _, c := range []struct {
		cfg  Config
		want bool
	}{{plain, false}, {encrypted, true}} {
		if got, err := LedgerEncrypted(c.cfg.Dir); err != nil || got != c.want {
			t.Errorf("LedgerEncrypted(%s) = %v, %v; want %v", c.cfg.Dir, got, err, c.want)
		}
		s := openTest(t, c.cfg)
		if who, err := s.Who(t.Context(), subj("Z9")); err != nil || who.Disclosures != 1 {
			t.Errorf("Who after reopening = %+v, %v", who, err)
		}
		s.Close()
	}
}
