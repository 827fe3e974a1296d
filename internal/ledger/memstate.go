package ledger

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"
)

// MemState is the ledger's derived state held in memory: the fold of its
// entries through Decide. It is the reference the store is tested against
// (the same scenarios run on both) and the rules' table tests run on it.
// Subjects are hashed with SHA-256 of the identifier unless Hash is set.
//
// MemState is not safe for concurrent use.
type MemState struct {
	// Hash, when set, gives the keyed hash of a subject the ledger makes
	// known; by default the first 16 bytes of SHA-256(scheme 0x00 id).
	Hash func(Subject) []byte

	seen        map[[2]string]uint64 // (source, id) -> entry
	count       uint64
	recipients  map[string]Recipient
	requests    map[string]*RequestRecord
	obligations map[string]*Obligation
	notices     map[string]Notice
	holds       map[string]*HoldRecord
	subjects    map[string][]byte // scheme 0x00 id -> keyed hash, known subjects only
	known       map[string]bool   // keyed hash -> known
	disclosures map[string][]DisclosureSummary
	erasures    map[string][]ErasureMarker
	after       map[uint64]string // disclosure entry -> the erasure it came after
	consulted   []Consulted       // the consultation log, in entry order
}

// Consulted is a consultation as the ledger indexes it: its entry, time,
// principal and, for one about a person, the person's keyed hash.
type Consulted struct {
	Seq       uint64
	At        time.Time
	Principal string
	Subject   []byte
}

// NewMemState returns an empty ledger state.
func NewMemState() *MemState {
	return &MemState{
		seen: map[[2]string]uint64{}, recipients: map[string]Recipient{},
		requests: map[string]*RequestRecord{}, obligations: map[string]*Obligation{},
		notices: map[string]Notice{}, holds: map[string]*HoldRecord{},
		subjects: map[string][]byte{}, known: map[string]bool{},
		disclosures: map[string][]DisclosureSummary{}, erasures: map[string][]ErasureMarker{},
		after: map[uint64]string{},
	}
}

var _ State = (*MemState)(nil)

// Append applies ev as the ledger does: Duplicate for a (source, id) seen
// before, Rejected with the rule's *InvalidError, or Recorded with the
// plan it carried out. at is the time it is recorded.
func (m *MemState) Append(ev *Event, at time.Time, deadlines Deadlines) (Outcome, *Plan, error) {
	key := [2]string{ev.Source, ev.ID}
	if _, ok := m.seen[key]; ok {
		return Duplicate, nil, nil
	}
	p, err := Decide(m, ev, Sender{Internal: ev.Internal, Recipient: ev.From}, at, deadlines)
	if err != nil {
		if _, ok := err.(*InvalidError); ok {
			return Rejected, nil, err
		}
		return 0, nil, err
	}
	m.count++
	m.seen[key] = m.count
	m.Apply(m.count, p)
	return Recorded, p, nil
}

// Apply carries out plan p of entry seq, as the store does in Badger.
func (m *MemState) Apply(seq uint64, p *Plan) {
	var hashes [][]byte
	for _, s := range p.Names {
		hashes = append(hashes, m.makeKnown(s))
	}
	if p.Register != nil {
		m.recipients[p.Register.ID] = *p.Register
	}
	if d := p.Disclosure; d != nil {
		for i, h := range hashes {
			// In (DisclosedAt, entry) order: after every disclosure made
			// at or before this one.
			list := m.disclosures[string(h)]
			at := d.Disclosure.DisclosedAt
			pos := sort.Search(len(list), func(j int) bool { return list[j].DisclosedAt.After(at) })
			m.disclosures[string(h)] = slices.Insert(list, pos, d.Summary(i))
		}
		if f := d.Flagged(); f != "" {
			m.after[seq] = f
		}
	}
	if r := p.Request; r != nil {
		rec := r.Record
		if rec.Subject == nil && len(hashes) > 0 {
			rec.Subject = hashes[0]
		}
		rec.Seq = seq
		rec.Notices = nil
		for i, o := range r.Obligations {
			o := o
			m.obligations[o.Notice] = &o
			m.notices[o.Notice] = r.Notices[i]
			rec.Notices = append(rec.Notices, o.Notice)
		}
		if rec.Notices == nil {
			rec.Notices = []string{}
		}
		m.requests[rec.Request] = &rec
		if r.Lifted != nil {
			l := *r.Lifted
			m.requests[l.Request] = &l
		}
		if r.Erasure != nil {
			m.erasures[string(rec.Subject)] = append(m.erasures[string(rec.Subject)], *r.Erasure)
		}
		for _, h := range r.Held {
			m.holds[h.Hold] = &h
		}
	}
	if pe := p.Proceed; pe != nil {
		for i, o := range pe.Obligations {
			m.obligations[o.Notice] = &o
			n := pe.Notices[i].Notice
			n.Subject = m.notices[pe.Notices[i].From].Subject
			m.notices[o.Notice] = n
		}
		for _, r := range pe.Requests {
			m.requests[r.Request] = &r
		}
	}
	if p.Obligation != nil {
		o := *p.Obligation
		m.obligations[o.Notice] = &o
	}
	if h := p.Hold; h != nil {
		rec := h.Record
		if h.Placed {
			rec.Seq = seq
			if h.BySubject && len(hashes) > 0 {
				rec.SubjectHash = hexString(hashes[0])
			}
		}
		m.holds[rec.Hold] = &rec
	}
	if p.Clock != nil {
		rec := *p.Clock
		m.requests[rec.Request] = &rec
	}
	if c := p.Consultation; c != nil {
		k := Consulted{Seq: seq, At: c.At, Principal: c.Principal}
		if c.BySubject && len(hashes) > 0 {
			k.Subject = hashes[0]
		}
		m.consulted = append(m.consulted, k)
	}
	if f := p.Forget; f != nil {
		m.forget(f.SubjectHash, f.At)
	}
}

func (m *MemState) makeKnown(s Subject) []byte {
	k := s.Scheme + "\x00" + s.ID
	if h, ok := m.subjects[k]; ok {
		return h
	}
	var h []byte
	if m.Hash != nil {
		h = m.Hash(s)
	} else {
		sum := sha256.Sum256([]byte(k))
		h = sum[:16]
	}
	m.subjects[k] = h
	m.known[string(h)] = true
	return h
}

// Adopt makes the subject with keyed hash h known without its identifier,
// as a replay does when the entries that named the subject can no longer
// tell who it was (they named several people, one of whom was forgotten).
func (m *MemState) Adopt(h []byte) {
	if !m.known[string(h)] {
		m.subjects["\x00adopted\x00"+string(h)] = h
		m.known[string(h)] = true
	}
}

// forget does what forgetting a subject does to the derived state: the
// subject is no longer known, its disclosures and erasure markers leave
// the indexes, its notices are destroyed; its requests and obligations stay
// as evidence, with what they say of the person blanked.
func (m *MemState) forget(h []byte, at time.Time) {
	delete(m.known, string(h))
	for k, v := range m.subjects {
		if string(v) == string(h) {
			delete(m.subjects, k)
		}
	}
	delete(m.disclosures, string(h))
	delete(m.erasures, string(h))
	for _, r := range m.requests {
		if string(r.Subject) != string(h) || r.ForgottenAt != nil {
			continue
		}
		r.Forget(at)
		for _, n := range r.Notices {
			delete(m.notices, n)
			if o := m.obligations[n]; o != nil {
				o.Forget()
			}
		}
	}
	hx := hexString(h)
	for _, hr := range m.holds {
		if hr.SubjectHash == hx {
			hr.Forget()
		}
	}
}

// State's methods.

func (m *MemState) Recipient(id string) (Recipient, bool) { r, ok := m.recipients[id]; return r, ok }

func (m *MemState) Request(id string) (*RequestRecord, error) {
	if r, ok := m.requests[id]; ok {
		c := *r
		c.Notices = slices.Clone(r.Notices)
		return &c, nil
	}
	return nil, nil
}

func (m *MemState) Obligation(notice string) (*Obligation, error) {
	if o, ok := m.obligations[notice]; ok {
		c := *o
		return &c, nil
	}
	return nil, nil
}

func (m *MemState) Hold(id string) (*HoldRecord, error) {
	if h, ok := m.holds[id]; ok {
		c := *h
		return &c, nil
	}
	return nil, nil
}

func (m *MemState) ActiveHolds() ([]HoldRecord, error) {
	var out []HoldRecord
	for _, id := range slices.Sorted(maps.Keys(m.holds)) {
		if h := m.holds[id]; h.Active() {
			out = append(out, *h)
		}
	}
	return out, nil
}

func (m *MemState) SubjectHash(s Subject) ([]byte, error) {
	return m.subjects[s.Scheme+"\x00"+s.ID], nil
}

func (m *MemState) Known(h []byte) (bool, error) { return m.known[string(h)], nil }

func (m *MemState) Disclosures(h []byte) ([]DisclosureSummary, error) {
	return slices.Clone(m.disclosures[string(h)]), nil
}

func (m *MemState) Erasures(h []byte) ([]ErasureMarker, error) {
	return slices.Clone(m.erasures[string(h)]), nil
}

// Derived records, for tests and for comparison with a store.

// Requests returns every request record, sorted by id.
func (m *MemState) Requests() []RequestRecord {
	out := make([]RequestRecord, 0, len(m.requests))
	for _, id := range slices.Sorted(maps.Keys(m.requests)) {
		out = append(out, *m.requests[id])
	}
	return out
}

// Obligations returns every obligation, sorted by notice id.
func (m *MemState) Obligations() []Obligation {
	out := make([]Obligation, 0, len(m.obligations))
	for _, n := range slices.Sorted(maps.Keys(m.obligations)) {
		out = append(out, *m.obligations[n])
	}
	return out
}

// Notice returns the notice of an obligation while its subject is known.
func (m *MemState) Notice(notice string) (Notice, bool) { n, ok := m.notices[notice]; return n, ok }

// Holds returns every hold, active and released, sorted by id.
func (m *MemState) Holds() []HoldRecord {
	out := make([]HoldRecord, 0, len(m.holds))
	for _, id := range slices.Sorted(maps.Keys(m.holds)) {
		out = append(out, *m.holds[id])
	}
	return out
}

// Recipients returns the registry, sorted by id.
func (m *MemState) Recipients() []Recipient {
	out := make([]Recipient, 0, len(m.recipients))
	for _, id := range slices.Sorted(maps.Keys(m.recipients)) {
		out = append(out, m.recipients[id])
	}
	return out
}

// Consultations returns the consultation log in entry order. A
// forgotten person's consultations stay, under a keyed hash that links to
// no one.
func (m *MemState) Consultations() []Consulted { return slices.Clone(m.consulted) }

// AfterErasure returns the erasure request the disclosure recorded as
// entry seq came after, or "".
func (m *MemState) AfterErasure(seq uint64) string { return m.after[seq] }

// Entries returns the number of entries recorded.
func (m *MemState) Entries() uint64 { return m.count }

// Entry returns the entry seq an event (source, id) was recorded as, or 0.
func (m *MemState) Entry(source, id string) uint64 { return m.seen[[2]string{source, id}] }

func (m *MemState) String() string {
	return fmt.Sprintf("MemState{%d entries, %d recipients, %d requests, %d obligations, %d holds, %d subjects}",
		m.count, len(m.recipients), len(m.requests), len(m.obligations), len(m.holds), len(m.known))
}
