package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/ledger"
)

// signedSize is the number of entries of a signedLedger: one full tile of
// leaf hashes (tree.go).
const signedSize = tileWidth

// signedLedger is a closed ledger of signedSize entries with checkpoints
// signed at sizes 5, 10 and signedSize.
type signedLedger struct {
	cfg      Config
	verifier note.Verifier
	root     tlog.Hash // of size signedSize
	cps      [][]byte  // the signed checkpoints, as an auditor saved them
}

func newSignedLedger(t *testing.T) *signedLedger {
	t.Helper()
	cfg := testConfig(t)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	signer, vkey, _, err := checkpoint.LoadOrCreateKey(filepath.Join(dir, "checkpoint.key"), "", "sharelog/test")
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	cpr := checkpoint.NewCheckpointer(s, signer, cfg.Logger)
	l := &signedLedger{cfg: cfg, verifier: v}
	for _, size := range []int{5, 10, signedSize} {
		var evs []*ledger.Event
		for i := 0; int(s.Count())+i < size; i++ {
			evs = append(evs, recipientEvent(t, fmt.Sprintf("r%d", int(s.Count())+i+1), "Recipient"))
		}
		applyBatch(t, s, evs...)
		cp, err := cpr.Checkpoint(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		l.cps = append(l.cps, cp)
	}
	if _, l.root, err = s.TreeHead(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return l
}

// tamper changes the closed ledger with raw Badger writes.
func (l *signedLedger) tamper(t *testing.T, fn func(txn *badger.Txn) error) {
	t.Helper()
	db, err := badger.Open(badgerOptions(l.cfg.Dir, l.cfg.Logger))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func (l *signedLedger) verify(t *testing.T, external ...[]byte) (*VerifyResult, error) {
	t.Helper()
	return Verify(context.Background(), VerifyConfig{Dir: l.cfg.Dir, Verifier: l.verifier, Checkpoints: external, Logger: l.cfg.Logger})
}

func get(t *testing.T, txn *badger.Txn, key []byte) []byte {
	t.Helper()
	item, err := txn.Get(key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func setMetaCount(t *testing.T, txn *badger.Txn, count uint64) error {
	applied, _, err := decodeMeta(get(t, txn, metaKey))
	if err != nil {
		return err
	}
	return txn.Set(metaKey, encodeMeta(applied, count))
}

func TestVerifyIntact(t *testing.T) {
	l := newSignedLedger(t)
	var progress [][2]int64
	res, err := Verify(context.Background(), VerifyConfig{
		Dir: l.cfg.Dir, Verifier: l.verifier, Checkpoints: l.cps, ProgressEvery: 100,
		Progress: func(done, total int64) { progress = append(progress, [2]int64{done, total}) },
	})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Size != signedSize || res.Root != l.root {
		t.Errorf("Verify = size %d root %v, want %d %v", res.Size, res.Root, signedSize, l.root)
	}
	// Three stored checkpoints and the auditor's three copies of them.
	if res.Checkpoints != 6 || res.Latest != signedSize {
		t.Errorf("checkpoints checked = %d, latest %d; want 6, %d", res.Checkpoints, res.Latest, signedSize)
	}
	if got, want := fmt.Sprint(progress), "[[100 256] [200 256] [256 256]]"; got != want {
		t.Errorf("progress = %s, want %s", got, want)
	}
	want := fmt.Sprintf("intact: size %d root %s", signedSize, l.root)
	if res.String() != want {
		t.Errorf("String() = %q, want %q", res.String(), want)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name     string
		tamper   func(t *testing.T, txn *badger.Txn) error
		external bool // pass the auditor's checkpoints
		want     string
		kind     TamperKind
	}{
		{
			name: "modified",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				v := getEntry(t, txn, 3)
				v[len(v)-3] ^= 1
				return txn.Set(entryKey(3), packEntry(v))
			},
			want: "entry 3 modified", kind: TamperModified,
		},
		{
			name: "stored bytes changed",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				v := get(t, txn, entryKey(3)) // compressed
				v[len(v)/2] ^= 0x55
				return txn.Set(entryKey(3), v)
			},
			want: "entry 3 modified", kind: TamperModified,
		},
		{
			name:   "deleted",
			tamper: func(t *testing.T, txn *badger.Txn) error { return txn.Delete(entryKey(4)) },
			want:   "entry 4 missing (deleted)", kind: TamperDeleted,
		},
		{
			name: "deleted and renumbered",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				for seq := uint64(4); seq < signedSize; seq++ {
					if err := txn.Set(entryKey(seq), get(t, txn, entryKey(seq+1))); err != nil {
						return err
					}
				}
				if err := txn.Delete(entryKey(signedSize)); err != nil {
					return err
				}
				return setMetaCount(t, txn, signedSize-1)
			},
			want: "entry 4 missing (deleted)", kind: TamperDeleted,
		},
		{
			name: "last entry deleted",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				if err := txn.Delete(entryKey(signedSize)); err != nil {
					return err
				}
				return setMetaCount(t, txn, signedSize-1)
			},
			want: fmt.Sprintf("entry %d missing (deleted)", signedSize), kind: TamperDeleted,
		},
		{
			name: "inserted",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				for seq := uint64(signedSize); seq >= 4; seq-- {
					if err := txn.Set(entryKey(seq+1), get(t, txn, entryKey(seq))); err != nil {
						return err
					}
				}
				forged := encodeEntry(nil, 99, day(1), []byte(`{"id":"forged"}`))
				if err := txn.Set(entryKey(4), forged); err != nil {
					return err
				}
				return setMetaCount(t, txn, signedSize+1)
			},
			want: "extra entry inserted at 4", kind: TamperInserted,
		},
		{
			name: "reordered",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				a, b := get(t, txn, entryKey(3)), get(t, txn, entryKey(7))
				if err := txn.Set(entryKey(3), b); err != nil {
					return err
				}
				return txn.Set(entryKey(7), a)
			},
			want: "entries reordered at 3", kind: TamperReordered,
		},
		{
			name: "neighbours swapped",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				a, b := get(t, txn, entryKey(6)), get(t, txn, entryKey(7))
				if err := txn.Set(entryKey(6), b); err != nil {
					return err
				}
				return txn.Set(entryKey(7), a)
			},
			want: "entries reordered at 6", kind: TamperReordered,
		},
		{
			name:   "rolled back",
			tamper: rollBack(false),
			want:   fmt.Sprintf("tree rolled back: checkpoint size %d > ledger size 7", signedSize), kind: TamperRolledBack,
		},
		{
			name:     "rolled back with its checkpoints",
			tamper:   rollBack(true),
			external: true,
			want:     fmt.Sprintf("tree rolled back: checkpoint size %d > ledger size 7", signedSize), kind: TamperRolledBack,
		},
		{
			name: "modified and tree rewritten",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				v := getEntry(t, txn, 3)
				v[len(v)-3] ^= 1
				if err := txn.Set(entryKey(3), packEntry(v)); err != nil {
					return err
				}
				var tile []byte
				for n := uint64(1); n <= signedSize; n++ {
					h := tlog.RecordHash(getEntry(t, txn, n))
					tile = append(tile, h[:]...)
				}
				return txn.Set(tileKey(0, 0), tile)
			},
			want: "checkpoint size 5 does not match the ledger: an entry from 1 to 5 was changed (where stored tree tiles cover it, with them rewritten to hide it)",
			kind: TamperCheckpoint,
		},
		{
			name:   "tile deleted",
			tamper: func(t *testing.T, txn *badger.Txn) error { return txn.Delete(tileKey(0, 0)) },
			want:   "tree hash altered at entry 1: tree tile 0/0 missing", kind: TamperTreeHash,
		},
		{
			name: "tile cut short",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				return txn.Set(tileKey(0, 0), get(t, txn, tileKey(0, 0))[:100*tlog.HashSize])
			},
			want: "tree hash altered at entry 1: tree tile 0/0 holds 3200 bytes, not 256 hashes: corrupt value", kind: TamperTreeHash,
		},
		{
			// A leaf hash is all a tile of level 0 holds: changed, it reads
			// as its entry changed, as a leaf's 'h' key did before tiles.
			name: "leaf hash in a tile altered",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				v := get(t, txn, tileKey(0, 0))
				v[tlog.HashSize] ^= 1
				return txn.Set(tileKey(0, 0), v)
			},
			want: "entry 2 modified", kind: TamperModified,
		},
		{
			name: "forged checkpoint",
			tamper: func(t *testing.T, txn *badger.Txn) error {
				skey, _, err := note.GenerateKey(nil, "sharelog/test")
				if err != nil {
					return err
				}
				s, err := note.NewSigner(skey)
				if err != nil {
					return err
				}
				msg, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: "sharelog/test", Size: 12}, s)
				if err != nil {
					return err
				}
				return txn.Set(checkpointKey(12), msg)
			},
			want: "checkpoint size 12: checkpoint: not signed by key sharelog/test", kind: TamperBadSignature,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newSignedLedger(t)
			if _, err := l.verify(t); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			l.tamper(t, func(txn *badger.Txn) error { return tt.tamper(t, txn) })
			var external [][]byte
			if tt.external {
				external = l.cps
			}
			res, err := l.verify(t, external...)
			var te *TamperError
			if !errors.As(err, &te) {
				t.Fatalf("Verify = %v, %v; want a TamperError", res, err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Verify error = %q\nwant %q", got, tt.want)
			}
			if te.Kind != tt.kind {
				t.Errorf("Kind = %s, want %s", te.Kind, tt.kind)
			}
		})
	}
}

// rollBack deletes entries 8 to signedSize and their full tile and sets the
// entry count to 7, as a consistent rollback would; with checkpoints, it
// deletes the stored checkpoints beyond 7 too.
func rollBack(checkpoints bool) func(t *testing.T, txn *badger.Txn) error {
	return func(t *testing.T, txn *badger.Txn) error {
		for seq := uint64(8); seq <= signedSize; seq++ {
			if err := txn.Delete(entryKey(seq)); err != nil {
				return err
			}
		}
		if err := txn.Delete(tileKey(0, 0)); err != nil {
			return err
		}
		if checkpoints {
			for _, size := range []int64{10, signedSize} {
				if err := txn.Delete(checkpointKey(size)); err != nil {
					return err
				}
			}
		}
		return setMetaCount(t, txn, 7)
	}
}

func TestVerifyWrongKey(t *testing.T) {
	l := newSignedLedger(t)
	_, vkey, err := note.GenerateKey(nil, "sharelog/test")
	if err != nil {
		t.Fatal(err)
	}
	if l.verifier, err = note.NewVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	_, err = l.verify(t)
	if got, want := fmt.Sprint(err), "checkpoint size 5: checkpoint: not signed by key sharelog/test"; got != want {
		t.Errorf("Verify with another key = %q, want %q", got, want)
	}
}

func TestProofs(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	signer, vkey, _, err := checkpoint.LoadOrCreateKey(filepath.Join(t.TempDir(), "k"), "", "sharelog/test")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := note.NewVerifier(vkey)
	cpr := checkpoint.NewCheckpointer(s, signer, cfg.Logger)
	ctx := context.Background()
	if _, err := s.Checkpoint(ctx, 0); ledger.ErrorCode(err) != ledger.ENOTFOUND {
		t.Errorf("Checkpoint of empty ledger: %v, want ENOTFOUND", err)
	}
	var cps []checkpoint.Checkpoint
	for _, n := range []int{1, 6, 13} {
		var evs []*ledger.Event
		for i := range n {
			evs = append(evs, recipientEvent(t, fmt.Sprintf("r%d-%d", n, i), "R"))
		}
		applyBatch(t, s, evs...)
		if _, err := cpr.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		msg, err := s.Checkpoint(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := checkpoint.Open(msg, v)
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, cp)
	}
	if got := []int64{cps[0].Size, cps[1].Size, cps[2].Size}; fmt.Sprint(got) != "[1 7 20]" {
		t.Fatalf("checkpoint sizes = %v", got)
	}
	// An unchanged tree is not signed again.
	again, err := cpr.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp, _ := checkpoint.Open(again, v); cp != cps[2] {
		t.Errorf("Checkpoint of an unchanged tree = %+v, want %+v", cp, cps[2])
	}
	for _, cp := range cps {
		for seq := int64(1); seq <= cp.Size; seq++ {
			p, err := s.InclusionProof(ctx, seq, cp.Size)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", seq, cp.Size, err)
			}
			e, err := s.Entry(ctx, uint64(seq))
			if err != nil {
				t.Fatal(err)
			}
			_ = e
			if err := p.Verify(cp); err != nil {
				t.Errorf("inclusion of %d in %d: %v", seq, cp.Size, err)
			}
		}
	}
	// A proof does not verify against another tree.
	p, _ := s.InclusionProof(ctx, 3, 7)
	p.LeafHash[0] ^= 1
	if err := p.Verify(cps[1]); err == nil {
		t.Error("inclusion proof of an altered leaf verified")
	}
	for i := range cps {
		for j := i; j < len(cps); j++ {
			cp, err := s.ConsistencyProof(ctx, cps[i].Size, cps[j].Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := cp.Verify(cps[i], cps[j]); err != nil {
				t.Errorf("consistency %d..%d: %v", cps[i].Size, cps[j].Size, err)
			}
		}
	}
	forged := cps[0]
	forged.Root[0] ^= 1
	cp, _ := s.ConsistencyProof(ctx, 1, 20)
	if err := cp.Verify(forged, cps[2]); err == nil {
		t.Error("consistency with a forged older root verified")
	}
	for _, bad := range [][2]int64{{0, 5}, {6, 5}, {1, 21}} {
		if _, err := s.ConsistencyProof(ctx, bad[0], bad[1]); ledger.ErrorCode(err) != ledger.EINVALID {
			t.Errorf("ConsistencyProof(%d, %d) = %v, want EINVALID", bad[0], bad[1], err)
		}
		if _, err := s.InclusionProof(ctx, bad[0], bad[1]); ledger.ErrorCode(err) != ledger.EINVALID {
			t.Errorf("InclusionProof(%d, %d) = %v, want EINVALID", bad[0], bad[1], err)
		}
	}
	if _, err := s.Checkpoint(ctx, 3); ledger.ErrorCode(err) != ledger.ENOTFOUND {
		t.Errorf("Checkpoint(3) = %v, want ENOTFOUND", err)
	}
}

// TestLeafIsEntryValue pins the leaf data: the entry value byte for byte.
func TestLeafIsEntryValue(t *testing.T) {
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "a", "A"), recipientEvent(t, "b", "B"))
	err := s.db.View(func(txn *badger.Txn) error {
		for seq := uint64(1); seq <= 2; seq++ {
			value, err := unpackEntry(get(t, txn, entryKey(seq)))
			if err != nil {
				t.Fatal(err)
			}
			want := checkpoint.LeafHash(value)
			r, _, err := s.txnTree(txn)
			if err != nil {
				t.Fatal(err)
			}
			h, err := r.ReadHashes([]int64{tlog.StoredHashIndex(0, int64(seq-1))})
			if err != nil {
				t.Fatal(err)
			}
			got := h[0][:]
			if string(got) != string(want[:]) {
				t.Errorf("leaf %d = %x, want SHA-256(0x00 || entry value) %x", seq, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = binary.BigEndian
}

func TestVerifyWhileOpenAndOfACopy(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	_, vkey, _ := note.GenerateKey(nil, "sharelog/test")
	v, _ := note.NewVerifier(vkey)
	applyBatch(t, s, recipientEvent(t, "a", "A"), recipientEvent(t, "b", "B"))
	_, err := Verify(context.Background(), VerifyConfig{Dir: cfg.Dir, Verifier: v})
	if err == nil || !strings.Contains(err.Error(), "is the server still running?") {
		t.Errorf("Verify of an open ledger = %v, want a refusal", err)
	}
	// A copy taken while the server runs (memtable not flushed) verifies.
	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-r", cfg.Dir, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	res, err := Verify(context.Background(), VerifyConfig{Dir: cp, Verifier: v})
	if err != nil || res.Size != 2 || !res.Recovered {
		t.Errorf("Verify of a copy = %+v, %v; want size 2, recovered", res, err)
	}
}
