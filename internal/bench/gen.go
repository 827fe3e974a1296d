package bench

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Generator makes realistic events: disclosures of about 600 bytes to a
// registry of recipients, with subjects drawn from a skewed (Zipf)
// distribution, and one marked subject (Marked) that receives exactly
// MarkedCount disclosures spread evenly over the run.
//
// Disclosures are built by appending precomputed JSON fragments and digits
// to one buffer per call (0.35-0.43 µs an event in BenchmarkGenerator on the
// 2-core development machine, where encoding/json on nested maps took
// 9.4-10.7 µs), so generating events ahead of the publisher takes little of
// the CPU the measured phases compete for. Every string that
// could need escaping is encoded once, by encoding/json, into a fragment;
// what is appended per event is digits and RFC 3339 times only.
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

// DisclosureSource is the CloudEvents source of every generated disclosure.
const DisclosureSource = "casework/disclosure-service"

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

// appendPadded appends v in decimal, zero-padded to at least width digits
// (fmt's %0<width>d for a non-negative v).
func appendPadded(b []byte, v uint64, width int) []byte {
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], v, 10)
	for i := len(d); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

func appendRecipientID(b []byte, i int) []byte {
	return appendPadded(append(b, "force-"...), uint64(i), 3)
}

// RecipientID is the id of recipient i.
func RecipientID(i int) string { return string(appendRecipientID(nil, i)) }

// RecipientEvents returns the registrations of every recipient, as
// structured CloudEvents JSON.
func (g *Generator) RecipientEvents() [][]byte {
	g.defaults()
	out := make([][]byte, g.Recipients)
	for i := range out {
		out[i], _ = json.Marshal(map[string]any{
			"specversion": "1.0", "id": "recipient-" + RecipientID(i), "source": "bench/admin", "type": ledger.TypeRecipient,
			"time": g.Start.Format(time.RFC3339), "datacontenttype": "application/json",
			"data": map[string]any{"id": RecipientID(i), "name": "Constabulary " + strconv.Itoa(i),
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

// Fragments of a disclosure, in the order they are written: the context
// attributes first, as the CloudEvents spec lists them, then the data
// fields as DESIGN.md's table lists them. Between two fragments goes one
// per-event value (digits, a time, a precomputed JSON value).
var (
	fragID           = `{"specversion":"1.0","id":"` // + disc-<seed>-<i>
	fragTime         = `","source":` + mustMarshal(DisclosureSource) + `,"type":` + mustMarshal(ledger.TypeDisclosure) + `,"time":"`
	fragSubjects     = `","datacontenttype":"application/json","data":{"subjects":[`
	fragSubjectID    = `{"scheme":"dbs-ref","id":"` // + 12 digits + `"}`
	fragRecipient    = `],"recipient":"`
	fragCategories   = `","categories":`
	fragDisclosedAt  = `,"purpose":"safeguarding.disclosure_check","lawfulBasis":"dpa-s35-2-b","regime":"dpa-part3","disclosedAt":"`
	fragRecordRef    = `","disclosedBy":"disclosure-service/worker-07","justification":` + mustMarshal("Enhanced check: PNC search returned a possible match; referred for local police information") + `,"records":[{"system":"pnc","ref":"PNC/`
	fragEnd          = `","version":"3"}]}}`
	markedSubject    = mustMarshal(Marked)
	categorySetsJSON = func() []string {
		out := make([]string, len(categorySets))
		for i, s := range categorySets {
			out[i] = mustMarshal(s)
		}
		return out
	}()
)

func mustMarshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// appendDisclosureID appends the id of disclosure i.
func (g *Generator) appendDisclosureID(b []byte, i int) []byte {
	b = strconv.AppendUint(append(b, "disc-"...), g.Seed, 10)
	return appendPadded(append(b, '-'), uint64(i), 9)
}

// DisclosureID is the CloudEvents id of disclosure i (its source is
// DisclosureSource).
func (g *Generator) DisclosureID(i int) string { return string(g.appendDisclosureID(nil, i)) }

// Disclosures returns n disclosures numbered from first, as structured
// CloudEvents JSON. The same (Seed, first, n) always gives the same events.
// The events of one call share one buffer; each is capped at its end, so
// appending to one copies it rather than overwrite the next.
func (g *Generator) Disclosures(first, n, total int) [][]byte {
	g.defaults()
	r := rand.New(rand.NewPCG(g.Seed, uint64(first)))
	zipf := rand.NewZipf(r, 1.1, 1, uint64(g.Subjects-1))
	every := max(total/g.MarkedCount, 1)
	out := make([][]byte, n)
	const perEvent = 720 // above the largest event, so the buffer is rarely regrown
	buf := make([]byte, 0, n*perEvent)
	var at [len(time.RFC3339) + 8]byte
	for k := range out {
		i := first + k
		ts := g.Start.Add(time.Duration(i)*g.Spacing).AppendFormat(at[:0], time.RFC3339)
		// Random draws in a fixed order: subject, recipient, categories, record.
		subjectID := zipf.Uint64()
		marked := i%every == 0 && i/every < g.MarkedCount
		recipient := r.IntN(g.Recipients)
		cats := r.IntN(len(categorySets))
		ref := r.IntN(1e8)

		start := len(buf)
		buf = append(buf, fragID...)
		buf = g.appendDisclosureID(buf, i)
		buf = append(buf, fragTime...)
		buf = append(buf, ts...)
		buf = append(buf, fragSubjects...)
		if marked {
			buf = append(buf, markedSubject...)
		} else {
			buf = append(buf, fragSubjectID...)
			buf = appendPadded(buf, subjectID, 12)
			buf = append(buf, `"}`...)
		}
		buf = append(buf, fragRecipient...)
		buf = appendRecipientID(buf, recipient)
		buf = append(buf, fragCategories...)
		buf = append(buf, categorySetsJSON[cats]...)
		buf = append(buf, fragDisclosedAt...)
		buf = append(buf, ts...)
		buf = append(buf, fragRecordRef...)
		buf = appendPadded(buf, uint64(ref), 8)
		buf = append(buf, fragEnd...)
		out[k] = buf[start:len(buf):len(buf)]
	}
	return out
}
