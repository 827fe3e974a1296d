package ledgertest

import (
	"bytes"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Consult is what one entry of the consultation log must be at the end:
// who asked, the person looked up (nil for a query not about one person)
// and whether that person's identifier still leads to the entry (false
// once the person was forgotten: the consultation stays, unlinkable).
type Consult struct {
	Principal string
	Subject   *ledger.Subject
	Linkable  bool
}

// Consultation is a consultation sharelog records itself (on
// sharelog.in.notify) of who by principal, for reason; who nil for a
// query not about one person.
func Consultation(id, principal string, who *ledger.Subject, reason string) *ledger.Event {
	e := Event(id, ledger.TypeConsultation, &ledger.Consultation{Principal: principal, Operation: "who", Reason: reason, Subject: who})
	e.Internal = true
	return e
}

// consultationScenarios are the rules of the consultation log (DPA 2018
// s.62), each named by the provision it implements.
func consultationScenarios() []Scenario {
	z9 := Subject("Z9")
	fromOutside := Consultation("c-forged", "jane.dpo", &a1, "")
	fromOutside.Internal = false
	return []Scenario{
		{Name: "s.62 a consultation of a person is logged with who and why",
			Steps:         with(OK(Consultation("c1", "jane.dpo", &a1, "SAR REQ-1"))),
			Consultations: []Consult{{"jane.dpo", &a1, true}}},
		{Name: "s.62 a consultation of a person the ledger never saw is logged too",
			Steps:         []Step{OK(Consultation("c1", "jane.dpo", &z9, "SAR REQ-2"))},
			Consultations: []Consult{{"jane.dpo", &z9, true}}},
		{Name: "s.62 a query not about one person is logged without one",
			Steps:         with(OK(Consultation("c1", "auditor", nil, "quarterly audit")), OK(Consultation("c2", "", nil, ""))),
			Consultations: []Consult{{"auditor", nil, false}, {"", nil, false}}},
		{Name: "s.62 only sharelog records consultations",
			Steps:         with(Refused(fromOutside, ledger.ReasonConflict, "only by sharelog itself")),
			Consultations: []Consult{}},
		{Name: "s.62 a consultation is recorded once",
			Steps:         with(OK(Consultation("c1", "jane.dpo", &a1, "")), Dup(Consultation("c1", "jane.dpo", &a1, ""))),
			Consultations: []Consult{{"jane.dpo", &a1, true}}},
		{Name: "Art17 forgetting a person leaves their consultations, unlinkable",
			Steps: with(OK(Consultation("c1", "jane.dpo", &a1, "SAR")), OK(Consultation("c2", "clerk", &z9, "")),
				Forget("f", a1, ledger.Recorded, "", "")),
			Consultations: []Consult{{"jane.dpo", &a1, false}, {"clerk", &z9, true}}},
	}
}

// checkConsultations compares the ledger's consultation log with want.
func checkConsultations(t *testing.T, l Ledger, hash Hasher, want []Consult) {
	t.Helper()
	got, err := l.Consulted()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("consultation log: %d entries %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Principal != w.Principal || (g.Subject != nil) != (w.Subject != nil) {
			t.Errorf("consultation %d: principal %q, by person %v; want %q, %v", i, g.Principal, g.Subject != nil, w.Principal, w.Subject != nil)
			continue
		}
		if w.Subject == nil {
			continue
		}
		h := hash(*w.Subject)
		if linkable := h != nil && bytes.Equal(h, g.Subject); linkable != w.Linkable {
			t.Errorf("consultation %d (entry %d): the person's identifier leads to it: %v, want %v", i, g.Seq, linkable, w.Linkable)
		}
	}
}
