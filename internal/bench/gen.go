package bench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Generator makes realistic events: disclosures of about 600 bytes to a
// registry of recipients, with subjects drawn from a skewed (Zipf)
// distribution, and one marked subject (Marked) that receives exactly
// MarkedCount disclosures spread evenly over the run.
type Generator struct {
	Subjects    int           // people (default 100,000)
	Recipients  int           // recipient registry size (default 200)
	Start       time.Time     // disclosedAt of the first event
	Spacing     time.Duration // disclosedAt step between events (default 63s: 1M events span two years)
	MarkedCount int           // disclosures of the marked subject (default 100)
	Seed        uint64
}

// Marked is the subject whose disclosures the who benchmark asks for.
var Marked = ledger.Subject{Scheme: "dbs-ref", ID: "BENCH-MARKED-0100"}

func (g *Generator) defaults() {
	if g.Subjects == 0 {
		g.Subjects = 100_000
	}
	if g.Recipients == 0 {
		g.Recipients = 200
	}
	if g.Start.IsZero() {
		g.Start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if g.Spacing == 0 {
		g.Spacing = 63 * time.Second
	}
	if g.MarkedCount == 0 {
		g.MarkedCount = 100
	}
}

// RecipientID is the id of recipient i.
func RecipientID(i int) string { return fmt.Sprintf("force-%03d", i) }

// RecipientEvents returns the registrations of every recipient, as
// structured CloudEvents JSON.
func (g *Generator) RecipientEvents() [][]byte {
	g.defaults()
	out := make([][]byte, g.Recipients)
	for i := range out {
		out[i], _ = json.Marshal(map[string]any{
			"specversion": "1.0", "id": "recipient-" + RecipientID(i), "source": "bench/admin", "type": ledger.TypeRecipient,
			"time": g.Start.Format(time.RFC3339), "datacontenttype": "application/json",
			"data": map[string]any{"id": RecipientID(i), "name": fmt.Sprintf("Constabulary %d", i),
				"role": "competent-authority", "country": "GB", "regime": "dpa-part3", "channel": map[string]any{"type": "nats"}},
		})
	}
	return out
}

var categorySets = [][]string{
	{"user.criminal_history"},
	{"user.name", "user.contact.address"},
	{"user.criminal_history", "user.name", "user.demographic.date_of_birth"},
	{"user.contact.email", "user.name"},
}

// Disclosures returns n disclosures numbered from first, as structured
// CloudEvents JSON. The same (Seed, first, n) always gives the same events.
func (g *Generator) Disclosures(first, n, total int) [][]byte {
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
				"recipient":     RecipientID(r.IntN(g.Recipients)),
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
