package store

import (
	"context"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/ledger/ledgertest"
)

// TestSummaryProfiles: disclosures sharing a purpose, lawful basis, regime
// and categories write that profile once, and their summaries name it;
// Who answers from them as from summaries holding it. A profile whose hash
// is taken by another stays inline in its summary.
func TestSummaryProfiles(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	s := openTest(t, cfg)
	lt := ledgertest.Subject
	a, b := lt("A1"), lt("B2")
	evs := []*ledger.Event{}
	for _, st := range ledgertest.Base() { // three disclosures of A1, three profiles
		evs = append(evs, st.Event)
	}
	evs = append(evs,
		ledgertest.Disclosure("d-b1", "acro", b, ledger.RegimeDPAPart3, "user.contact.email"),     // d1's profile
		ledgertest.Disclosure("d-b2", "police", b, ledger.RegimeUKGDPR, "user.contact"),           // d2's
		ledgertest.Disclosure("d-a4", "cloud", a, ledger.RegimeUKGDPR, "user.health_and_medical"), // d3's
	)
	// A colliding profile: its hash is taken by another value.
	clash := ledgertest.Disclosure("d-clash", "police", b, ledger.RegimeUKGDPR, "user.name")
	sum := ledger.SummaryOf("d-clash", clash.Data.(*ledger.Disclosure), false)
	clashHash := profileHash(appendProfile(nil, &sum))
	applyBatch(t, s, evs...)
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(profileKey(clashHash), []byte("another")) }); err != nil {
		t.Fatal(err)
	}
	applyBatch(t, s, clash)

	var profiles, named, inline int
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			switch k[0] {
			case prefixProfile:
				profiles++
			case prefixSubject:
				if v[0]&summaryProfile != 0 {
					named++
				} else {
					inline++
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if profiles != 4 || named != 6 || inline != 1 {
		t.Errorf("%d profiles (3 written, 1 planted), %d summaries naming one, %d inline; want 4, 6, 1", profiles, named, inline)
	}
	who, err := s.Who(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if who.Disclosures != 3 || len(who.Recipients) != 2 {
		t.Fatalf("Who(B2) = %+v", who)
	}
	police := who.Recipients[1]
	if police.Recipient != "police" || !slices.Equal(police.Categories, []string{"user.contact", "user.name"}) || police.Count != 2 ||
		!slices.Equal(police.Regimes, []string{ledger.RegimeUKGDPR}) || len(police.Purposes) != 1 || len(police.LawfulBases) != 1 {
		t.Errorf("Who(B2) for police = %+v", police)
	}
	acro := who.Recipients[0]
	if acro.Recipient != "acro" || !slices.Equal(acro.Categories, []string{"user.contact.email"}) || !slices.Equal(acro.Regimes, []string{ledger.RegimeDPAPart3}) {
		t.Errorf("Who(B2) for acro = %+v", acro)
	}
	// A store opened again reads them without its writer's memory.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, cfg)
	again, err := s.Who(ctx, b)
	if err != nil || !slices.EqualFunc(again.Recipients, who.Recipients, func(x, y ledger.WhoRecipient) bool {
		return slices.Equal(x.Categories, y.Categories) && slices.Equal(x.Purposes, y.Purposes) && x.Count == y.Count
	}) {
		t.Errorf("Who(B2) after reopening = %+v, %v; want %+v", again, err, who)
	}
}
