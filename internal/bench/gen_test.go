package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/vocab"
)

// mapDisclosures is the generator as it was, building each event with
// encoding/json from nested maps: the reference the append-based generator
// must match, value for value, and the baseline of BenchmarkGenerator.
func (g *Generator) mapDisclosures(first, n, total int) [][]byte {
	g.defaults()
	r := rand.New(rand.NewPCG(g.Seed, uint64(first)))
	zipf := rand.NewZipf(r, 1.1, 1, uint64(g.Subjects-1))
	every := max(total/g.MarkedCount, 1)
	out := make([][]byte, n)
	for k := range out {
		i := first + k
		at := g.Start.Add(time.Duration(i) * g.Spacing).Format(time.RFC3339)
		subject := ledger.Subject{Scheme: "dbs-ref", ID: fmt.Sprintf("%012d", zipf.Uint64())}
		if i%every == 0 && i/every < g.MarkedCount {
			subject = Marked
		}
		out[k], _ = json.Marshal(map[string]any{
			"specversion": "1.0", "id": fmt.Sprintf("disc-%d-%09d", g.Seed, i), "source": "casework/disclosure-service",
			"type": ledger.TypeDisclosure, "time": at, "datacontenttype": "application/json",
			"data": map[string]any{
				"subjects":      []ledger.Subject{subject},
				"recipient":     fmt.Sprintf("force-%03d", r.IntN(g.Recipients)),
				"categories":    categorySets[r.IntN(len(categorySets))],
				"purpose":       "safeguarding.disclosure_check",
				"lawfulBasis":   "dpa-s35-2-b",
				"regime":        "dpa-part3",
				"disclosedAt":   at,
				"disclosedBy":   "disclosure-service/worker-07",
				"justification": "Enhanced check: PNC search returned a possible match; referred for local police information",
				"records":       []map[string]string{{"system": "pnc", "ref": fmt.Sprintf("PNC/%08d", r.IntN(1e8)), "version": "3"}},
			},
		})
	}
	return out
}

func unmarshalAny(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

// TestDisclosuresMatchMapBuilt checks the append-built events carry exactly
// the values the encoding/json-built ones did (key order aside), so the
// subject distribution, marked subject and sizes are unchanged.
func TestDisclosuresMatchMapBuilt(t *testing.T) {
	for _, tc := range []struct {
		g                  Generator
		first, n, total    int
		wantMarkedAtLeast1 bool
	}{
		{Generator{Seed: 1}, 0, 2000, 2000, true},
		{Generator{Seed: 7, Subjects: 1000, Recipients: 1500, MarkedCount: 10}, 500, 1500, 3000, true},
		{Generator{Seed: 18446744073709551615}, 999_999_000, 1000, 1_000_000_000, false},
	} {
		got := tc.g.Disclosures(tc.first, tc.n, tc.total)
		want := tc.g.mapDisclosures(tc.first, tc.n, tc.total)
		marked := 0
		for k := range want {
			if g, w := unmarshalAny(t, got[k]), unmarshalAny(t, want[k]); !reflect.DeepEqual(g, w) {
				t.Fatalf("seed %d event %d:\n got %s\nwant %s", tc.g.Seed, tc.first+k, got[k], want[k])
			}
			if bytes.Contains(got[k], []byte(Marked.ID)) {
				marked++
			}
		}
		if tc.wantMarkedAtLeast1 && marked == 0 {
			t.Errorf("seed %d: no marked subject in %d events", tc.g.Seed, tc.n)
		}
	}
}

func TestDisclosuresDeterministic(t *testing.T) {
	g := Generator{Seed: 5}
	a := g.Disclosures(10_000, 500, 1_000_000)
	b := g.Disclosures(10_000, 500, 1_000_000)
	// A chunk is the same events whatever else was generated before.
	g.Disclosures(0, 100, 1_000_000)
	c := (&Generator{Seed: 5}).Disclosures(10_000, 500, 1_000_000)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) || !bytes.Equal(a[i], c[i]) {
			t.Fatalf("event %d differs between calls:\n%s\n%s\n%s", i, a[i], b[i], c[i])
		}
	}
	other := (&Generator{Seed: 6}).Disclosures(10_000, 500, 1_000_000)
	if bytes.Equal(a[0], other[0]) {
		t.Errorf("seeds 5 and 6 gave the same event %s", a[0])
	}
	// Appending to one event must not overwrite the next (shared buffer).
	next := bytes.Clone(a[1])
	_ = append(a[0], "xxxxxxxx"...)
	if !bytes.Equal(a[1], next) {
		t.Errorf("appending to event 0 changed event 1: %s", a[1])
	}
}

// TestGeneratedEventsDecode runs every generated event through the real
// decoder (JSON Schema, vocabulary keys, struct validation).
func TestGeneratedEventsDecode(t *testing.T) {
	voc, err := vocab.Load()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := cloudevents.NewDecoder(voc)
	if err != nil {
		t.Fatal(err)
	}
	g := Generator{Seed: 3, Subjects: 1000, Recipients: 20, MarkedCount: 10}
	for i, raw := range g.RecipientEvents() {
		if _, err := dec.DecodeStructured(raw); err != nil {
			t.Fatalf("recipient %d: %v\n%s", i, err, raw)
		}
	}
	const n = 3000
	sizes := 0
	marked := 0
	for i, raw := range g.Disclosures(0, n, n) {
		ev, err := dec.DecodeStructured(raw)
		if err != nil {
			t.Fatalf("disclosure %d: %v\n%s", i, err, raw)
		}
		if ev.ID != g.DisclosureID(i) || ev.Source != DisclosureSource || ev.Type != ledger.TypeDisclosure {
			t.Fatalf("disclosure %d decoded as %s %s %s", i, ev.Source, ev.ID, ev.Type)
		}
		d, ok := ev.Data.(*ledger.Disclosure)
		if !ok {
			t.Fatalf("disclosure %d: data %T", i, ev.Data)
		}
		if len(d.Subjects) == 1 && d.Subjects[0] == Marked {
			marked++
		}
		sizes += len(raw)
	}
	if marked != g.MarkedCount {
		t.Errorf("marked subject in %d disclosures, want %d", marked, g.MarkedCount)
	}
	if avg := sizes / n; avg < 550 || avg > 750 {
		t.Errorf("average event %d bytes, want about 600-700", avg)
	}
}

func TestRecipientID(t *testing.T) {
	for _, i := range []int{0, 7, 42, 199, 999, 1000, 123456} {
		if got, want := RecipientID(i), fmt.Sprintf("force-%03d", i); got != want {
			t.Errorf("RecipientID(%d) = %q, want %q", i, got, want)
		}
	}
}

// BenchmarkGenerator compares the append-based generator with the
// encoding/json one it replaced, per event, in chunks of 10,000 as the
// benchmark generates them.
func BenchmarkGenerator(b *testing.B) {
	const chunk = 10_000
	for _, impl := range []struct {
		name string
		gen  func(g *Generator, first, n, total int) [][]byte
	}{
		{"append", (*Generator).Disclosures},
		{"encoding-json-maps", (*Generator).mapDisclosures},
	} {
		b.Run(impl.name, func(b *testing.B) {
			g := Generator{Seed: 1}
			bytes := 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				for _, ev := range impl.gen(&g, i*chunk, chunk, 1_000_000) {
					bytes += len(ev)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*chunk), "ns/event")
			b.ReportMetric(float64(bytes)/float64(b.N*chunk), "B/event")
		})
	}
}
