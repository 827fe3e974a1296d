package store

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/note"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/ledger/ledgertest"
)

// forgetLedger writes, with legacy as ledgers written before disclosures
// went without y keys (Store.legacyY), disclosures naming X alone, X and
// Y, Y alone, an erasure of X, then forgets X. It returns the ledger,
// still open, the keyed hashes of its subjects by name (X, Y, and A of
// ledgertest.Base), and a verifier of the checkpoint it signed.
func forgetLedger(t *testing.T, legacy bool) (s *Store, cfg Config, hashes map[string][]byte, v note.Verifier) {
	t.Helper()
	cfg = testConfig(t)
	cfg.Deadlines = ledger.Deadlines{Regimes: map[string]ledger.Deadline{ledger.RegimeDPAPart3: {Days: 14}}, Calendar: ledgertest.London().Calendar}
	s = openTest(t, cfg)
	s.legacyY = legacy
	lt := ledgertest.Subject
	sx, sy := lt("X1"), lt("Y1")
	pair := ledgertest.Disclosure("d-pair", "police", sx, ledger.RegimeUKGDPR, "user.name")
	pair.Data.(*ledger.Disclosure).Subjects = []ledger.Subject{sx, sy}
	pair = ledgertest.Event("d-pair", ledger.TypeDisclosure, pair.Data)
	hash := func(subj ledger.Subject) []byte {
		var h []byte
		if err := s.db.View(func(txn *badger.Txn) (err error) { h, err = s.subjectHash(txn, subj); return err }); err != nil {
			t.Fatal(err)
		}
		return h
	}
	batches := [][]ledgertest.Step{
		ledgertest.Base(),
		{
			ledgertest.OK(ledgertest.Disclosure("d-x1", "police", sx, ledger.RegimeUKGDPR, "user.name")),
			ledgertest.OK(pair),
			ledgertest.OK(ledgertest.Disclosure("d-y1", "acro", sy, ledger.RegimeDPAPart3, "user.name")),
			ledgertest.OK(ledgertest.Disclosure("d-x2", "acro", sx, ledger.RegimeDPAPart3, "user.contact.email")),
			ledgertest.OK(ledgertest.Erasure("e-x", "EX", sx)),
		},
		{ledgertest.Forget("f-x", sx, ledger.Recorded, "", "")},
		{ledgertest.OK(ledgertest.Disclosure("d-y2", "police", sy, ledger.RegimeUKGDPR, "user.name"))},
	}
	day := 0
	for _, steps := range batches {
		b := s.Begin()
		seq := s.Applied()
		for _, st := range steps {
			day++
			at := ledgertest.At(day)
			s.now = func() time.Time { return at }
			ev := st.Event
			if st.Subject != nil {
				hashes = map[string][]byte{"X": hash(*st.Subject)}
				ev = ledgertest.ForgetHash(ev.ID, hex.EncodeToString(hashes["X"]))
			}
			seq++
			if o, err := b.Append(seq, ev); o != st.Want {
				t.Fatalf("%s: %v %v, want %v", ev.ID, o, err, st.Want)
			}
		}
		if err := b.Commit(seq); err != nil {
			t.Fatal(err)
		}
	}
	hashes["Y"], hashes["A"] = hash(sy), hash(lt("A1"))
	signer, vkey, _, err := checkpoint.LoadOrCreateKey(filepath.Join(t.TempDir(), "checkpoint.key"), "", "sharelog/test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoint.NewCheckpointer(s, signer, cfg.Logger).Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, err = note.NewVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	return s, cfg, hashes, v
}

// keySpace lists the ledger's keys but salts and locators (keyed by the
// site secret), with the keyed hashes written <name>, and the values of
// the scrub records.
func keySpace(t *testing.T, s *Store, hashes map[string][]byte) (keys []string, scrubs map[string]string) {
	t.Helper()
	scrubs = map[string]string{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			switch k[0] {
			case prefixSalt, prefixSubjectLoc:
				continue
			}
			n := fmt.Sprintf("%q", k[:1]) + hex.EncodeToString(k[1:])
			for name, h := range hashes {
				n = strings.ReplaceAll(n, hex.EncodeToString(h), "<"+name+">")
			}
			keys = append(keys, n)
			if k[0] == prefixScrub {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					return err
				}
				scrubs[n] = string(v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys, scrubs
}

// TestForgetWithoutSealedFor: forgetting a subject of a ledger whose
// disclosures have no y keys destroys exactly what it destroys in a ledger
// written with them (the same scrub record, data keys, indexes), and
// leaves the y key of the disclosure naming several people that verify
// needs; both ledgers verify. The only keys that differ are the
// disclosures' y keys, which the legacy ledger keeps, and the record of
// the first disclosure without.
func TestForgetWithoutSealedFor(t *testing.T) {
	ctx := context.Background()
	legacy, lcfg, lh, lv := forgetLedger(t, true)
	now, ncfg, nh, nv := forgetLedger(t, false)
	lkeys, lscrubs := keySpace(t, legacy, lh)
	nkeys, nscrubs := keySpace(t, now, nh)
	if len(lscrubs) != 1 || !maps.Equal(lscrubs, nscrubs) {
		t.Errorf("scrub records: %v; legacy ledger: %v", nscrubs, lscrubs)
	}
	seqOf := func(s *Store, id string) string {
		var seq []byte
		if err := s.db.View(func(txn *badger.Txn) error { seq = get(t, txn, dedupeKey(id, "test")); return nil }); err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(seq)
	}
	y := func(subject, id string) string { return `"y"` + subject + seqOf(now, id) }
	// The legacy ledger's y keys of disclosures: X's stay after forgetting.
	wantOnlyLegacy := []string{y("<X>", "d-x1"), y("<X>", "d-x2"), y("<Y>", "d-pair"), y("<Y>", "d-y1"), y("<Y>", "d-y2"), y("<A>", "d1"), y("<A>", "d2"), y("<A>", "d3")}
	wantOnlyNew := []string{`"Y"`}
	var onlyLegacy, onlyNew []string
	for _, k := range lkeys {
		if !slices.Contains(nkeys, k) {
			onlyLegacy = append(onlyLegacy, k)
		}
	}
	for _, k := range nkeys {
		if !slices.Contains(lkeys, k) {
			onlyNew = append(onlyNew, k)
		}
	}
	slices.Sort(onlyLegacy)
	slices.Sort(wantOnlyLegacy)
	if !slices.Equal(onlyLegacy, wantOnlyLegacy) || !slices.Equal(onlyNew, wantOnlyNew) {
		t.Errorf("keys only in the legacy ledger: %v, want %v; only in the new one: %v, want %v", onlyLegacy, wantOnlyLegacy, onlyNew, wantOnlyNew)
	}
	// The pair's data key is gone, its y key of X written; X's subject
	// index is gone; Y's stays.
	for _, k := range []string{y("<X>", "d-pair"), `"s"<Y>`} {
		if !slices.ContainsFunc(nkeys, func(n string) bool { return strings.HasPrefix(n, k) }) {
			t.Errorf("no key %s in the new ledger after forgetting", k)
		}
	}
	for _, k := range []string{`"k"` + seqOf(now, "d-pair"), `"s"<X>`} {
		if slices.ContainsFunc(nkeys, func(n string) bool { return strings.HasPrefix(n, k) }) {
			t.Errorf("key %s in the new ledger after forgetting", k)
		}
	}
	for _, c := range []struct {
		s   *Store
		cfg Config
		v   note.Verifier
	}{{legacy, lcfg, lv}, {now, ncfg, nv}} {
		if err := c.s.Close(); err != nil {
			t.Fatal(err)
		}
		res, err := Verify(ctx, VerifyConfig{Dir: c.cfg.Dir, Verifier: c.v, Logger: c.cfg.Logger, Deadlines: c.cfg.Deadlines})
		if err != nil {
			t.Fatalf("Verify (legacy %v): %v", c.s.legacyY, err)
		}
		if res.Unchecked != 0 || res.Records < 20 {
			t.Errorf("Verify (legacy %v) = %d records, %d unchecked", c.s.legacyY, res.Records, res.Unchecked)
		}
	}
}

// TestForgetInLedgerWrittenBefore: testdata/ledger-v0, written with y keys
// for every disclosure, takes disclosures without them; forgetting D4, a
// subject of old and new disclosures of one and of several people, scrubs
// each of its entries once, destroys the data keys of those naming others
// (writing the y key of the new one) and verifies.
func TestForgetInLedgerWrittenBefore(t *testing.T) {
	ctx := context.Background()
	cfg, verifier := openLedgerV0(t)
	s := openTest(t, cfg)
	b2, d4 := ledgertest.Subject("B2"), ledgertest.Subject("D4")
	pair := ledgertest.Disclosure("d-new-pair", "police", d4, ledger.RegimeUKGDPR, "user.name")
	pair.Data.(*ledger.Disclosure).Subjects = []ledger.Subject{b2, d4}
	pair = ledgertest.Event("d-new-pair", ledger.TypeDisclosure, pair.Data)
	applyBatch(t, s, ledgertest.Disclosure("d-new-d4", "acro", d4, ledger.RegimeDPAPart3, "user.name"), pair)

	var h []byte
	var err error
	entries := map[uint64]bool{} // the entries naming D4: in its y keys, and the two new ones
	err = s.db.View(func(txn *badger.Txn) error {
		if h, err = s.subjectHash(txn, d4); err != nil {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: sealedForPrefix(h)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			entries[binary.BigEndian.Uint64(k[len(k)-8:])] = true
		}
		if v, err := txn.Get(indexedByKey); err != nil {
			return fmt.Errorf("the record of the first disclosure without y keys: %w", err)
		} else if n, _ := v.ValueCopy(nil); binary.BigEndian.Uint64(n) != 49 {
			return fmt.Errorf("the first disclosure without y keys is entry %d, want 49", binary.BigEndian.Uint64(n))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 3 || entries[49] || entries[50] {
		t.Fatalf("entries with y keys of D4: %v; want old ones only", entries)
	}
	entries[49], entries[50] = true, true
	var streamSeqs []uint64
	multi := map[uint64]bool{}
	err = s.db.View(func(txn *badger.Txn) error {
		for seq := range entries {
			eh, err := getEntryHeader(txn, nil, seq)
			if err != nil {
				return err
			}
			streamSeqs = append(streamSeqs, eh.streamSeq)
			if eh.ref.subject == nil {
				multi[seq] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(streamSeqs)
	if !multi[50] || len(multi) < 2 {
		t.Fatalf("entries naming D4 with others: %v; want an old one and 50", multi)
	}
	scrubsBefore, err := s.PendingScrubs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if o := applyBatch(t, s, ledgertest.ForgetHash("f-d4", hex.EncodeToString(h))); o[0] != ledger.Recorded {
		t.Fatalf("forgetting D4: %v", o)
	}
	scrubs, err := s.PendingScrubs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(scrubs) != len(scrubsBefore)+1 {
		t.Fatalf("scrub records %d, want %d", len(scrubs), len(scrubsBefore)+1)
	}
	if got := scrubs[len(scrubs)-1]; !slices.Equal(got.StreamSeqs, streamSeqs) {
		t.Errorf("forgetting D4 scrubs stream messages %v, want %v (its entries' %v)", got.StreamSeqs, streamSeqs, slices.Sorted(maps.Keys(entries)))
	}
	err = s.db.View(func(txn *badger.Txn) error {
		for seq := range multi {
			if _, err := txn.Get(dataKeyKey(seq)); err == nil {
				t.Errorf("data key of entry %d, naming D4 with others, kept", seq)
			}
			if _, err := txn.Get(sealedForKey(h, seq)); err != nil {
				t.Errorf("y key of D4 and entry %d: %v", seq, err)
			}
		}
		if _, err := txn.Get(sealedForKey(h, 49)); err == nil {
			t.Errorf("y key of D4 written for entry 49, naming D4 alone")
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: subjectPrefix(h)})
		defer it.Close()
		if it.Rewind(); it.Valid() {
			t.Errorf("D4's subject index kept")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := Verify(ctx, VerifyConfig{Dir: cfg.Dir, Verifier: verifier, Logger: cfg.Logger, Deadlines: cfg.Deadlines})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Size != 51 || res.Unchecked != 0 {
		t.Errorf("Verify = size %d, %d unchecked; want 51, none", res.Size, res.Unchecked)
	}
}
