package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/note"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/ledger/ledgertest"
)

// fullLedger builds a closed ledger that exercises every kind of derived
// record: recipients redefined, disclosures of one and of several people,
// erasures received 20 February (one extended, one paused and resumed:
// the person's clock) with a disclosure after one, acks, deliveries, an exemption, a
// restriction and its lifting, holds, and forgettings, one of a person named
// with another in one disclosure. It returns its config and verifier.
func fullLedger(t *testing.T) (Config, note.Verifier) {
	t.Helper()
	return fullLedgerWith(t, false)
}

// fullLedgerWith is fullLedger; with pipelined, its batches are applied
// as the ingest loop applies them, each commit pipelined with the next
// batch (pipeDriver), which then splits each batch into batches of one
// event, so that each event reads a snapshot without the one before.
func fullLedgerWith(t *testing.T, pipelined bool) (Config, note.Verifier) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Deadlines = ledger.Deadlines{Regimes: map[string]ledger.Deadline{ledger.RegimeDPAPart3: {Days: 14}}, Calendar: ledgertest.London().Calendar}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lt := ledgertest.Subject
	a1, b2, c3, d4, e5 := lt("A1"), lt("B2"), lt("C3"), lt("D4"), lt("E5")
	pair := ledgertest.Disclosure("d-pair", "police", a1, ledger.RegimeUKGDPR, "user.name")
	pair.Data.(*ledger.Disclosure).Subjects = []ledger.Subject{a1, d4}
	pair = ledgertest.Event("d-pair", ledger.TypeDisclosure, pair.Data)
	trio := ledgertest.Disclosure("d-trio", "cloud", b2, ledger.RegimeUKGDPR, "user.contact")
	trio.Data.(*ledger.Disclosure).Subjects = []ledger.Subject{b2, c3, d4}
	trio = ledgertest.Event("d-trio", ledger.TypeDisclosure, trio.Data)
	twice := ledgertest.Disclosure("d-twice", "acro", c3, ledger.RegimeDPAPart3, "user.name")
	twice.Data.(*ledger.Disclosure).Subjects = []ledger.Subject{c3, b2, c3}
	twice = ledgertest.Event("d-twice", ledger.TypeDisclosure, twice.Data)
	late := ledgertest.Disclosure("d-late", "police", b2, ledger.RegimeUKGDPR, "user.contact.email")
	late.Data.(*ledger.Disclosure).DisclosedAt = ledgertest.T0.Add(time.Hour)
	late = ledgertest.Event("d-late", ledger.TypeDisclosure, late.Data)
	received := ledgertest.T0.AddDate(0, 0, -9)
	restricted := ledgertest.Disclosure("d-restricted", "police", c3, ledger.RegimeUKGDPR, "user.name")
	restricted.Data.(*ledger.Disclosure).DisclosedAt = ledgertest.T0.Add(time.Hour)
	restricted = ledgertest.Event("d-restricted", ledger.TypeDisclosure, restricted.Data)
	batches := [][]ledgertest.Step{
		ledgertest.Base(),
		{
			ledgertest.OK(ledgertest.Event("rcp-police-2", ledger.TypeRecipient, &ledger.Recipient{ID: "police", Name: "Police", Role: ledger.RoleCompetentAuthority, Regime: ledger.RegimeDPAPart3, Channel: ledger.Channel{Type: "webhook", URL: "https://police.example.org/v2"}})),
			ledgertest.OK(pair), ledgertest.OK(trio), ledgertest.OK(twice),
			ledgertest.OK(ledgertest.Disclosure("d-b2", "acro", b2, ledger.RegimeDPAPart3, "user.contact.email")),
			ledgertest.OK(ledgertest.Disclosure("d-c3", "acro", c3, ledger.RegimeDPAPart3, "user.criminal_history")),
			// Issue 11: a processor (Art. 28(3)) and an inquiry authority (Art. 4(9)).
			ledgertest.OK(ledgertest.Registered("proc", ledger.RegimeUKGDPR, "nats", func(r *ledger.Recipient) { r.Role = ledger.RoleProcessor })),
			ledgertest.OK(ledgertest.Registered("inq", ledger.RegimeDPAPart3, "manual", func(r *ledger.Recipient) { r.InquiryAuthority = true })),
			ledgertest.OK(ledgertest.Disclosure("d-proc", "proc", b2, ledger.RegimeUKGDPR, "user.contact.email")),
			ledgertest.OK(ledgertest.Disclosure("d-inq", "inq", b2, ledger.RegimeDPAPart3, "user.name")),
			// DPA 2018 s.48(7): data that came from another competent authority.
			ledgertest.OK(ledgertest.Registered("origin", ledger.RegimeDPAPart3, "nats", func(r *ledger.Recipient) { r.Role = ledger.RoleCompetentAuthority })),
			ledgertest.OK(ledgertest.With(ledgertest.Disclosure("d-origin", "police", b2, ledger.RegimeUKGDPR, "user.name"), func(d *ledger.Disclosure) { d.ReceivedFrom = "origin" })),
			ledgertest.OK(ledgertest.Disclosure("d-e5", "police", e5, ledger.RegimeUKGDPR, "user.name")),
		},
		{
			ledgertest.OK(ledgertest.Received(ledgertest.Erasure("e1", "E1", a1), received)),
			ledgertest.OK(ledgertest.Received(ledgertest.Erasure("e2", "E2", b2, "user.contact"), received)),
			ledgertest.OK(late),
			ledgertest.OK(ledgertest.Restriction("r1", "R1", c3)),
			ledgertest.OK(restricted), // Art. 18(2): flagged
			ledgertest.OK(ledgertest.Rectification("rc1", &ledger.Rectification{RequestHeader: ledger.RequestHeader{Request: "RC1", Subject: b2}, Categories: []string{"user.name"}})), // s.48(7): tells origin
			ledgertest.OK(ledgertest.Hold("h1", "H1", &ledger.HoldScope{Subject: &c3})),
			ledgertest.OK(ledgertest.Hold("h2", "H2", &ledger.HoldScope{Purpose: "safeguarding.disclosure_check"})),
			// DPA 2018 s.47(2): erasures under holds restrict; H3's release lets E3 proceed.
			ledgertest.OK(ledgertest.Erasure("e4", "E4", c3)),
			ledgertest.OK(ledgertest.Hold("h3", "H3", &ledger.HoldScope{Subject: &d4})),
			ledgertest.OK(ledgertest.Erasure("e3", "E3", d4)),
			ledgertest.OK(ledgertest.Hold("h4", "H4", &ledger.HoldScope{Subject: &e5})),
			ledgertest.OK(ledgertest.Erasure("e5", "E5", e5)),
		},
		{
			ledgertest.OK(ledgertest.Delivery("dl1", ledger.NoticeID("E1", "acro"), ledger.DeliveryDelivered, true)),
			ledgertest.OK(ledgertest.Delivery("dl2", ledger.NoticeID("E1", "police"), ledger.DeliveryFailed, true)),
			ledgertest.OK(ledgertest.Ack("a1", ledger.NoticeID("E1", "acro"), "acro", "done")),
			ledgertest.OK(ledgertest.Exemption("x1", ledger.NoticeID("E1", "police"), "impossible")),
			ledgertest.OK(ledgertest.Ack("a2", ledger.NoticeID("E1", "cloud"), "cloud", "not-held")),
			ledgertest.OK(ledgertest.Lifting("l1", "L1", "R1", c3)),
			ledgertest.OK(ledgertest.Ack("a3", ledger.NoticeID("E2", "proc"), "proc", "refused")), // Art. 28(3): escalated
			ledgertest.OK(ledgertest.Release("rel2", "H2")),
			ledgertest.OK(ledgertest.Extension("x-e1", "E1", 2, ledgertest.T0.AddDate(0, 0, 2))),
			ledgertest.OK(ledgertest.Paused("p-e2", "E2", ledger.PauseClarification, ledgertest.T0.AddDate(0, 0, 1))),
			ledgertest.OK(ledgertest.Resumed("q-e2", "E2", ledgertest.T0.AddDate(0, 0, 3))),
			ledgertest.OK(ledgertest.Release("rel3", "H3")),
			ledgertest.OK(ledgertest.Release("rel4", "H4")),
		},
		{ledgertest.Forget("f1", a1, ledger.Recorded, "", ""), ledgertest.Forget("f5", e5, ledger.Recorded, "", "")}, // E5 erased after its hold
		{ledgertest.OK(ledgertest.Disclosure("d-after", "police", d4, ledger.RegimeUKGDPR, "user.name"))},
	}
	hash := func(subj ledger.Subject) []byte {
		var h []byte
		if err := s.db.View(func(txn *badger.Txn) error { h, err = s.subjectHash(txn, subj); return err }); err != nil {
			t.Fatal(err)
		}
		return h
	}
	if pipelined {
		var steps []ledgertest.Step
		for _, b := range batches {
			steps = append(steps, b...)
		}
		d := &pipeDriver{t: t, s: s, base: s.Applied(), out: make([]ledger.Outcome, len(steps))}
		d.event = func(i int) *ledger.Event {
			if st := steps[i]; st.Subject != nil {
				return ledgertest.ForgetHash(st.Event.ID, hex.EncodeToString(hash(*st.Subject)))
			}
			return steps[i].Event
		}
		d.at = func(i int) time.Time { return ledgertest.At(i + 1) }
		for i := range steps {
			d.apply([]int{i}, i < len(steps)-1)
		}
		for i, st := range steps {
			if d.out[i] != st.Want {
				t.Fatalf("%s: %v, want %v", st.Event.ID, d.out[i], st.Want)
			}
		}
		if d.reapplied == 0 {
			t.Fatal("no batch was applied again")
		}
		batches = nil
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
				ev = ledgertest.ForgetHash(ev.ID, hex.EncodeToString(hash(*st.Subject)))
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
	v := signCheckpoint(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg, v
}

// signCheckpoint signs a checkpoint of s's tree with a new key, and
// returns its verifier.
func signCheckpoint(t *testing.T, s *Store) note.Verifier {
	t.Helper()
	signer, vkey, _, err := checkpoint.LoadOrCreateKey(filepath.Join(t.TempDir(), "checkpoint.key"), "", "sharelog/test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoint.NewCheckpointer(s, signer, s.log).Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// copyLedger copies a closed ledger directory for one tampering.
func copyLedger(t *testing.T, cfg Config) Config {
	t.Helper()
	c := cfg
	c.Dir = filepath.Join(t.TempDir(), "ledger")
	if err := os.CopyFS(c.Dir, os.DirFS(cfg.Dir)); err != nil {
		t.Fatal(err)
	}
	return c
}

func verifyState(t *testing.T, cfg Config, v note.Verifier) (*VerifyResult, error) {
	t.Helper()
	return Verify(context.Background(), VerifyConfig{Dir: cfg.Dir, Verifier: v, Logger: cfg.Logger, Deadlines: cfg.Deadlines})
}

func TestVerifyStateIntact(t *testing.T) {
	cfg, v := fullLedger(t)
	res, err := verifyState(t, cfg, v)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Size != 48 || res.Records < 100 || res.Unchecked != 0 {
		t.Errorf("Verify = size %d, %d records compared, %d unchecked; want 48 entries, over 100 records, none unchecked", res.Size, res.Records, res.Unchecked)
	}
	// A different deadline policy gives other due dates: said, not hidden.
	_, err = Verify(context.Background(), VerifyConfig{Dir: cfg.Dir, Verifier: v, Logger: cfg.Logger})
	var se *StateError
	if !errors.As(err, &se) || !strings.Contains(se.Error(), "due ") {
		t.Errorf("Verify with another policy = %v; want due dates named as differing", err)
	}
}

// TestVerifyStateDetectsTampering edits a copy of a real ledger directory
// the ways an insider would, each leaving the entries and the tree intact.
func TestVerifyStateDetectsTampering(t *testing.T) {
	cfg, v := fullLedger(t)
	var b2 []byte
	var forgottenA1 string
	{
		s := openTest(t, copyLedger(t, cfg))
		if err := s.db.View(func(txn *badger.Txn) error {
			var err error
			b2, err = s.subjectHash(txn, ledgertest.Subject("B2"))
			return err
		}); err != nil || b2 == nil {
			t.Fatalf("B2: %v", err)
		}
		reqs, err := s.Status(context.Background(), "E1")
		if err != nil || reqs.ForgottenAt == nil {
			t.Fatalf("E1: %v %+v", err, reqs)
		}
		if err := s.db.View(func(txn *badger.Txn) error {
			rec, err := getRequest(txn, "E1")
			if err == nil {
				forgottenA1 = hex.EncodeToString(rec.Subject)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	first := func(txn *badger.Txn, prefix []byte) []byte {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		it.Rewind()
		if !it.Valid() {
			return nil
		}
		return it.Item().KeyCopy(nil)
	}
	// of returns the key under prefix ending with the entry of event id.
	of := func(t *testing.T, txn *badger.Txn, prefix []byte, id string) []byte {
		seq := get(t, txn, dedupeKey(id, "test"))
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if k := it.Item().Key(); bytes.HasSuffix(k, seq) {
				return it.Item().KeyCopy(nil)
			}
		}
		t.Fatalf("no key under %q for %s", prefix, id)
		return nil
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, txn *badger.Txn) error
		want   string
	}{
		{"a disclosure's subject index key deleted (it vanishes from who)", func(t *testing.T, txn *badger.Txn) error {
			return txn.Delete(of(t, txn, subjectPrefix(b2), "d-b2"))
		}, "in the subject index of " + hex.EncodeToString(b2) + ": missing"},
		// Its subject index is all that names the subjects of a disclosure
		// of several people (written without y keys): without it, the
		// replay tells the erasure's recipients otherwise.
		{"a multi-person disclosure's subject index key deleted", func(t *testing.T, txn *badger.Txn) error {
			return txn.Delete(of(t, txn, subjectPrefix(b2), "d-trio"))
		}, "request E2: notices"},
		{"a y key added for a disclosure written without them", func(t *testing.T, txn *badger.Txn) error {
			k := of(t, txn, subjectPrefix(b2), "d-b2")
			return txn.Set(sealedForKey(b2, binary.BigEndian.Uint64(k[len(k)-8:])), nil)
		}, "sealed for subject " + hex.EncodeToString(b2) + ": not derived from any entry"},
		{"a disclosure profile rewritten", func(t *testing.T, txn *badger.Txn) error {
			k := first(txn, []byte{prefixProfile})
			v := strings.Replace(string(get(t, txn, k)), "user.", "usr.x", 1)
			return txn.Set(k, []byte(v))
		}, "its value does not hash to its key"},
		// Ledgers no longer keep an index by time; one key of it, as
		// ledgers written before had, must still name a disclosure.
		{"a key of the index by time for no disclosure", func(t *testing.T, txn *badger.Txn) error {
			return txn.Set(byTimeKey(time.Unix(1, 0), 999), nil)
		}, "entry 999 in the index by time: not derived from any entry"},
		{"a disclosure profile deleted", func(t *testing.T, txn *badger.Txn) error {
			return txn.Delete(first(txn, []byte{prefixProfile}))
		}, "cannot be read: store: profile"},
		{"the first disclosure without y keys moved on", func(t *testing.T, txn *badger.Txn) error {
			return txn.Set(indexedByKey, binary.BigEndian.AppendUint64(nil, 5))
		}, "sealed for subject"},
		{"a disclosure's recipient index deleted", func(t *testing.T, txn *badger.Txn) error {
			return txn.Delete(first(txn, byRecipientPrefix("acro")))
		}, "in the index of recipient acro: missing"},
		{"a recipient's webhook URL rewritten", func(t *testing.T, txn *badger.Txn) error {
			v := strings.Replace(string(get(t, txn, recipientKey("police"))), "https://police.example.org/v2", "https://evil.example.com/x", 1)
			return txn.Set(recipientKey("police"), []byte(v))
		}, `recipient police: channel.url "https://evil.example.com/x", entries say "https://police.example.org/v2"`},
		{"an obligation marked acknowledged", func(t *testing.T, txn *badger.Txn) error {
			k := obligationKey(ledger.NoticeID("E2", "cloud"))
			v := strings.Replace(string(get(t, txn, k)), `"state":"pending"`, `"state":"acknowledged"`, 1)
			return txn.Set(k, []byte(v))
		}, `obligation ` + ledger.NoticeID("E2", "cloud") + `: state "acknowledged", entries say "pending"`},
		{"an open obligation dropped from the open index", func(t *testing.T, txn *badger.Txn) error {
			return txn.Delete(first(txn, []byte{prefixOpen}))
		}, "in the index of open obligations: missing"},
		{"a dedupe record deleted (the event would be recorded twice)", func(t *testing.T, txn *badger.Txn) error {
			return txn.Delete(dedupeKey("d-c3", "test"))
		}, "dedupe record of event test/d-c3 (entry 12): missing (the event would be recorded again)"},
		{"a dedupe record pointing elsewhere", func(t *testing.T, txn *badger.Txn) error {
			return txn.Set(dedupeKey("d-c3", "test"), []byte{0, 0, 0, 0, 0, 0, 0, 1})
		}, "dedupe record of event test/d-c3 (entry 12): value differs"},
		{"a request's record edited", func(t *testing.T, txn *badger.Txn) error {
			v := strings.Replace(string(get(t, txn, requestKey("R1"))), `"liftedBy":"L1"`, `"liftedBy":""`, 1)
			return txn.Set(requestKey("R1"), []byte(v))
		}, `request R1: liftedBy "", entries say "L1"`},
		{"Art12A the answer deadline of a paused and resumed request moved", func(t *testing.T, txn *badger.Txn) error {
			v := string(get(t, txn, requestKey("E2")))
			i := strings.Index(v, `"due":"`)
			v = v[:i] + `"due":"2026-03-20T23:59:59.999999999Z"` + v[i+len(`"due":"2026-03-20T23:59:59.999999999Z"`):]
			return txn.Set(requestKey("E2"), []byte(v))
		}, `request E2: answer differs`},
		{"a hold released by hand", func(t *testing.T, txn *badger.Txn) error {
			v := strings.Replace(string(get(t, txn, holdKey("H1"))), `"seq"`, `"releasedAt":"2026-03-01T09:00:00Z","seq"`, 1)
			return txn.Set(holdKey("H1"), []byte(v))
		}, `hold H1: releasedAt "2026-03-01T09:00:00Z", entries say (none)`},
		{"a forgotten subject's locator put back", func(t *testing.T, txn *badger.Txn) error {
			return txn.Set(subjectLocKey([]byte("0123456789abcdef")), []byte("0123456789abcdef"))
		}, "locator of subject 30313233343536373839616263646566 (the subject is known): not derived from any entry"},
		{"a subject's salt deleted", func(t *testing.T, txn *badger.Txn) error {
			return txn.Delete(first(txn, []byte{prefixSalt}))
		}, "subject salts for"},
		{"a disclosure's after-erasure flag removed", func(t *testing.T, txn *badger.Txn) error {
			return txn.Delete(first(txn, []byte{prefixAfterErasure}))
		}, "after-erasure flag of disclosure d-late"},
		{"an erasure after a hold's release deleted (s.47(2))", func(t *testing.T, txn *badger.Txn) error {
			return txn.Delete(obligationKey(ledger.AfterHoldNoticeID("E3", "police")))
		}, "obligation " + ledger.AfterHoldNoticeID("E3", "police") + ": missing"},
		{"a held erasure turned back into an erasure by hand (s.47(2))", func(t *testing.T, txn *badger.Txn) error {
			k := obligationKey(ledger.NoticeID("E4", "acro"))
			v := strings.Replace(string(get(t, txn, k)), `"action":"restrict"`, `"action":"erase"`, 1)
			return txn.Set(k, []byte(v))
		}, "obligation " + ledger.NoticeID("E4", "acro") + `: action "erase", entries say "restrict"`},
		{"a processor's escalation removed (Art. 28(3))", func(t *testing.T, txn *badger.Txn) error {
			k := obligationKey(ledger.NoticeID("E2", "proc"))
			v := strings.Replace(string(get(t, txn, k)), `"escalatedAt"`, `"escalatedAtX"`, 1)
			return txn.Set(k, []byte(v))
		}, "obligation " + ledger.NoticeID("E2", "proc") + ": escalatedAt"},
		{"a disclosure's while-restricted flag removed (Art. 18(2))", func(t *testing.T, txn *badger.Txn) error {
			return txn.Delete(first(txn, []byte{prefixRestricted}))
		}, "while-restricted flag of disclosure d-restricted"},
		{"an obligation inserted", func(t *testing.T, txn *badger.Txn) error {
			return txn.Set(obligationKey("ntc-forged"), []byte(`{"notice":"ntc-forged","state":"pending"}`))
		}, "obligation ntc-forged: not derived from any entry"},
		{"a forgotten subject's y key deleted (its multi-person disclosure no longer says who)", func(t *testing.T, txn *badger.Txn) error {
			a1, err := hex.DecodeString(forgottenA1)
			if err != nil {
				return err
			}
			return txn.Delete(first(txn, sealedForPrefix(a1)))
		}, "disclosures [\"d2\",\"d-pair\"], entries say [\"d2\"]"},
		{"untouched copy", func(t *testing.T, txn *badger.Txn) error { return nil }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := copyLedger(t, cfg)
			db, err := badger.Open(badgerOptions(c.Dir, c.Logger))
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(txn *badger.Txn) error { return tt.tamper(t, txn) }); err != nil {
				t.Fatal(err)
			}
			db.Close()
			_, err = verifyState(t, c, v)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify of an untouched copy: %v", err)
				}
				return
			}
			var se *StateError
			if !errors.As(err, &se) {
				t.Fatalf("Verify = %v, want a StateError", err)
			}
			if !strings.Contains(se.Error(), tt.want) {
				t.Errorf("Verify:\n%v\nwant it to say %q", se, tt.want)
			}
		})
	}
}
