package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"path/filepath"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestMarkedSubjects: a disclosure made after an erasure of the same data
// is flagged, which needs the subject's erasure markers, whether the
// erasure is earlier in the same batch (the set of marked subjects grows
// when the marker is written, not at commit), in a batch committed before,
// before the ledger was reopened, compacted, or restored from a backup; an
// erasure in a discarded batch flags nothing; a subject never erased is not
// in the set, so its disclosures read no marker.
func TestMarkedSubjects(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	applyBatch(t, s, rcp(t, "acro", "manual", "", 0))
	email := []string{"user.contact.email"}
	n := 0
	disclose := func(st *Store, who string) string {
		t.Helper()
		n++
		id := "d" + string(rune('a'+n))
		ev := disc{id: id, recipient: "acro", subjects: []ledger.Subject{subj(who)}, at: day(11 + n), categories: email}.event(t)
		if out := applyBatch(t, st, ev); out[0] != ledger.Recorded {
			t.Fatalf("disclosure %s: %v", id, out)
		}
		return id
	}
	flagged := func(st *Store, when, id, want string) {
		t.Helper()
		d, err := st.Disclosure(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if d.AfterErasure != want {
			t.Errorf("%s: %s AfterErasure = %q, want %q", when, id, d.AfterErasure, want)
		}
	}
	marked := func(st *Store, who string) bool {
		t.Helper()
		h, err := st.SubjectHashOf(ctx, subj(who))
		if err != nil {
			t.Fatal(err)
		}
		hb, err := hex.DecodeString(h)
		if err != nil || len(hb) != subjectHashLen {
			t.Fatalf("SubjectHashOf(%s) = %q, %v", who, h, err)
		}
		st.writer.Lock()
		defer st.writer.Unlock()
		return st.marked.has(hb)
	}

	// The erasure and a disclosure after it in one batch.
	out := applyBatch(t, s,
		erasure(t, "e1", "E1", subj("A1"), day(10), "user.contact"),
		disc{id: "same", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(11), categories: email}.event(t))
	if out[0] != ledger.Recorded || out[1] != ledger.Recorded {
		t.Fatalf("outcomes %v", out)
	}
	flagged(s, "same batch", "same", "E1")
	flagged(s, "next batch", disclose(s, "A1"), "E1")

	// An erasure discarded: nothing flagged.
	disclose(s, "B2")
	b := s.Begin()
	if o, err := b.Append(s.Applied()+1, erasure(t, "e2", "E2", subj("B2"), day(10), "user.contact")); o != ledger.Recorded || err != nil {
		b.Discard()
		t.Fatalf("erasure: %v %v", o, err)
	}
	b.Discard()
	flagged(s, "after a discarded erasure", disclose(s, "B2"), "")

	disclose(s, "C3")
	if marked(s, "C3") {
		t.Error("C3, never erased, is in the set of marked subjects")
	}
	if !marked(s, "A1") {
		t.Error("A1 is not in the set of marked subjects")
	}

	// Reopened: the set comes from the x keys.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(cfg); err != nil {
		t.Fatal(err)
	}
	flagged(s, "reopened", disclose(s, "A1"), "E1")
	flagged(s, "reopened", disclose(s, "C3"), "")

	// Compacted.
	if _, err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	flagged(s, "compacted", disclose(s, "A1"), "E1")

	// Restored from a backup, with the same keys.
	var buf bytes.Buffer
	if _, err := s.Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	rcfg := testConfig(t)
	rcfg.KeyFile = cfg.KeyFile
	rcfg.MasterKeyFile = filepath.Join(filepath.Dir(cfg.KeyFile), "master.key")
	r, err := Restore(rcfg, &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	flagged(r, "restored", disclose(r, "A1"), "E1")
	flagged(r, "restored", disclose(r, "B2"), "")
}
