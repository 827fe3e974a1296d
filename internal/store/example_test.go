package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/store"
)

// event builds a validated event the way the ingest loop hands it over.
func event(typ, source, id string, data any) *ledger.Event {
	raw, err := json.Marshal(map[string]any{
		"specversion": "1.0", "id": id, "source": source, "type": typ,
		"time": "2025-01-02T09:00:00Z", "datacontenttype": "application/json", "data": data,
	})
	if err != nil {
		log.Fatal(err)
	}
	return &ledger.Event{Source: source, ID: id, Type: typ, Data: data, Raw: raw}
}

// The ingest loop applies stream messages in batches; queries read the
// committed ledger.
func Example() {
	dir, err := os.MkdirTemp("", "sharelog-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := store.Open(store.Config{Dir: filepath.Join(dir, "ledger"), KeyFile: filepath.Join(dir, "site.key")})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	person := ledger.Subject{Scheme: "dbs-ref", ID: "A1"}
	events := []*ledger.Event{
		event(ledger.TypeRecipient, "admin", "r1", &ledger.Recipient{
			ID: "acro", Name: "ACRO Criminal Records Office", Role: ledger.RoleCompetentAuthority, Country: "GB",
			Channel: ledger.Channel{Type: "nats"},
		}),
		event(ledger.TypeDisclosure, "dbs", "d1", &ledger.Disclosure{
			Subjects: []ledger.Subject{person}, Recipient: "acro",
			Categories: []string{"user.criminal_history"}, Purpose: "law_enforcement.vetting",
			LawfulBasis: "art6-1-c", Regime: ledger.RegimeUKGDPR,
			DisclosedAt: time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC),
		}),
	}
	events = append(events, events[1]) // redelivered

	b := s.Begin()
	defer b.Discard()
	for i, ev := range events {
		outcome, err := b.Append(uint64(i+1), ev)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.ID, outcome)
	}
	if err := b.Commit(uint64(len(events))); err != nil {
		log.Fatal(err)
	}

	who, err := s.Who(context.Background(), person)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range who.Recipients {
		fmt.Println(r.Recipient, r.Name, r.Categories, r.Count)
	}
	// Output:
	// r1 recorded
	// d1 recorded
	// d1 duplicate
	// acro ACRO Criminal Records Office [user.criminal_history] 1
}
