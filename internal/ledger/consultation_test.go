package ledger

import (
	"strings"
	"testing"
	"time"
)

// TestConsultationRules: the consultation log is sharelog's own (no
// principal publishes it, no transport but sharelog's sends it); the
// person and the reason are personal values, sealed; the auditor reads the
// log without them.
func TestConsultationRules(t *testing.T) {
	subj := Subject{Scheme: "dbs-ref", ID: "A1"}
	dpo := &Principal{Name: "jane.dpo", Roles: []Role{RoleDPO}}
	auditor := &Principal{Name: "ico", Roles: []Role{RoleAuditor}}
	for _, p := range []*Principal{dpo, auditor, {Name: "casework", Roles: []Role{RoleProducer}, Sources: []string{"casework"}}} {
		t.Run("s.62: "+p.Name+" cannot publish a consultation", func(t *testing.T) {
			if err := MayPublish(p, TypeConsultation, p.Name, ""); ErrorCode(err) != EFORBIDDEN {
				t.Errorf("MayPublish = %v, want EFORBIDDEN", err)
			}
		})
	}
	for _, tc := range []struct {
		law    string
		sender Sender
		want   Reason
	}{
		{"s.62: a producer cannot forge a consultation", Sender{}, ReasonConflict},
		{"s.62: a recipient cannot forge a consultation", Sender{Recipient: "acro"}, ReasonConflict},
		{"s.62: sharelog records consultations", Sender{Internal: true}, ""},
	} {
		t.Run(tc.law, func(t *testing.T) {
			var got Reason
			if err := MaySend(TypeConsultation, tc.sender); err != nil {
				got = err.Reason()
			}
			if got != tc.want {
				t.Errorf("MaySend = %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("s.62: the person and the reason are sealed, who and what stay in clear", func(t *testing.T) {
		c := &Consultation{Principal: "jane.dpo", Operation: "who", Reason: "SAR for Jo Bloggs", Subject: &subj, Query: "recipient=acro"}
		fs, err := PersonalFields(&Event{Type: TypeConsultation, Data: c})
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, f := range fs {
			paths = append(paths, f.Path)
		}
		if got := strings.Join(paths, ","); got != "data.reason,data.subject.id" {
			t.Errorf("personal fields = %s, want data.reason,data.subject.id", got)
		}
	})

	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		law       string
		c         Consultation
		names     int
		sealed    bool
		bySubject bool
	}{
		{"s.62: a lookup of a person is indexed under the person", Consultation{Principal: "jane.dpo", Operation: "who", Subject: &subj, Reason: "SAR"}, 1, true, true},
		{"s.62: a query not about one person seals its reason under a key of its own", Consultation{Principal: "jane.dpo", Operation: "listDisclosures", Reason: "audit of ACRO"}, 0, true, false},
		{"s.62: a query without a reason has nothing to seal", Consultation{Operation: "listDisclosures"}, 0, false, false},
	} {
		t.Run(tc.law, func(t *testing.T) {
			p, err := Decide(NewMemState(), &Event{Type: TypeConsultation, Data: &tc.c}, Sender{Internal: true}, at, Deadlines{})
			if err != nil {
				t.Fatal(err)
			}
			if !p.Personal || len(p.Names) != tc.names || p.Sealed != tc.sealed || p.Consultation == nil ||
				p.Consultation.BySubject != tc.bySubject || !p.Consultation.At.Equal(at) || p.Consultation.Principal != tc.c.Principal {
				t.Errorf("plan = %+v %+v", p, p.Consultation)
			}
		})
	}

	for _, tc := range []struct {
		law      string
		p        *Principal
		f        ConsultationFilter
		personal bool
		want     string
	}{
		{"s.62: the DPO reads the whole log", dpo, ConsultationFilter{Subject: &subj}, true, ""},
		{"s.62(6): the auditor reads the log for the Commissioner, without personal data", auditor, ConsultationFilter{Principal: "jane.dpo"}, false, ""},
		{"s.62(6): the auditor may not select by person", auditor, ConsultationFilter{Subject: &subj}, false, EFORBIDDEN},
		{"s.62: without access control everyone on loopback reads it", nil, ConsultationFilter{Subject: &subj}, true, ""},
	} {
		t.Run(tc.law, func(t *testing.T) {
			personal, err := MayReadConsultations(tc.p, tc.f)
			if ErrorCode(err) != tc.want || (err == nil && personal != tc.personal) {
				t.Errorf("MayReadConsultations = %v, %v; want personal %v, code %q", personal, err, tc.personal, tc.want)
			}
		})
	}

	t.Run("s.62(6): a page without personal data", func(t *testing.T) {
		pg := &ConsultationPage{Consultations: []ConsultationRecord{ConsultationRecordOf(1, at, at, &Consultation{Principal: "p", Operation: "who", Reason: "r", Subject: &subj}, false)}}
		got := pg.WithoutPersonal().Consultations[0]
		if got.Subject != nil || got.Reason != "" || !got.BySubject || got.Principal != "p" {
			t.Errorf("without personal data: %+v", got)
		}
		if pg.Consultations[0].Subject == nil {
			t.Error("WithoutPersonal changed the page it was given")
		}
	})
}
