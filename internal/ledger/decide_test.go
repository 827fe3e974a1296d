package ledger_test

import (
	"slices"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/ledger/ledgertest"
)

// The rules' scenarios run over MemState here, with no Badger and no NATS;
// internal/store runs the same scenarios against Badger.

// memLedger drives a MemState as ledgertest.Ledger.
type memLedger struct {
	*ledger.MemState
	deadlines ledger.Deadlines
}

func (m memLedger) Append(ev *ledger.Event, at time.Time) (ledger.Outcome, error) {
	o, _, err := m.MemState.Append(ev, at, m.deadlines)
	return o, err
}

func (m memLedger) Notices(request string) ([]string, error) {
	r, err := m.Request(request)
	if r == nil || err != nil {
		return nil, err
	}
	return r.Notices, nil
}

func (m memLedger) Answer(request string) (*ledger.AnswerClock, error) {
	r, err := m.Request(request)
	if r == nil || err != nil {
		return nil, err
	}
	return r.Answer, nil
}

func (m memLedger) Consulted() ([]ledger.Consulted, error) { return m.Consultations(), nil }

func (m memLedger) hash(s ledger.Subject) []byte { h, _ := m.SubjectHash(s); return h }

func newMem(d ledger.Deadlines) memLedger { return memLedger{ledger.NewMemState(), d} }

func run(t *testing.T, d ledger.Deadlines, steps ...ledgertest.Step) memLedger {
	t.Helper()
	m := newMem(d)
	ledgertest.Run(t, m, m.hash, ledgertest.Scenario{Steps: steps})
	return m
}

func TestScenarios(t *testing.T) {
	for _, sc := range ledgertest.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			m := newMem(sc.Deadlines)
			ledgertest.Run(t, m, m.hash, sc)
		})
	}
}

var (
	a1 = ledgertest.Subject("A1")
	t0 = ledgertest.T0
)

// TestNoticeContent: UK GDPR Art. 5(1)(c) — each notice carries only what
// its recipient received: its categories, its disclosures, and the
// rectified fields in categories it received.
func TestNoticeContent(t *testing.T) {
	rect := ledgertest.Rectification("rc", &ledger.Rectification{RequestHeader: ledger.RequestHeader{Request: "R", Subject: a1}, Changes: []ledger.Change{
		{Category: "user.contact.email", Field: "email", Value: "new@example.org"},
		{Category: "user.contact.address", Field: "street", Value: "1 New Street"},
		{Category: "user.health_and_medical", Field: "condition", Value: "x"},
		{Category: "user.contact", Field: "all-contact", Value: "y"},
	}})
	m := run(t, ledger.Deadlines{}, append(ledgertest.Base(), ledgertest.OK(rect))...)
	want := map[string][]string{
		"acro":   {"email"},                          // received user.contact.email only: user.contact is broader
		"police": {"email", "street", "all-contact"}, // received user.contact
		"cloud":  {"condition"},
	}
	for rcp, fields := range want {
		n, ok := m.Notice(ledger.NoticeID("R", rcp))
		if !ok {
			t.Fatalf("no notice for %s", rcp)
		}
		var got []string
		for _, c := range n.Changes {
			got = append(got, c.Field)
		}
		if !slices.Equal(got, fields) {
			t.Errorf("%s: changes %v, want %v", rcp, got, fields)
		}
		o, _ := m.Obligation(n.Notice)
		if n.Subject != a1 || n.Action != ledger.ActionRectify || !n.Due.Equal(o.Due) || !slices.Equal(n.Categories, o.Categories) || !slices.Equal(n.Disclosures, o.Disclosures) {
			t.Errorf("%s: notice %+v does not match its obligation %+v", rcp, n, o)
		}
	}
}

// TestDeadlinesApplied: UK GDPR Art. 12(3) — the notice is due by the
// policy for the obligation's regime, shortened by the recipient's SLA.
func TestDeadlinesApplied(t *testing.T) {
	sla := ledgertest.Event("rcp-cloud2", ledger.TypeRecipient, &ledger.Recipient{ID: "cloud", Name: "CLOUD", Role: ledger.RoleProcessor, SLADays: 3, Channel: ledger.Channel{Type: "manual"}})
	d := ledger.Deadlines{Regimes: map[string]ledger.Deadline{ledger.RegimeDPAPart3: {Days: 14}}}
	m := run(t, d, append(ledgertest.Base(), ledgertest.OK(sla), ledgertest.OK(ledgertest.Erasure("e", "R", a1)))...)
	for rcp, want := range map[string]time.Time{"acro": t0.AddDate(0, 0, 14), "police": t0.AddDate(0, 1, 0), "cloud": t0.AddDate(0, 0, 3)} {
		o, _ := m.Obligation(ledger.NoticeID("R", rcp))
		if !o.Due.Equal(want) {
			t.Errorf("%s due %s, want %s", rcp, o.Due, want)
		}
	}
}

// TestAfterErasure: a disclosure of data whose erasure was already decided
// is recorded (the ledger is a record, Art. 5(2)) but flagged.
func TestAfterErasure(t *testing.T) {
	late := func(id string, cats ...string) *ledger.Event {
		d := ledgertest.Disclosure(id, "police", a1, ledger.RegimeUKGDPR, cats...).Data.(*ledger.Disclosure)
		d.DisclosedAt = t0.Add(time.Hour)
		return ledgertest.Event(id, ledger.TypeDisclosure, d)
	}
	m := run(t, ledger.Deadlines{}, append(ledgertest.Base(),
		ledgertest.OK(ledgertest.Erasure("e", "E", a1, "user.contact")),
		ledgertest.OK(late("d-late", "user.contact.email")),
		ledgertest.OK(late("d-other", "user.financial")),
		ledgertest.OK(ledgertest.Disclosure("d-early", "police", a1, ledger.RegimeUKGDPR, "user.contact.email")),
	)...)
	for id, want := range map[string]string{"d-late": "E", "d-other": "", "d-early": ""} {
		if got := m.AfterErasure(m.Entry("test", id)); got != want {
			t.Errorf("%s flagged after %q, want %q", id, got, want)
		}
	}
}

// TestForgetting: the evidence outlives the person (Art. 5(2)); what named
// them goes (Art. 17).
func TestForgetting(t *testing.T) {
	m := run(t, ledger.Deadlines{}, append(ledgertest.Base(),
		ledgertest.OK(ledgertest.Erasure("e", "E", a1)),
		ledgertest.OK(ledgertest.Exemption("x", ledger.NoticeID("E", "cloud"), "impossible")),
		ledgertest.OK(ledgertest.Hold("h", "H", &ledger.HoldScope{Subject: &a1})),
		ledgertest.OK(ledgertest.Release("rel", "H")),
	)...)
	h := m.hash(a1)
	ledgertest.Run(t, m, m.hash, ledgertest.Scenario{Steps: []ledgertest.Step{ledgertest.Forget("f", a1, ledger.Recorded, "", "")}})
	if m.hash(a1) != nil {
		t.Error("the identifier still leads to the subject")
	}
	if k, _ := m.Known(h); k {
		t.Error("the keyed hash is still known")
	}
	r, _ := m.Request("E")
	if r == nil || r.ForgottenAt == nil || len(r.Notices) != 3 {
		t.Fatalf("request after forgetting = %+v; want it kept, marked forgotten, with its 3 notices", r)
	}
	o, _ := m.Obligation(ledger.NoticeID("E", "cloud"))
	if o.State != ledger.StateExempted || o.Exemption.Justification != "" || o.Exemption.Reason != "impossible" {
		t.Errorf("exemption after forgetting = %+v; want kept, justification blanked", o.Exemption)
	}
	if _, ok := m.Notice(ledger.NoticeID("E", "acro")); ok {
		t.Error("notice payload kept after forgetting")
	}
	if hr := m.Holds()[0]; hr.Reason != "" || hr.SubjectHash == "" {
		t.Errorf("hold after forgetting = %+v; want its reason blanked", hr)
	}
	if d, _ := m.Disclosures(h); len(d) != 0 {
		t.Errorf("%d disclosures still indexed under the forgotten subject", len(d))
	}
	// A new disclosure of the same identifier starts a new, unlinked record.
	ledgertest.Run(t, m, m.hash, ledgertest.Scenario{Steps: []ledgertest.Step{ledgertest.OK(ledgertest.Disclosure("d-new", "police", a1, ledger.RegimeUKGDPR, "user.name"))}})
	if m.hash(a1) == nil {
		t.Error("a new disclosure did not make the subject known again")
	}
}

// TestSenders: only sharelog derives notices and records deliveries and
// forgettings; producers cannot forge them.
func TestSenders(t *testing.T) {
	tests := []struct {
		name   string
		typ    string
		sender ledger.Sender
		want   ledger.Reason
	}{
		{"notices are derived, never sent", ledger.TypeNotice, ledger.Sender{Internal: true}, ledger.ReasonConflict},
		{"a producer cannot record a delivery", ledger.TypeNoticeDelivery, ledger.Sender{}, ledger.ReasonConflict},
		{"sharelog records deliveries", ledger.TypeNoticeDelivery, ledger.Sender{Internal: true}, ""},
		{"a producer cannot forget a person", ledger.TypeSubjectForgotten, ledger.Sender{}, ledger.ReasonConflict},
		{"a recipient cannot forget a person", ledger.TypeSubjectForgotten, ledger.Sender{Recipient: "acro"}, ledger.ReasonConflict},
		{"sharelog forgets", ledger.TypeSubjectForgotten, ledger.Sender{Internal: true}, ""},
		{"acks come from a recipient", ledger.TypeNoticeAck, ledger.Sender{}, ledger.ReasonWrongRecipient},
		{"a recipient acks", ledger.TypeNoticeAck, ledger.Sender{Recipient: "acro"}, ""},
		{"producers send disclosures", ledger.TypeDisclosure, ledger.Sender{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got ledger.Reason
			if err := ledger.MaySend(tt.typ, tt.sender); err != nil {
				got = err.Reason()
			}
			if got != tt.want {
				t.Errorf("MaySend(%s, %+v) = %q, want %q", tt.typ, tt.sender, got, tt.want)
			}
		})
	}
}
