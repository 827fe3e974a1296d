package store

import (
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// testConfig returns a config for a fresh ledger in t's temporary directory.
func testConfig(t testing.TB) Config {
	t.Helper()
	root := t.TempDir()
	return Config{
		Dir:     filepath.Join(root, "ledger"),
		KeyFile: filepath.Join(root, "site.key"),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// openTest opens the ledger of cfg and closes it when t ends.
func openTest(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newEvent builds a validated event as the ingest loop would hand it over:
// data decoded, Raw in the CloudEvents JSON format.
func newEvent(tb testing.TB, typ, source, id string, data any) *ledger.Event {
	tb.Helper()
	ts := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	raw, err := json.Marshal(map[string]any{
		"specversion":     "1.0",
		"id":              id,
		"source":          source,
		"type":            typ,
		"time":            ts,
		"datacontenttype": "application/json",
		"data":            data,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return &ledger.Event{Source: source, ID: id, Type: typ, Time: ts, Data: data, Raw: raw}
}

func recipientEvent(tb testing.TB, id, name string) *ledger.Event {
	return newEvent(tb, ledger.TypeRecipient, "admin", "rcp-"+id+"-"+name, &ledger.Recipient{
		ID: id, Name: name, Role: ledger.RoleController, Country: "GB",
		Channel: ledger.Channel{Type: "manual"},
	})
}

// disc describes a disclosure for tests.
type disc struct {
	source, id, recipient string
	subjects              []ledger.Subject
	at                    time.Time
	categories            []string
	purpose, basis        string
	regime                string
	inquiry               bool
}

func (d disc) event(tb testing.TB) *ledger.Event {
	data := &ledger.Disclosure{
		Subjects:    d.subjects,
		Recipient:   d.recipient,
		Categories:  d.categories,
		Purpose:     d.purpose,
		LawfulBasis: d.basis,
		Regime:      d.regime,
		DisclosedAt: d.at,
		Inquiry:     d.inquiry,
	}
	if data.Categories == nil {
		data.Categories = []string{"user.contact.email"}
	}
	if data.Purpose == "" {
		data.Purpose = "essential.service"
	}
	if data.LawfulBasis == "" {
		data.LawfulBasis = "art6-1-b"
	}
	if data.Regime == "" {
		data.Regime = ledger.RegimeUKGDPR
	}
	source := d.source
	if source == "" {
		source = "cms"
	}
	return newEvent(tb, ledger.TypeDisclosure, source, d.id, data)
}

func subj(id string) ledger.Subject { return ledger.Subject{Scheme: "dbs-ref", ID: id} }

// day returns midnight UTC of 2025-01-<n>.
func day(n int) time.Time { return time.Date(2025, 1, n, 0, 0, 0, 0, time.UTC) }

// applyBatch appends events in one batch at the stream seqs following
// Applied() and commits, returning the outcomes.
func applyBatch(t testing.TB, s *Store, events ...*ledger.Event) []ledger.Outcome {
	t.Helper()
	b := s.Begin()
	defer b.Discard()
	seq := s.Applied()
	var out []ledger.Outcome
	for _, ev := range events {
		seq++
		o, err := b.Append(seq, ev)
		if o != ledger.Rejected && err != nil {
			t.Fatalf("Append(%d, %s): %v", seq, ev.ID, err)
		}
		out = append(out, o)
	}
	if err := b.Commit(seq); err != nil {
		t.Fatalf("Commit(%d): %v", seq, err)
	}
	return out
}

func ptrTime(t time.Time) *time.Time { return &t }
