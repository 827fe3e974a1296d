package store

import (
	"context"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/note"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/ledger"
)

const (
	consultedID     = "JO-BLOGGS-774411" // the person looked up: must never be on disk in clear
	consultedReason = "SAR from Jo Bloggs, REQ-9931"
	queueReason     = "weekly manual queue by Sam Clerk"
)

// consultation is a consultation event sharelog records itself.
func consultation(t *testing.T, id, principal string, who *ledger.Subject, reason, query string) *ledger.Event {
	return internal(newEvent(t, ledger.TypeConsultation, "sharelog/consultations", id,
		&ledger.Consultation{Principal: principal, Operation: "who", Reason: reason, Subject: who, Query: query}))
}

// consultationLedger records a disclosure of the consulted person and five
// consultations, one a day from 2 January: c1 (jane.dpo, the person), c2
// (clerk, no person), c3 (jane.dpo, a person never disclosed), c4 (ico, no
// person, no reason), c5 (jane.dpo, the person again).
func consultationLedger(t *testing.T, cfg Config) *Store {
	t.Helper()
	s := openTest(t, cfg)
	jo, z9 := ledger.Subject{Scheme: "dbs-ref", ID: consultedID}, subj("Z9-NEVER-SEEN")
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"), disc{source: "cms", id: "d1", recipient: "acro", subjects: []ledger.Subject{jo},
		at: day(1), categories: []string{"user.name"}, purpose: "essential.service", basis: "art6-1-e", regime: ledger.RegimeUKGDPR}.event(t))
	for i, ev := range []*ledger.Event{
		consultation(t, "c1", "jane.dpo", &jo, consultedReason, ""),
		consultation(t, "c2", "clerk", nil, queueReason, "manual queue"),
		consultation(t, "c3", "jane.dpo", &z9, "", ""),
		consultation(t, "c4", "ico", nil, "", "recipient=acro"),
		consultation(t, "c5", "jane.dpo", &jo, "follow-up", ""),
	} {
		at := day(2 + i)
		s.now = func() time.Time { return at }
		if o := applyBatch(t, s, ev); o[0] != ledger.Recorded {
			t.Fatalf("%s: %v", ev.ID, o)
		}
	}
	return s
}

func ids(pg *ledger.ConsultationPage) []uint64 {
	var out []uint64
	for _, c := range pg.Consultations {
		out = append(out, c.Seq)
	}
	return out
}

func TestConsultations(t *testing.T) {
	ctx := context.Background()
	plainFiles(t) // the search of the files below
	cfg := testConfig(t)
	s := consultationLedger(t, cfg)
	jo := ledger.Subject{Scheme: "dbs-ref", ID: consultedID}
	// Entries: 1 recipient, 2 disclosure, 3..7 consultations c1..c5.
	for _, tc := range []struct {
		name string
		f    ledger.ConsultationFilter
		want []uint64
	}{
		{"the whole log, by time", ledger.ConsultationFilter{}, []uint64{3, 4, 5, 6, 7}},
		{"s.62 by person", ledger.ConsultationFilter{Subject: &jo}, []uint64{3, 7}},
		{"s.62 by principal", ledger.ConsultationFilter{Principal: "jane.dpo"}, []uint64{3, 5, 7}},
		{"by principal and person", ledger.ConsultationFilter{Subject: &jo, Principal: "clerk"}, nil},
		{"by period", ledger.ConsultationFilter{Since: day(3), Until: day(5)}, []uint64{4, 5}},
		{"by principal and period", ledger.ConsultationFilter{Principal: "jane.dpo", Since: day(4)}, []uint64{5, 7}},
		{"a person never looked up", ledger.ConsultationFilter{Subject: &ledger.Subject{Scheme: "dbs-ref", ID: "NOBODY"}}, nil},
		{"a principal that never asked", ledger.ConsultationFilter{Principal: "mallory"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pg, err := s.Consultations(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(pg); !slices.Equal(got, tc.want) || pg.Next != "" {
				t.Errorf("entries %v (next %q), want %v", got, pg.Next, tc.want)
			}
		})
	}

	pg, err := s.Consultations(ctx, ledger.ConsultationFilter{Subject: &jo})
	if err != nil {
		t.Fatal(err)
	}
	c1 := pg.Consultations[0]
	if c1.Principal != "jane.dpo" || c1.Operation != "who" || c1.Reason != consultedReason || c1.Subject == nil || *c1.Subject != jo ||
		!c1.BySubject || !c1.RecordedAt.Equal(day(2)) || c1.Forgotten {
		t.Errorf("c1 = %+v", c1)
	}

	// Paging: two at a time, in order, nothing lost or repeated.
	var all []uint64
	f := ledger.ConsultationFilter{Limit: 2}
	for range 5 {
		pg, err := s.Consultations(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ids(pg)...)
		if pg.Next == "" {
			break
		}
		f.After = pg.Next
	}
	if !slices.Equal(all, []uint64{3, 4, 5, 6, 7}) {
		t.Errorf("paged: %v", all)
	}
	if _, err := s.Consultations(ctx, ledger.ConsultationFilter{After: "nope"}); ledger.ErrorCode(err) != ledger.EINVALID {
		t.Errorf("bad cursor: %v", err)
	}

	// Sealed: neither the person nor a reason is in an entry's value in
	// clear, whether the entry names the person or no one.
	if err := s.db.View(func(txn *badger.Txn) error {
		for seq := uint64(3); seq <= 7; seq++ {
			stored, err := unpackEntry(get(t, txn, entryKey(seq)))
			if err != nil {
				return err
			}
			v := string(stored)
			for _, secret := range []string{consultedID, consultedReason, queueReason, "follow-up"} {
				if strings.Contains(v, secret) {
					t.Errorf("entry %d holds %q in clear", seq, secret)
				}
			}
			if !strings.Contains(v, "jane.dpo") && !strings.Contains(v, "clerk") && !strings.Contains(v, "ico") {
				t.Errorf("entry %d does not say who consulted", seq)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// On disk: the write-ahead log holds the entries as written, where the
	// principal, in clear, is found (the search can tell) and neither the
	// person nor any reason is.
	if hits := filesContain(t, cfg.Dir, []byte(`"principal":"clerk"`)); len(hits) == 0 {
		t.Error("the principal in clear is not found on disk: the search cannot tell")
	}
	for _, secret := range []string{consultedID, consultedReason, queueReason} {
		if hits := filesContain(t, cfg.Dir, []byte(secret)); len(hits) > 0 {
			t.Errorf("%q is on disk in clear: %v", secret, hits)
		}
	}

	// Art. 17: forgetting the person leaves the consultations, unlinkable.
	var h []byte
	if err := s.db.View(func(txn *badger.Txn) error { h, err = s.subjectHash(txn, jo); return err }); err != nil || h == nil {
		t.Fatalf("hash: %v", err)
	}
	if o := applyBatch(t, s, forgetEvent(t, hex.EncodeToString(h), ledger.ForgetRetention, "")); o[0] != ledger.Recorded {
		t.Fatalf("forget: %v", o)
	}
	if pg, err := s.Consultations(ctx, ledger.ConsultationFilter{Subject: &jo}); err != nil || len(pg.Consultations) != 0 {
		t.Errorf("after forgetting, by person: %v %v", ids(pg), err)
	}
	pg, err = s.Consultations(ctx, ledger.ConsultationFilter{})
	if err != nil || len(pg.Consultations) != 5 {
		t.Fatalf("after forgetting: %v %v", ids(pg), err)
	}
	for _, c := range pg.Consultations {
		switch c.Seq {
		case 3, 7:
			if !c.Forgotten || c.Subject != nil || c.Reason != "" || !c.BySubject || c.Principal != "jane.dpo" {
				t.Errorf("forgotten person's consultation %d = %+v", c.Seq, c)
			}
		case 4:
			if c.Forgotten || c.Reason != queueReason {
				t.Errorf("c2 = %+v: its reason, sealed under its own key, must stay readable", c)
			}
		}
	}
}

// signedConsultationLedger is consultationLedger closed with a signed
// checkpoint, for verify.
func signedConsultationLedger(t *testing.T) (Config, note.Verifier) {
	t.Helper()
	cfg := testConfig(t)
	s := consultationLedger(t, cfg)
	signer, vkey, _, err := checkpoint.LoadOrCreateKey(filepath.Join(t.TempDir(), "checkpoint.key"), "", "sharelog/test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoint.NewCheckpointer(s, signer, cfg.Logger).Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, v
}

// TestVerifyConsultations: verify replays consultations like every entry,
// and names a consultation tampered with, or dropped from the log's
// indexes.
func TestVerifyConsultations(t *testing.T) {
	cfg, v := signedConsultationLedger(t)
	first := func(txn *badger.Txn, prefix []byte) []byte {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		it.Rewind()
		if !it.Valid() {
			t.Fatalf("no key with prefix %q", prefix)
		}
		return it.Item().KeyCopy(nil)
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, txn *badger.Txn) error
		want   string
	}{
		{"untouched", func(*testing.T, *badger.Txn) error { return nil }, ""},
		{"s.62 a consultation's entry edited (principal changed)", func(t *testing.T, txn *badger.Txn) error {
			val := strings.Replace(string(get(t, txn, entryKey(3))), "jane.dpo", "jane.xyz", 1)
			return txn.Set(entryKey(3), []byte(val))
			// Entry 3 is in the partial tile (tree.go), whose leaf hashes
			// are not stored: the signed checkpoint of size 7 tells.
		}, "checkpoint size 7 does not match the ledger: an entry from 1 to 7 was changed"},
		{"s.62 a consultation dropped from the log by time", func(t *testing.T, txn *badger.Txn) error {
			return txn.Delete(first(txn, consultationPrefix(consultByTime, nil)))
		}, "consultation entry 3 in the consultation log by time: missing"},
		{"s.62 a consultation dropped from the log by person", func(t *testing.T, txn *badger.Txn) error {
			return txn.Delete(first(txn, consultationPrefix(consultBySubject, nil)))
		}, "in the consultation log of subject"},
		{"s.62 a consultation forged into the log by principal", func(t *testing.T, txn *badger.Txn) error {
			ph := idHash("mallory")
			return txn.Set(appendPos(consultationPrefix(consultByPrincipal, ph[:]), day(9), 3), nil)
		}, "consultation entry 3 in the consultation log by principal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := copyLedger(t, cfg)
			db, err := badger.Open(badgerOptions(c.Dir, c.Logger))
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(txn *badger.Txn) error { return tc.tamper(t, txn) }); err != nil {
				t.Fatal(err)
			}
			db.Close()
			res, err := verifyState(t, c, v)
			if tc.want == "" {
				if err != nil || res.Size != 7 {
					t.Fatalf("Verify of an untouched ledger = %+v, %v", res, err)
				}
				return
			}
			var se *StateError
			var te *TamperError
			switch {
			case errors.As(err, &se) && strings.Contains(se.Error(), tc.want):
			case errors.As(err, &te) && strings.Contains(te.Error(), tc.want):
			default:
				t.Errorf("Verify = %v, want it to say %q", err, tc.want)
			}
		})
	}
}
