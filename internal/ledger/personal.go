package ledger

import (
	"fmt"
	"strconv"
)

// PersonalField is one value of an event that identifies a person or may
// name one. Path is a dotted path into the structured event ("data.subjects.0.id");
// Want, for a string, is the value the typed event holds there (nil: any
// JSON value, such as an array of record references or a rectified value).
type PersonalField struct {
	Path string
	Want *string
}

// subjectIDPaths are the paths of the first disclosed subjects' ids, made
// once rather than for every disclosure.
var subjectIDPaths = func() []string {
	p := make([]string, 8)
	for i := range p {
		p[i] = "data.subjects." + strconv.Itoa(i) + ".id"
	}
	return p
}()

// subjectIDPath is the path of the id of the disclosed subject i.
func subjectIDPath(i int) string {
	if i < len(subjectIDPaths) {
		return subjectIDPaths[i]
	}
	return "data.subjects." + strconv.Itoa(i) + ".id"
}

// PersonalFields lists the personal values of ev that must not be kept in
// clear (UK GDPR Art. 5(1)(c) and (e); forgetting destroys them): subject
// identifiers, free text (justifications, summaries, notes, reasons), the
// people who decided or disclosed, record references and rectified values.
// Empty fields are left out. What stays in clear is the evidence that
// outlives forgetting: who received which categories, for what purpose, on
// what basis, when; which requests were decided and which notices answered.
func PersonalFields(ev *Event) ([]PersonalField, error) {
	fs := make([]PersonalField, 0, 4) // a disclosure of one subject has four
	str := func(path string, v *string) {
		if *v != "" {
			fs = append(fs, PersonalField{Path: path, Want: v})
		}
	}
	subject := func(path string, s *Subject) { str(path+".id", &s.ID) }
	if r, ok := ev.Data.(Request); ok {
		subject("data.subject", &r.Head().Subject)
	}
	switch d := ev.Data.(type) {
	case *Disclosure:
		for i := range d.Subjects {
			str(subjectIDPath(i), &d.Subjects[i].ID)
		}
		str("data.disclosedBy", &d.DisclosedBy)
		str("data.justification", &d.Justification)
		if len(d.Records) > 0 {
			fs = append(fs, PersonalField{Path: "data.records"})
		}
	case *Rectification:
		str("data.summary", &d.Summary)
		str("data.decidedBy", &d.DecidedBy)
		for i, ch := range d.Changes {
			if ch.Value != nil {
				fs = append(fs, PersonalField{Path: "data.changes." + strconv.Itoa(i) + ".value"})
			}
		}
	case *Erasure:
		str("data.decidedBy", &d.DecidedBy)
	case *Restriction:
		str("data.decidedBy", &d.DecidedBy)
	case *RestrictionLifted:
	case *NoticeAck:
		str("data.note", &d.Note)
	case *Exemption:
		str("data.justification", &d.Justification)
	case *Hold:
		str("data.reason", &d.Reason)
		if d.Scope != nil && d.Scope.Subject != nil {
			subject("data.scope.subject", d.Scope.Subject)
		}
	case *HoldReleased:
		str("data.reason", &d.Reason)
		if d.Scope != nil && d.Scope.Subject != nil {
			subject("data.scope.subject", d.Scope.Subject)
		}
	case *Extension:
		str("data.reason", &d.Reason)
	case *RequestPaused:
		str("data.note", &d.Note)
	case *RequestResumed:
		str("data.note", &d.Note)
	case *Consultation:
		str("data.reason", &d.Reason)
		if d.Subject != nil {
			subject("data.subject", d.Subject)
		}
	default:
		return nil, fmt.Errorf("ledger: no personal fields known for event data %T", ev.Data)
	}
	return fs, nil
}
