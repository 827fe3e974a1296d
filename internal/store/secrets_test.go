package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestSealDataSynthetic: sealing with a synthetic nonce is a function of
// key, aad and plain text (so replicas write identical entries), the nonce changes with any of
// them (no nonce is reused for another message under a key), and what is
// sealed opens, short and compressed alike.
func TestSealDataSynthetic(t *testing.T) {
	key := bytes.Repeat([]byte{7}, dataKeyLen)
	long := []byte(strings.Repeat(`{"id":"A-1","justification":"x"}`, 40)) // over compressMin
	for _, plain := range [][]byte{[]byte(`{"id":"A-1"}`), long} {
		a, err := sealData(key, entryKey(1), plain, true)
		if err != nil {
			t.Fatal(err)
		}
		b, err := sealData(key, entryKey(1), plain, true)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("sealing %d bytes twice gave different bytes", len(plain))
		}
		others := map[string][]byte{}
		if others["aad"], err = sealData(key, entryKey(2), plain, true); err != nil {
			t.Fatal(err)
		}
		if others["plain"], err = sealData(key, entryKey(1), append(bytes.Clone(plain), ' '), true); err != nil {
			t.Fatal(err)
		}
		if others["key"], err = sealData(bytes.Repeat([]byte{8}, dataKeyLen), entryKey(1), plain, true); err != nil {
			t.Fatal(err)
		}
		for what, o := range others {
			if bytes.Equal(o[:nonceLen], a[:nonceLen]) {
				t.Errorf("another %s, same nonce", what)
			}
		}
		got, err := openData(key, entryKey(1), a)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("open: %v, %d bytes back of %d", err, len(got), len(plain))
		}
		if _, err := openData(key, entryKey(2), a); err == nil {
			t.Error("opened with another entry's aad")
		}
	}
	// A sharelog on its own seals with random nonces, as before.
	r1, err := sealData(key, entryKey(1), long, false)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := sealData(key, entryKey(1), long, false)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(r1[:nonceLen], r2[:nonceLen]) {
		t.Error("random nonces: the same twice")
	}
	if got, err := openData(key, entryKey(1), r1); err != nil || !bytes.Equal(got, long) {
		t.Errorf("open a randomly sealed part: %v", err)
	}
	// The aad's length is part of the nonce's input: (aad, plain) pairs
	// that run together into the same bytes get different nonces.
	x := sivNonce(nil, key, []byte("ab"), []byte("c"))
	y := sivNonce(nil, key, []byte("a"), []byte("bc"))
	if bytes.Equal(x, y) {
		t.Error("aad ab + c and aad a + bc share a nonce")
	}
}

// TestDefaultSecretsAreRandom: a sharelog on its own (no Config.Secrets)
// records the time AppendAt is given, writes an entry naming nobody the
// same way as another ledger would, and makes each subject's salt with
// crypto/rand, as it always did: two ledgers know one person under
// different keyed hashes. It leaves no names of shared secrets and no
// shred records behind a forgetting.
func TestDefaultSecretsAreRandom(t *testing.T) {
	at := time.Date(2025, 5, 6, 7, 8, 9, 123456789, time.UTC)
	master := bytes.Repeat([]byte{3}, MasterKeyLen)
	var stores [2]*Store
	for i := range stores {
		cfg := testConfig(t)
		cfg.MasterKey = master
		stores[i] = openTest(t, cfg)
		s := stores[i]
		if s.SharedSecrets() {
			t.Fatal("SharedSecrets without Config.Secrets")
		}
		b := s.Begin()
		for j, ev := range []*ledger.Event{
			recipientEvent(t, "acro", "ACRO"),
			disc{id: "d-1", recipient: "acro", subjects: []ledger.Subject{subj("P-1"), subj("P-2")}, at: day(2)}.event(t),
		} {
			if out, err := b.AppendAt(uint64(j+1), ev, at); err != nil || out != ledger.Recorded {
				t.Fatalf("AppendAt %s: %v %v", ev.ID, out, err)
			}
		}
		if err := b.Commit(2); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	e1, err := stores[0].Entry(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !e1.RecordedAt.Equal(at) {
		t.Errorf("RecordedAt = %v, want %v", e1.RecordedAt, at)
	}
	r0, err := stores[0].RootAt(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := stores[1].RootAt(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r0 != r1 {
		t.Error("the same recipient entry at the same time: different leaves")
	}
	h0, _ := stores[0].SubjectHashOf(ctx, subj("P-1"))
	h1, _ := stores[1].SubjectHashOf(ctx, subj("P-1"))
	if h0 == "" || h0 == h1 {
		t.Errorf("keyed hashes %q and %q: want random salts, different per ledger", h0, h1)
	}
	if _, err := stores[0].RootAt(ctx, 3); err == nil {
		t.Error("RootAt beyond the ledger's size: no error")
	}
	// A forgetting on its own leaves no shred record.
	ev := newEvent(t, ledger.TypeSubjectForgotten, "sharelog/retention", "forget-1", &ledger.SubjectForgotten{SubjectHash: h0, Reason: "retention", At: day(9)})
	ev.Internal = true
	if out := applyBatch(t, stores[0], ev); out[0] != ledger.Recorded {
		t.Fatalf("forgetting: %v", out)
	}
	if sh, err := stores[0].PendingShreds(ctx); err != nil || len(sh) != 0 {
		t.Errorf("shreds on a sharelog on its own: %v %v", sh, err)
	}
}

// BenchmarkSealData seals a typical personal part (a few hundred bytes,
// under compressMin) as an entry's, with a random nonce and a synthetic one
// (replicas): the cost of its nonce included.
func BenchmarkSealData(b *testing.B) {
	for _, synthetic := range []bool{false, true} {
		b.Run(fmt.Sprintf("synthetic=%v", synthetic), func(b *testing.B) { benchSealData(b, synthetic) })
	}
}

func benchSealData(b *testing.B, synthetic bool) {
	key := bytes.Repeat([]byte{7}, dataKeyLen)
	plain := []byte(strings.Repeat(`{"scheme":"dbs-ref","id":"A-123456"}`, 8))
	b.SetBytes(int64(len(plain)))
	cpu := cpuTime(b)
	for i := 0; b.Loop(); i++ {
		if _, err := sealData(key, entryKey(uint64(i)), plain, synthetic); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op")
}
