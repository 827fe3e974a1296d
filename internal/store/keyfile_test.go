package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

func TestKeyFileCreatedAndReused(t *testing.T) {
	cfg := testConfig(t)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", got)
	}
	if fi.Size() != siteSecretLen {
		t.Errorf("key file size = %d, want %d", fi.Size(), siteSecretLen)
	}
	first, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, make([]byte, siteSecretLen)) {
		t.Error("key file is all zeros")
	}
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"),
		disc{id: "d1", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(1)}.event(t))
	s.Close()

	s = openTest(t, cfg)
	again, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Error("key file changed on reopen")
	}
	// The same secret finds the subject again.
	who, err := s.Who(context.Background(), subj("A1"))
	if err != nil {
		t.Fatal(err)
	}
	if who.Disclosures != 1 {
		t.Errorf("Who after reopen: %d disclosures, want 1", who.Disclosures)
	}
}

func TestKeyFileRefused(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    string
	}{
		{name: "group readable", content: make([]byte, 32), mode: 0o640, want: "mode 0640"},
		{name: "world readable", content: make([]byte, 32), mode: 0o604, want: "mode 0604"},
		{name: "too short", content: make([]byte, 16), mode: 0o600, want: "holds 16 bytes, want 32"},
		{name: "too long", content: make([]byte, 33), mode: 0o600, want: "holds 33 bytes, want 32"},
		{name: "empty", content: nil, mode: 0o600, want: "holds 0 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			if err := os.WriteFile(cfg.KeyFile, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(cfg.KeyFile, tt.mode); err != nil {
				t.Fatal(err)
			}
			s, err := Open(cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestKeyFileRequired(t *testing.T) {
	cfg := testConfig(t)
	cfg.KeyFile = ""
	if _, err := Open(cfg); err == nil || !strings.Contains(err.Error(), "KeyFile") {
		t.Errorf("Open without KeyFile error = %v, want one naming KeyFile", err)
	}
	cfg = testConfig(t)
	cfg.KeyFile = filepath.Join(t.TempDir(), "missing-dir", "site.key")
	if _, err := Open(cfg); err == nil {
		t.Error("Open with a key file in a missing directory succeeded")
	}
}
