package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/sharelog/sharelog/internal/ledger"
)

func forgetEvent(t *testing.T, hash, reason, request string) *ledger.Event {
	ev := newEvent(t, ledger.TypeSubjectForgotten, "sharelog/retention", "forget-"+hash, &ledger.SubjectForgotten{
		SubjectHash: hash, Reason: reason, Request: request, At: day(25),
	})
	return internal(ev)
}

func hold(t *testing.T, id string, scope *ledger.HoldScope) *ledger.Event {
	return newEvent(t, ledger.TypeHold, "dpo", "hold-"+id, &ledger.Hold{Hold: id, Scope: scope, Reason: "IICSA moratorium", PlacedBy: "dpo"})
}

func release(t *testing.T, id string) *ledger.Event {
	return newEvent(t, ledger.TypeHoldReleased, "dpo", "release-"+id, &ledger.HoldReleased{Hold: id, Reason: "inquiry closed"})
}

// closeAll answers every obligation of request: acks from nats and
// manual recipients, exemption otherwise.
func closeAll(t *testing.T, s *Store, request string) {
	t.Helper()
	for i, o := range mustStatus(t, s, request).Obligations {
		var ev *ledger.Event
		if o.Regime == ledger.RegimeDPAPart3 || o.Channel != "webhook" {
			ev = ack(t, "ack-"+request+string(rune('a'+i)), o.Notice, "done", o.Recipient)
		} else {
			ev = exemption(t, "ex-"+request+string(rune('a'+i)), o.Notice, "impossible")
		}
		if out, err := applyOne(t, s, ev); out != ledger.Recorded {
			t.Fatalf("closing %s: %v %v", o.Notice, out, err)
		}
	}
}

// filesContain returns the names of the files under dir that contain b.
// It reads only the data regions of sparse files (Badger preallocates its
// value log and memtable logs).
func filesContain(t *testing.T, dir string, b []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		found, err := fileContains(path, b)
		if found {
			hits = append(hits, filepath.Base(path))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

const (
	seekData = 3 // SEEK_DATA
	seekHole = 4 // SEEK_HOLE
)

func fileContains(path string, b []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var off int64
	for {
		start, err := f.Seek(off, seekData)
		if err != nil {
			return false, nil // no more data (ENXIO)
		}
		end, err := f.Seek(start, seekHole)
		if err != nil {
			return false, err
		}
		buf := make([]byte, end-start)
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		if bytes.Contains(buf, b) {
			return true, nil
		}
		// Regions are block-aligned: a match across a hole is impossible.
		off = end
	}
}

// plainFiles writes uncompressed tables and entries until t ends, so that
// a search of the files finds every key and every value.
func plainFiles(t *testing.T) {
	table, entry := tableCompression, entryCompression
	tableCompression, entryCompression = options.None, false
	t.Cleanup(func() { tableCompression, entryCompression = table, entry })
}

func TestForgetSubject(t *testing.T) {
	ctx := context.Background()
	plainFiles(t)
	s := propFixture(t)
	cfg := s.db.Opts()
	// A disclosure naming A1 and B2 together.
	applyBatch(t, s, disc{id: "d6", recipient: "web", subjects: []ledger.Subject{subj("A1"), subj("B2")}, at: day(6)}.event(t))
	applyBatch(t, s, erasure(t, "e1", "er-1", subj("A1"), day(10)))

	h, err := s.SubjectHashOf(ctx, subj("A1"))
	if err != nil || h == "" {
		t.Fatalf("SubjectHashOf(A1) = %q, %v", h, err)
	}
	pol := ledger.ForgetPolicy{}
	if c, err := s.ForgetCandidates(ctx, day(20), pol); err != nil || len(c) != 0 {
		t.Fatalf("candidates with open obligations = %+v, %v; want none", c, err)
	}
	// With a timeout the open erasure qualifies.
	c, err := s.ForgetCandidates(ctx, day(20), ledger.ForgetPolicy{ErasureAfter: 24 * time.Hour})
	if err != nil || len(c) != 1 || c[0].Reason != ledger.ForgetErasureTimeout {
		t.Fatalf("candidates with timeout = %+v, %v", c, err)
	}
	closeAll(t, s, "er-1")
	c, err = s.ForgetCandidates(ctx, day(20), pol)
	want := []ledger.ForgetCandidate{{SubjectHash: h, Reason: ledger.ForgetErasureClosed, Request: "er-1"}}
	if err != nil || !slices.EqualFunc(c, want, func(a, b ledger.ForgetCandidate) bool {
		return a.SubjectHash == b.SubjectHash && a.Reason == b.Reason && a.Request == b.Request && len(a.HeldBy) == 0
	}) {
		t.Fatalf("candidates = %+v, %v; want %+v", c, err, want)
	}

	// The keys to find on disk: A1's salt, from which the key of its own
	// entries comes, and the data key of d6, which names A1 and B2.
	rec, err := s.Disclosure(ctx, "d1", "cms")
	if err != nil || rec.Forgotten || rec.Disclosure.Subjects[0].ID != "A1" {
		t.Fatalf("d1 before = %+v, %v", rec, err)
	}
	d6, err := s.Disclosure(ctx, "d6", "cms")
	if err != nil || len(d6.Disclosure.Subjects) != 2 {
		t.Fatalf("d6 before = %+v, %v", d6, err)
	}
	var wrapped []byte
	s.db.View(func(txn *badger.Txn) error {
		wrapped, err = txnValue(txn, dataKeyKey(d6.Seq))
		return err
	})
	if len(wrapped) == 0 {
		t.Fatalf("no data key for entry %d (d6)", d6.Seq)
	}
	salt := saltOf(t, s, subj("A1"))
	live := saltOf(t, s, subj("B2"))

	// Only sharelog forgets.
	notInternal := forgetEvent(t, h, ledger.ForgetErasureClosed, "er-1")
	notInternal.Internal = false
	if out, err := applyOne(t, s, notInternal); out != ledger.Rejected {
		t.Fatalf("external forgetting = %v, %v; want rejected", out, err)
	}
	if out, err := applyOne(t, s, forgetEvent(t, h, ledger.ForgetErasureClosed, "er-1")); out != ledger.Recorded {
		t.Fatalf("forget = %v, %v", out, err)
	}

	who, err := s.Who(ctx, subj("A1"))
	if err != nil || len(who.Recipients) != 0 || who.Disclosures != 0 {
		t.Errorf("Who(A1) after forgetting = %+v, %v; want nothing", who, err)
	}
	if rep, err := s.SubjectReport(ctx, subj("A1")); err != nil || len(rep.Requests) != 0 {
		t.Errorf("SubjectReport(A1) = %+v, %v; want nothing", rep, err)
	}
	if h2, _ := s.SubjectHashOf(ctx, subj("A1")); h2 != "" {
		t.Errorf("A1 still hashes to %s", h2)
	}
	// The disclosure's facts remain, pseudonymous.
	rec, err = s.Disclosure(ctx, "d1", "cms")
	if err != nil || !rec.Forgotten || rec.Disclosure.Recipient != "acro" || rec.Disclosure.Subjects[0].ID != "" ||
		!slices.Equal(rec.Disclosure.Categories, []string{"user.contact.email"}) || !rec.Disclosure.DisclosedAt.Equal(day(1)) {
		t.Errorf("d1 after = %+v, %v; want the pseudonymous facts, forgotten", rec, err)
	}
	// Every recipient was told, and still shows so.
	st := mustStatus(t, s, "er-1")
	if st.ForgottenAt == nil || len(st.Obligations) != 4 {
		t.Errorf("status after = %d obligations, forgottenAt %v; want 4, set", len(st.Obligations), st.ForgottenAt)
	}
	for _, o := range st.Obligations {
		if o.Open() || (o.Exemption != nil && o.Exemption.Justification != "") {
			t.Errorf("obligation %s after forgetting: state %s, exemption %+v", o.Recipient, o.State, o.Exemption)
		}
	}
	// B2 keeps the shared disclosure (its sealed part is gone for both).
	whoB, err := s.Who(ctx, subj("B2"))
	if err != nil || whoB.Disclosures != 2 {
		t.Errorf("Who(B2) = %+v, %v; want 2 disclosures", whoB, err)
	}
	if rec, _ := s.Disclosure(ctx, "d6", "cms"); rec == nil || !rec.Forgotten {
		t.Errorf("d6 (A1 and B2) = %+v; want forgotten", rec)
	}
	// Forgetting again is refused.
	again := forgetEvent(t, h, ledger.ForgetErasureClosed, "er-1")
	again.ID += "-2"
	if out, _ := applyOne(t, s, again); out != ledger.Rejected {
		t.Errorf("second forgetting = %v, want rejected", out)
	}
	scrubs, err := s.PendingScrubs(ctx)
	if err != nil || len(scrubs) != 1 || len(scrubs[0].StreamSeqs) != 10 || len(scrubs[0].Notices) != 4 {
		t.Errorf("scrubs = %+v, %v; want one with 10 stream seqs (d1, d2, d3, d5, d6, the erasure, 4 answers) and 4 notices", scrubs, err)
	}

	// Physically: the salt and the wrapped key linger until Compact.
	for _, secret := range [][]byte{salt, wrapped} {
		if hits := filesContain(t, cfg.Dir, secret); len(hits) == 0 {
			t.Fatal("a deleted key is not on disk before Compact: the test cannot tell")
		}
	}
	stats, err := s.Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compact took %v, LSM %d -> %d bytes", stats.Took, stats.LSMBefore, stats.LSMAfter)
	if hits := filesContain(t, cfg.Dir, salt); len(hits) != 0 {
		t.Errorf("A1's deleted salt still in %v after Compact", hits)
	}
	if hits := filesContain(t, cfg.Dir, wrapped); len(hits) != 0 {
		t.Errorf("d6's deleted data key still in %v after Compact", hits)
	}
	// A live salt is still found after Compact: the search sees through the
	// tables' compression.
	if hits := filesContain(t, cfg.Dir, live); len(hits) == 0 {
		t.Error("B2's live salt is not found after Compact: the search cannot see into tables")
	}
	// The ledger still works and still verifies.
	applyBatch(t, s, disc{id: "d7", recipient: "web", subjects: []ledger.Subject{subj("C3")}, at: day(7)}.event(t))
	if who, _ := s.Who(ctx, subj("C3")); who.Disclosures != 1 {
		t.Errorf("Who(C3) after Compact = %+v", who)
	}
}

func TestHoldsStopForgetting(t *testing.T) {
	ctx := context.Background()
	s := propFixture(t)
	applyBatch(t, s, erasure(t, "e1", "er-1", subj("B2"), day(10)))
	closeAll(t, s, "er-1")
	h, _ := s.SubjectHashOf(ctx, subj("B2"))

	// A hold by purpose covers B2 (d4 was for essential.service).
	applyBatch(t, s, hold(t, "iicsa", &ledger.HoldScope{Purpose: "essential.service"}),
		hold(t, "case-9", &ledger.HoldScope{Subject: &ledger.Subject{Scheme: "dbs-ref", ID: "B2"}}),
		hold(t, "other", &ledger.HoldScope{Categories: []string{"user.health_and_medical"}}))
	who, err := s.Who(ctx, subj("B2"))
	if err != nil || !slices.Equal(who.Holds, []string{"case-9", "iicsa"}) {
		t.Errorf("Who(B2).Holds = %v, %v; want [case-9 iicsa]", who.Holds, err)
	}
	if st := mustStatus(t, s, "er-1"); !slices.Equal(st.Holds, []string{"case-9", "iicsa"}) {
		t.Errorf("Status.Holds = %v", st.Holds)
	}
	c, err := s.ForgetCandidates(ctx, day(20), ledger.ForgetPolicy{})
	if err != nil || len(c) != 1 || !slices.Equal(c[0].HeldBy, []string{"case-9", "iicsa"}) {
		t.Fatalf("candidates = %+v, %v", c, err)
	}
	if out, err := applyOne(t, s, forgetEvent(t, h, ledger.ForgetErasureClosed, "er-1")); out != ledger.Rejected {
		t.Fatalf("forgetting under hold = %v, %v; want rejected", out, err)
	} else if r, _ := reasonOf(t, err); r != ledger.ReasonConflict {
		t.Errorf("reason = %s", r)
	}
	again := hold(t, "iicsa", nil)
	again.ID += "-again"
	if out, _ := applyOne(t, s, again); out != ledger.Rejected {
		t.Error("placing hold iicsa twice was not rejected")
	}
	applyBatch(t, s, release(t, "iicsa"), release(t, "case-9"))
	rel := release(t, "iicsa")
	rel.ID += "-again"
	if out, _ := applyOne(t, s, rel); out != ledger.Rejected {
		t.Error("releasing twice was not rejected")
	}
	if c, _ := s.ForgetCandidates(ctx, day(20), ledger.ForgetPolicy{}); len(c) != 1 || len(c[0].HeldBy) != 0 {
		t.Fatalf("candidates after release = %+v", c)
	}
	ev := forgetEvent(t, h, ledger.ForgetErasureClosed, "er-1")
	ev.ID += "-after-release"
	if out, err := applyOne(t, s, ev); out != ledger.Recorded {
		t.Fatalf("forgetting after release = %v, %v", out, err)
	}
	holds, _ := s.Holds(ctx)
	for _, hr := range holds {
		if hr.Hold == "case-9" && (hr.Reason != "" || hr.ReleasedAt == nil) {
			t.Errorf("released subject hold after forgetting = %+v; want reason blanked", hr)
		}
		if hr.Hold == "other" && (hr.Reason == "" || !hr.Active()) {
			t.Errorf("unrelated hold = %+v", hr)
		}
	}
}

func TestRetentionCandidates(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t))
	applyBatch(t, s, rcp(t, "web", "nats", "", 0),
		disc{id: "g1", recipient: "web", subjects: []ledger.Subject{subj("OLD")}, at: day(1), purpose: "essential.service"}.event(t),
		disc{id: "g2", recipient: "web", subjects: []ledger.Subject{subj("NEW")}, at: day(1).AddDate(0, 2, 0), purpose: "essential.service"}.event(t),
		disc{id: "g3", recipient: "web", subjects: []ledger.Subject{subj("MIX")}, at: day(1), purpose: "essential.service"}.event(t),
		disc{id: "g4", recipient: "web", subjects: []ledger.Subject{subj("MIX")}, at: day(1), purpose: "third_party_sharing.legal_obligation"}.event(t),
	)
	pol := ledger.ForgetPolicy{Retention: []ledger.RetentionRule{{Purpose: "essential.service", Months: 3}}}
	now := day(1).AddDate(0, 3, 1)
	c, err := s.ForgetCandidates(ctx, now, pol)
	old, _ := s.SubjectHashOf(ctx, subj("OLD"))
	if err != nil || len(c) != 1 || c[0].SubjectHash != old || c[0].Reason != ledger.ForgetRetention || c[0].Purpose != "essential.service" {
		t.Fatalf("retention candidates = %+v, %v; want OLD only", c, err)
	}
}

func TestEncryptionAtRest(t *testing.T) {
	cfg := testConfig(t)
	cfg.EncryptionKey = bytes.Repeat([]byte{7}, 32)
	s := openTest(t, cfg)
	applyBatch(t, s, rcp(t, "web", "nats", "", 0), disc{id: "x1", recipient: "web", subjects: []ledger.Subject{subj("Z9")}, at: day(1)}.event(t))
	s.Close()
	cfg.EncryptionKey = nil
	if s2, err := Open(cfg); err == nil {
		s2.Close()
		t.Fatal("opened an encrypted ledger without its key")
	}
	cfg.EncryptionKey = bytes.Repeat([]byte{7}, 32)
	s = openTest(t, cfg)
	if who, err := s.Who(context.Background(), subj("Z9")); err != nil || who.Disclosures != 1 {
		t.Errorf("Who after reopening = %+v, %v", who, err)
	}
}

// BenchmarkForgetCompact measures the physical-erasure step: Compact after
// forgetting one subject in a ledger of n disclosures (of n/10 people).
func BenchmarkForgetCompact(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				s := openTest(b, testConfig(b))
				applyBatch(b, s, rcp(b, "web", "nats", "", 0))
				for i := 0; i < n; i += 1000 {
					var evs []*ledger.Event
					for j := i; j < i+1000 && j < n; j++ {
						evs = append(evs, disc{id: fmt.Sprint("d", j), recipient: "web", subjects: []ledger.Subject{subj(fmt.Sprint("P", j%(n/10)))}, at: day(1).Add(time.Duration(j) * time.Second)}.event(b))
					}
					applyBatch(b, s, evs...)
				}
				h, _ := s.SubjectHashOf(context.Background(), subj("P7"))
				ev := newEvent(b, ledger.TypeSubjectForgotten, "sharelog/retention", "forget-"+h, &ledger.SubjectForgotten{SubjectHash: h, Reason: ledger.ForgetRetention, At: day(25)})
				ev.Internal = true
				if out := applyBatch(b, s, ev); out[0] != ledger.Recorded {
					b.Fatal(out)
				}
				b.StartTimer()
				if _, err := s.Compact(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				var sst int64
				ents, _ := os.ReadDir(s.db.Opts().Dir)
				for _, e := range ents {
					if fi, err := e.Info(); err == nil && filepath.Ext(e.Name()) == ".sst" {
						sst += fi.Size()
					}
				}
				b.ReportMetric(float64(sst)/(1<<20), "MiB-sst")
				s.Close()
			}
		})
	}
}

// saltOf returns the stored salt of subj, from which its key is derived.
func saltOf(t *testing.T, s *Store, subj ledger.Subject) []byte {
	t.Helper()
	var salt []byte
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		salt, err = txnValue(txn, saltKey(newSubjectHasher(s.secret).hash(subj)))
		return err
	})
	if err != nil || len(salt) != saltLen {
		t.Fatalf("salt of %v = %x, %v", subj, salt, err)
	}
	return salt
}
