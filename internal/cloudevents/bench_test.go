package cloudevents

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// BenchmarkDecodeStructured decodes a realistic disclosure in structured
// mode, the ingest hot path.
func BenchmarkDecodeStructured(b *testing.B) {
	d := newDecoder(b)
	body := fixtureBody(b, "valid/disclosure-dpa-part3.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.DecodeStructured(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeStructuredParallel shows throughput on every core.
func BenchmarkDecodeStructuredParallel(b *testing.B) {
	d := newDecoder(b)
	body := fixtureBody(b, "valid/disclosure-dpa-part3.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := d.DecodeStructured(body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDecodeBinary decodes the same disclosure as a NATS binary-mode
// message.
func BenchmarkDecodeBinary(b *testing.B) {
	d := newDecoder(b)
	attrs, data, ok := binaryForm(fixtureBody(b, "valid/disclosure-dpa-part3.json"))
	if !ok {
		b.Fatal("no binary form")
	}
	h := natsBinary(attrs)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.DecodeMessage(h, data); err != nil {
			b.Fatal(err)
		}
	}
}

// genDisclosures makes the same events, byte for byte, as
// bench.Generator{Seed: seed}.Disclosures(first, n, total) with the
// generator's defaults: members in the order the generator writes them. It
// is a copy: internal/bench imports this package (and the store), so a test
// here cannot import it.
func genDisclosures(seed uint64, first, n, total int) [][]byte {
	return genDisclosuresAs(seed, first, n, total, false)
}

// genDisclosuresSorted makes the same events with the members of every
// object in sorted order, as bench.Generator wrote them (by json.Marshal of
// maps) until commit a756ee6.
func genDisclosuresSorted(seed uint64, first, n, total int) [][]byte {
	return genDisclosuresAs(seed, first, n, total, true)
}

func genDisclosuresAs(seed uint64, first, n, total int, sorted bool) [][]byte {
	const (
		subjects    = 100_000
		recipients  = 200
		markedCount = 100
		spacing     = 63 * time.Second
	)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	marked := ledger.Subject{Scheme: "dbs-ref", ID: "BENCH-MARKED-0100"}
	categorySets := [][]string{
		{"user.criminal_history"},
		{"user.name", "user.contact.address"},
		{"user.criminal_history", "user.name", "user.demographic.date_of_birth"},
		{"user.contact.email", "user.name"},
	}
	recipientID := func(i int) string { return fmt.Sprintf("force-%03d", i) }
	type record struct {
		System  string `json:"system"`
		Ref     string `json:"ref"`
		Version string `json:"version"`
	}
	type data struct {
		Subjects      []ledger.Subject `json:"subjects"`
		Recipient     string           `json:"recipient"`
		Categories    []string         `json:"categories"`
		Purpose       string           `json:"purpose"`
		LawfulBasis   string           `json:"lawfulBasis"`
		Regime        string           `json:"regime"`
		DisclosedAt   string           `json:"disclosedAt"`
		DisclosedBy   string           `json:"disclosedBy"`
		Justification string           `json:"justification"`
		Records       []record         `json:"records"`
	}
	type envelope struct {
		SpecVersion     string `json:"specversion"`
		ID              string `json:"id"`
		Source          string `json:"source"`
		Type            string `json:"type"`
		Time            string `json:"time"`
		DataContentType string `json:"datacontenttype"`
		Data            data   `json:"data"`
	}
	r := rand.New(rand.NewPCG(seed, uint64(first)))
	zipf := rand.NewZipf(r, 1.1, 1, uint64(subjects-1))
	every := max(total/markedCount, 1)
	out := make([][]byte, n)
	for k := range out {
		i := first + k
		at := start.Add(time.Duration(i) * spacing).Format(time.RFC3339)
		subject := ledger.Subject{Scheme: "dbs-ref", ID: fmt.Sprintf("%012d", zipf.Uint64())}
		if i%every == 0 && i/every < markedCount {
			subject = marked
		}
		ev := envelope{
			SpecVersion: "1.0", ID: fmt.Sprintf("disc-%d-%09d", seed, i), Source: "casework/disclosure-service",
			Type: ledger.TypeDisclosure, Time: at, DataContentType: "application/json",
			Data: data{
				Subjects:      []ledger.Subject{subject},
				Recipient:     recipientID(r.IntN(recipients)),
				Categories:    categorySets[r.IntN(len(categorySets))],
				Purpose:       "safeguarding.disclosure_check",
				LawfulBasis:   "dpa-s35-2-b",
				Regime:        "dpa-part3",
				DisclosedAt:   at,
				DisclosedBy:   "disclosure-service/worker-07",
				Justification: "Enhanced check: PNC search returned a possible match; referred for local police information",
				Records:       []record{{System: "pnc", Ref: fmt.Sprintf("PNC/%08d", r.IntN(1e8)), Version: "3"}},
			},
		}
		if !sorted {
			out[k], _ = json.Marshal(ev)
			continue
		}
		// Maps, whose members json.Marshal sorts, as the old generator had.
		d := ev.Data
		out[k], _ = json.Marshal(map[string]any{
			"specversion": ev.SpecVersion, "id": ev.ID, "source": ev.Source,
			"type": ev.Type, "time": ev.Time, "datacontenttype": ev.DataContentType,
			"data": map[string]any{
				"subjects":      d.Subjects,
				"recipient":     d.Recipient,
				"categories":    d.Categories,
				"purpose":       d.Purpose,
				"lawfulBasis":   d.LawfulBasis,
				"regime":        d.Regime,
				"disclosedAt":   d.DisclosedAt,
				"disclosedBy":   d.DisclosedBy,
				"justification": d.Justification,
				"records":       []map[string]string{{"system": d.Records[0].System, "ref": d.Records[0].Ref, "version": d.Records[0].Version}},
			},
		})
	}
	return out
}

// benchEvents is the number of distinct generated events the
// BenchmarkDecodeMessage variants cycle through.
const benchEvents = 4096

// BenchmarkDecodeMessage decodes generated disclosures (the events of
// bench.Generator{Seed: 1}.Disclosures, about 680 bytes each) as NATS
// messages, the ingest path: structured mode with a Nats-Msg-Id header, and
// binary mode. It reports ns/event; allocs/op and B/op are per event.
func BenchmarkDecodeMessage(b *testing.B) {
	d := newDecoder(b)
	events := genDisclosures(1, 0, benchEvents, 200_000)
	var size int
	for _, e := range events {
		size += len(e)
	}
	b.Run("structured", func(b *testing.B) {
		headers := make([]map[string][]string, len(events))
		for i := range events {
			headers[i] = map[string][]string{"Nats-Msg-Id": {fmt.Sprintf("m-%d", i)}}
		}
		b.SetBytes(int64(size / len(events)))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := d.DecodeMessage(headers[i], events[i]); err != nil {
				b.Fatal(err)
			}
			i = (i + 1) % len(events)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
	})
	b.Run("binary", func(b *testing.B) {
		headers := make([]map[string][]string, len(events))
		bodies := make([][]byte, len(events))
		for i, e := range events {
			attrs, data, ok := binaryForm(e)
			if !ok {
				b.Fatal("no binary form")
			}
			headers[i], bodies[i] = natsBinary(attrs), data
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := d.DecodeMessage(headers[i], bodies[i]); err != nil {
				b.Fatal(err)
			}
			i = (i + 1) % len(events)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
	})
}
