package ledger

import (
	"slices"
	"time"
)

// The consultation log (DPA 2018 s.62): every request that reads a
// person's data is recorded as a ledger entry before it is answered, with
// its justification (the reason the principal gave), the date and time
// (the ledger's), and who consulted (the principal's name). The log is
// available to the Commissioner (s.62(6)): the auditor role reads it
// without the personal parts.
//
// A consultation is an entry like any other, a leaf of the Merkle tree.
// Only sharelog records one (on sharelog.in.notify); no principal may
// publish it. The person looked up is kept as the ledger keeps every
// subject: a keyed hash in the indexes and the identifier sealed under the
// subject's key, so that forgetting the person leaves the consultation,
// unlinkable. The reason is free text and may name someone: it is sealed
// too, under the subject's key or, for a query not about one person, under
// a data key of the entry's own.

// TypeConsultation records one consultation of the ledger
// (org.sharelog.consultation.v1). Its data is a Consultation.
const TypeConsultation = "org.sharelog.consultation.v1"

// ConsultationEffect is what a consultation adds to the ledger's indexes:
// its time (the ledger's), who asked and whether it was about one person,
// whom the store indexes by the keyed hash of Plan.Names[0].
type ConsultationEffect struct {
	At        time.Time
	Principal string
	BySubject bool
}

// decideConsultation records a consultation. It breaks no rule of the
// ledger's state: any consultation sharelog itself records is kept (MaySend
// refuses one from anywhere else). A consultation of a person the ledger
// does not know makes the person known, as a request about one does: the
// lookup of someone never disclosed is a consultation too.
func decideConsultation(c *Consultation, at time.Time) (*Plan, error) {
	eff := &ConsultationEffect{At: at, Principal: c.Principal}
	// The reason is sealed even when no person is named: it is free text.
	plan := &Plan{Personal: true, Sealed: c.Reason != "", Consultation: eff}
	if c.Subject != nil {
		eff.BySubject = true
		plan.Names = []Subject{*c.Subject}
	}
	return plan, nil
}

// ConsultationRecord is one consultation as the log lists it. Subject and
// Reason are personal: they are empty in a listing for a principal who may
// not see personal data (WithoutPersonal), and once the person was
// forgotten (Forgotten is then set and the record links to no one).
type ConsultationRecord struct {
	Seq uint64 `json:"seq"`
	// RecordedAt is the ledger's time of the entry: the date and time of
	// the consultation (s.62(2)(b)).
	RecordedAt time.Time `json:"recordedAt"`
	// AskedAt is when the request arrived, as the server that recorded it
	// says (the event's time).
	AskedAt   time.Time `json:"askedAt"`
	Principal string    `json:"principal"`
	Operation string    `json:"operation"`
	Reason    string    `json:"reason,omitempty"`
	Subject   *Subject  `json:"subject,omitempty"`
	// BySubject is set for a consultation of one person, whether or not
	// the answer shows who.
	BySubject bool   `json:"bySubject"`
	Query     string `json:"query,omitempty"`
	Forgotten bool   `json:"forgotten,omitempty"`
}

// ConsultationRecordOf returns the record of consultation c, recorded as
// entry seq at recordedAt, asked at askedAt.
func ConsultationRecordOf(seq uint64, recordedAt, askedAt time.Time, c *Consultation, forgotten bool) ConsultationRecord {
	r := ConsultationRecord{
		Seq: seq, RecordedAt: recordedAt, AskedAt: askedAt, Principal: c.Principal, Operation: c.Operation,
		Reason: c.Reason, BySubject: c.Subject != nil, Query: c.Query, Forgotten: forgotten,
	}
	if c.Subject != nil && !forgotten {
		s := *c.Subject
		r.Subject = &s
	}
	if forgotten {
		r.Reason = ""
	}
	return r
}

// ConsultationFilter selects consultations; zero fields do not filter.
// Since is inclusive and Until exclusive, on RecordedAt. Results come in
// (RecordedAt, Seq) order; After continues from a previous page's Next.
type ConsultationFilter struct {
	Subject   *Subject  `json:"subject,omitempty"`
	Principal string    `json:"principal,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	Until     time.Time `json:"until,omitzero"`
	After     string    `json:"after,omitempty"`
	Limit     int       `json:"limit,omitempty"`
}

// ConsultationPage is one page of the consultation log. Next is empty on
// the last page.
type ConsultationPage struct {
	Consultations []ConsultationRecord `json:"consultations"`
	Next          string               `json:"next,omitempty"`
}

// MayReadConsultations decides what p may ask of the consultation log and
// see in it: a principal with role dpo sees everything (and so does
// everyone on a server without access control, p nil); one without it
// (the auditor, for the Commissioner, s.62(6)) reads the log without
// personal data, so it may not select by person (EFORBIDDEN). It returns
// whether p sees the personal parts.
func MayReadConsultations(p *Principal, f ConsultationFilter) (personal bool, err error) {
	if p == nil || p.Has(RoleDPO) {
		return true, nil
	}
	if f.Subject != nil {
		return false, Forbidden("principal %q (roles %s) reads the consultation log without personal data and may not select by person; that takes role dpo",
			p.Name, joinRoles(p.Roles))
	}
	return false, nil
}

// WithoutPersonal returns the page with the personal parts of every
// record (the person, the reason) blanked.
func (pg *ConsultationPage) WithoutPersonal() *ConsultationPage {
	out := &ConsultationPage{Consultations: slices.Clone(pg.Consultations), Next: pg.Next}
	for i := range out.Consultations {
		out.Consultations[i].Subject, out.Consultations[i].Reason = nil, ""
	}
	return out
}
