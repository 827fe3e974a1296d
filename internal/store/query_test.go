package store

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// fixture is a small ledger: three recipients and disclosures of subjects
// A1, B2 and C3 over several days, one from a second source with a reused id.
var fixture = []disc{
	{id: "d1", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(3),
		categories: []string{"user.criminal_history", "user.contact.email"}, purpose: "law_enforcement.vetting", basis: "art6-1-c", regime: ledger.RegimeUKGDPR},
	{id: "d2", recipient: "acro", subjects: []ledger.Subject{subj("A1"), subj("B2")}, at: day(1),
		categories: []string{"user.contact.email"}, purpose: "law_enforcement.vetting", basis: "art6-1-e", regime: ledger.RegimeUKGDPR},
	{id: "d3", recipient: "met", subjects: []ledger.Subject{subj("A1")}, at: day(2), inquiry: true,
		categories: []string{"user.name"}, purpose: "law_enforcement.investigation", basis: "dpa-s35-2-b", regime: ledger.RegimeDPAPart3},
	{id: "d4", recipient: "cloud", subjects: []ledger.Subject{subj("B2")}, at: day(2)},
	{id: "d5", recipient: "acro", subjects: []ledger.Subject{subj("A1")}, at: day(5),
		categories: []string{"user.health_and_medical"}, purpose: "law_enforcement.vetting", basis: "art9-2-g", regime: ledger.RegimeUKGDPR},
	{id: "d6", recipient: "met", subjects: []ledger.Subject{subj("C3")}, at: day(3)},
	{source: "web", id: "d1", recipient: "cloud", subjects: []ledger.Subject{subj("C3")}, at: day(4)},
	{id: "d7", recipient: "met", subjects: []ledger.Subject{{Scheme: "email", ID: "A1"}}, at: day(1)}, // another scheme: another person
}

func fixtureStore(t *testing.T) *Store {
	t.Helper()
	s := openTest(t, testConfig(t))
	evs := []*ledger.Event{recipientEvent(t, "acro", "ACRO"), recipientEvent(t, "met", "Met Police"), recipientEvent(t, "cloud", "Cloud Ltd")}
	applyBatch(t, s, evs...) // entries 1-3
	evs = evs[:0]
	for _, d := range fixture {
		evs = append(evs, d.event(t))
	}
	applyBatch(t, s, evs[:4]...) // entries 4-7
	applyBatch(t, s, evs[4:]...) // entries 8-11
	return s
}

// fixtureSeq is the entry seq of fixture[i].
func fixtureSeq(i int) uint64 { return uint64(4 + i) }

func TestWho(t *testing.T) {
	s := fixtureStore(t)
	got, err := s.Who(context.Background(), subj("A1"))
	if err != nil {
		t.Fatal(err)
	}
	want := &ledger.Who{
		Disclosures: 4,
		Recipients: []ledger.WhoRecipient{
			{
				Recipient: "acro", Name: "ACRO", Role: ledger.RoleController, Country: "GB",
				Categories:       []string{"user.contact.email", "user.criminal_history", "user.health_and_medical"},
				Purposes:         []string{"law_enforcement.vetting"},
				LawfulBases:      []string{"art6-1-c", "art6-1-e", "art9-2-g"},
				Regimes:          []string{ledger.RegimeUKGDPR},
				FirstDisclosedAt: day(1), LastDisclosedAt: day(5), Count: 3,
			},
			{
				Recipient: "met", Name: "Met Police", Role: ledger.RoleController, Country: "GB",
				Categories:       []string{"user.name"},
				Purposes:         []string{"law_enforcement.investigation"},
				LawfulBases:      []string{"dpa-s35-2-b"},
				Regimes:          []string{ledger.RegimeDPAPart3},
				FirstDisclosedAt: day(2), LastDisclosedAt: day(2), Count: 1, Inquiry: true,
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Who(A1) =\n%+v\nwant\n%+v", got, want)
	}

	none, err := s.Who(context.Background(), subj("nobody"))
	if err != nil {
		t.Fatal(err)
	}
	if none.Disclosures != 0 || none.Recipients == nil || len(none.Recipients) != 0 {
		t.Errorf("Who(nobody) = %+v, want empty with non-nil recipients", none)
	}
	if _, err := s.Who(context.Background(), ledger.Subject{Scheme: "dbs-ref"}); ledger.ErrorCode(err) != ledger.EINVALID {
		t.Errorf("Who(no id) error = %v, want invalid", err)
	}
}

func TestWhoCountsSubjectOncePerDisclosure(t *testing.T) {
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"),
		disc{id: "d1", recipient: "acro", subjects: []ledger.Subject{subj("A1"), subj("A1")}, at: day(1)}.event(t))
	got, err := s.Who(context.Background(), subj("A1"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Disclosures != 1 || len(got.Recipients) != 1 || got.Recipients[0].Count != 1 {
		t.Errorf("Who = %+v, want one disclosure to one recipient", got)
	}
}

func TestDisclosures(t *testing.T) {
	s := fixtureStore(t)
	a1, c3 := subj("A1"), subj("C3")
	tests := []struct {
		name   string
		filter ledger.DisclosureFilter
		want   []int // indexes into fixture, in order
	}{
		{name: "all", want: []int{1, 7, 2, 3, 0, 5, 6, 4}},
		{name: "subject", filter: ledger.DisclosureFilter{Subject: &a1}, want: []int{1, 2, 0, 4}},
		{name: "recipient", filter: ledger.DisclosureFilter{Recipient: "met"}, want: []int{7, 2, 5}},
		{name: "subject and recipient", filter: ledger.DisclosureFilter{Subject: &a1, Recipient: "acro"}, want: []int{1, 0, 4}},
		{name: "subject, no match", filter: ledger.DisclosureFilter{Subject: &c3, Recipient: "acro"}, want: nil},
		{name: "since inclusive", filter: ledger.DisclosureFilter{Since: day(3)}, want: []int{0, 5, 6, 4}},
		{name: "until exclusive", filter: ledger.DisclosureFilter{Until: day(3)}, want: []int{1, 7, 2, 3}},
		{name: "window", filter: ledger.DisclosureFilter{Since: day(2), Until: day(4)}, want: []int{2, 3, 0, 5}},
		{name: "window and recipient", filter: ledger.DisclosureFilter{Recipient: "acro", Since: day(2), Until: day(5)}, want: []int{0}},
		{name: "window and subject", filter: ledger.DisclosureFilter{Subject: &a1, Since: day(2), Until: day(5).Add(time.Nanosecond)}, want: []int{2, 0, 4}},
		{name: "unknown recipient", filter: ledger.DisclosureFilter{Recipient: "nope"}, want: nil},
		{name: "empty window", filter: ledger.DisclosureFilter{Since: day(4), Until: day(2)}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := make([]string, 0)
			for _, i := range tt.want {
				want = append(want, fmt.Sprintf("%d %s/%s", fixtureSeq(i), sourceOr(fixture[i].source), fixture[i].id))
			}
			// Whole listing in one page, then page by page at every size.
			for _, limit := range []int{0, 1, 2, 3} {
				f := tt.filter
				f.Limit = limit
				var got []string
				pages := 0
				for {
					page, err := s.Disclosures(context.Background(), f)
					if err != nil {
						t.Fatal(err)
					}
					pages++
					for _, r := range page.Disclosures {
						got = append(got, fmt.Sprintf("%d %s/%s", r.Seq, r.Source, r.ID))
					}
					if limit > 0 && len(page.Disclosures) > limit {
						t.Fatalf("limit %d: page of %d", limit, len(page.Disclosures))
					}
					if page.Next == "" {
						break
					}
					if pages > 20 {
						t.Fatal("pagination does not end")
					}
					f.After = page.Next
				}
				if got == nil {
					got = []string{}
				}
				if !slices.Equal(got, want) {
					t.Errorf("limit %d: got %v, want %v", limit, got, want)
				}
				if limit > 0 && len(want) > 0 {
					if wantPages := (len(want) + limit - 1) / limit; pages != wantPages {
						t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
					}
				}
			}
		})
	}
}

func sourceOr(s string) string {
	if s == "" {
		return "cms"
	}
	return s
}

func TestDisclosuresRecord(t *testing.T) {
	s := fixtureStore(t)
	a1 := subj("A1")
	page, err := s.Disclosures(context.Background(), ledger.DisclosureFilter{Subject: &a1, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Disclosures) != 1 || page.Next == "" {
		t.Fatalf("page = %+v, want one record and a cursor", page)
	}
	r := page.Disclosures[0]
	d := fixture[1]
	if r.Seq != fixtureSeq(1) || r.Source != "cms" || r.ID != d.id || r.RecordedAt.IsZero() {
		t.Errorf("record = seq %d %s/%s at %v", r.Seq, r.Source, r.ID, r.RecordedAt)
	}
	got := r.Disclosure
	if got.Recipient != d.recipient || !slices.Equal(got.Subjects, d.subjects) || !slices.Equal(got.Categories, d.categories) ||
		got.Purpose != d.purpose || got.LawfulBasis != d.basis || got.Regime != d.regime || !got.DisclosedAt.Equal(d.at) {
		t.Errorf("disclosure = %+v, want %+v", got, d)
	}
}

func TestDisclosuresInvalid(t *testing.T) {
	s := fixtureStore(t)
	tests := []struct {
		name   string
		filter ledger.DisclosureFilter
	}{
		{name: "bad cursor", filter: ledger.DisclosureFilter{After: "!!"}},
		{name: "short cursor", filter: ledger.DisclosureFilter{After: "AAAA"}},
		{name: "negative limit", filter: ledger.DisclosureFilter{Limit: -1}},
		{name: "subject without id", filter: ledger.DisclosureFilter{Subject: &ledger.Subject{Scheme: "dbs-ref"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Disclosures(context.Background(), tt.filter)
			if got := ledger.ErrorCode(err); got != ledger.EINVALID {
				t.Errorf("error = %v (code %q), want invalid", err, got)
			}
		})
	}
}

func TestDisclosureByID(t *testing.T) {
	s := fixtureStore(t)
	// A non-disclosure event sharing a disclosure's id does not count.
	applyBatch(t, s, newEvent(t, ledger.TypeHold, "dpo", "d2", &ledger.Hold{Hold: "h1", Reason: "inquiry"}))
	tests := []struct {
		name, id, source string
		wantSeq          uint64
		wantCode         string
	}{
		{name: "unique by id", id: "d3", wantSeq: fixtureSeq(2)},
		{name: "unique despite other event type", id: "d2", wantSeq: fixtureSeq(1)},
		{name: "by id and source", id: "d1", source: "web", wantSeq: fixtureSeq(6)},
		{name: "by id and other source", id: "d1", source: "cms", wantSeq: fixtureSeq(0)},
		{name: "ambiguous", id: "d1", wantCode: ledger.ECONFLICT},
		{name: "missing", id: "zz", wantCode: ledger.ENOTFOUND},
		{name: "missing source", id: "d3", source: "web", wantCode: ledger.ENOTFOUND},
		{name: "not a disclosure", id: "d2", source: "dpo", wantCode: ledger.ENOTFOUND},
		{name: "recipient event", id: "rcp-acro-ACRO", wantCode: ledger.ENOTFOUND},
		{name: "empty id", id: "", wantCode: ledger.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Disclosure(context.Background(), tt.id, tt.source)
			if tt.wantCode != "" {
				if got := ledger.ErrorCode(err); got != tt.wantCode {
					t.Fatalf("error = %v (code %q), want %q", err, got, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Seq != tt.wantSeq || r.ID != tt.id {
				t.Errorf("got seq %d id %s, want seq %d id %s", r.Seq, r.ID, tt.wantSeq, tt.id)
			}
		})
	}
	_, err := s.Disclosure(context.Background(), "d1", "")
	if want := `conflict: disclosure id "d1" is recorded from 2 sources; name the source`; err == nil || err.Error() != want {
		t.Errorf("ambiguous error = %v, want %s", err, want)
	}
}

// TestNoPlaintextIdentifiers scans every key, and every value except the
// entries (which hold Raw, to be encrypted later), for subject identifiers.
func TestNoPlaintextIdentifiers(t *testing.T) {
	cfg := testConfig(t)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"QX7-SECRET-991", "jane.doe@example.org"}
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"),
		disc{id: "d1", recipient: "acro", subjects: []ledger.Subject{{Scheme: "dbs-ref", ID: ids[0]}, {Scheme: "email", ID: ids[1]}}, at: day(1)}.event(t),
		newEvent(t, ledger.TypeErasure, "dpo", "e1", &ledger.Erasure{RequestHeader: ledger.RequestHeader{Request: "r", Subject: ledger.Subject{Scheme: "dbs-ref", ID: ids[0]}, DecidedAt: day(2)}}))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := badger.Open(badgerOptions(cfg.Dir, s.log))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var keys, entriesWithID int
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if k := item.Key()[0]; k == prefixTreeHash || k == prefixTile || k == prefixCheckpoint {
				continue // hashes and signed checkpoints of the Merkle tree (tree.go)
			}
			keys++
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if bytes.Contains(item.Key(), []byte(id)) {
					t.Errorf("key %q contains a subject identifier", item.Key())
				}
				if item.Key()[0] == prefixEntry || item.Key()[0] == prefixNotice {
					if bytes.Contains(v, []byte(id)) {
						entriesWithID++
					}
					continue
				}
				if bytes.Contains(v, []byte(id)) {
					t.Errorf("value of key %q contains a subject identifier", item.Key())
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// 1 meta, 3 dedupe, 3 entries, 2 subject, 1 by-recipient, 1 registry; for the erasure: 1 request, 1 subject-request, 1 erasure
	// marker, and for its one obligation: 1 obligation, 1 sealed notice, 1
	// by-due, 1 recipient-due, 1 open, 1 subject-obligation; keystore: 2
	// salts, 2 locators, 1 data key (the disclosure names two subjects; the
	// erasure is sealed under its subject's key and the recipient names
	// nobody), 1 sealed-for (the erasure's subject: the disclosure's are in
	// its subject index), the record of the first disclosure without, the
	// disclosure's profile, and the ledger's format.
	if keys != 29 {
		t.Errorf("scanned %d keys, want 29", keys)
	}
	// Entries and notices hold identifiers only as ciphertext.
	if entriesWithID != 0 {
		t.Errorf("identifiers found in %d entry and notice values, want 0", entriesWithID)
	}
}

func TestWaitApplied(t *testing.T) {
	s := openTest(t, testConfig(t))
	ctx := context.Background()

	if err := s.WaitApplied(ctx, 0); err != nil {
		t.Fatalf("WaitApplied(0) = %v", err)
	}

	done := make(chan error, 1)
	go func() { done <- s.WaitApplied(ctx, 3) }()
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"), recipientEvent(t, "met", "Met")) // applied 2
	select {
	case err := <-done:
		t.Fatalf("WaitApplied(3) returned %v at applied %d", err, s.Applied())
	default:
	}
	b := s.Begin()
	if err := b.Commit(3); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("WaitApplied(3) = %v, want nil", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	go func() { done <- s.WaitApplied(cctx, 100) }()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("WaitApplied with cancelled ctx = %v, want context.Canceled", err)
	}

	go func() { done <- s.WaitApplied(ctx, 100) }()
	s.Close()
	if err := <-done; ledger.ErrorCode(err) != ledger.EUNAVAILABLE {
		t.Errorf("WaitApplied after Close = %v, want unavailable", err)
	}
}

func TestQueriesAfterClose(t *testing.T) {
	s := openTest(t, testConfig(t))
	s.Close()
	if _, err := s.Who(context.Background(), subj("A1")); ledger.ErrorCode(err) != ledger.EUNAVAILABLE {
		t.Errorf("Who after Close error = %v, want unavailable", err)
	}
}

// TestQueriesDuringWrites runs queries while the writer commits batches.
// Every answer must reflect whole batches: each batch adds one disclosure
// for subject A1 and moves Applied by one.
func TestQueriesDuringWrites(t *testing.T) {
	s := openTest(t, testConfig(t))
	applyBatch(t, s, recipientEvent(t, "acro", "ACRO"))
	const batches = 50
	ctx := context.Background()
	a1 := subj("A1")
	errs := make(chan error, 4)
	stop := make(chan struct{})
	for range 4 {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				who, err := s.Who(ctx, a1)
				if err != nil {
					errs <- err
					return
				}
				page, err := s.Disclosures(ctx, ledger.DisclosureFilter{Subject: &a1})
				if err != nil {
					errs <- err
					return
				}
				// Later commits may land between the two reads, never earlier ones.
				if len(page.Disclosures) < who.Disclosures {
					errs <- fmt.Errorf("listing has %d disclosures, Who saw %d", len(page.Disclosures), who.Disclosures)
					return
				}
			}
		}()
	}
	for i := range batches {
		applyBatch(t, s, disc{id: fmt.Sprint("d", i), recipient: "acro", subjects: []ledger.Subject{a1}, at: day(1 + i%28)}.event(t))
	}
	close(stop)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	who, err := s.Who(ctx, a1)
	if err != nil {
		t.Fatal(err)
	}
	if who.Disclosures != batches || who.Recipients[0].Count != batches {
		t.Errorf("Who = %d disclosures, want %d", who.Disclosures, batches)
	}
}
