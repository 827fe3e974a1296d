package ledger_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/ledger/ledgertest"
)

// TestMeaningless: DPA 2018 s.62(1),(3) — the log shows the justification
// and who disclosed; a blank or placeholder value shows neither.
func TestMeaningless(t *testing.T) {
	tests := []struct {
		name string
		v    string
		want bool
	}{
		{"s.62 empty", "", true},
		{"s.62 spaces", "   ", true},
		{"s.62 tabs and newlines", "\t\n ", true},
		{"s.62 n/a in capitals", "N/A", true},
		{"s.62 n/a padded", "  n/a ", true},
		{"s.62 a dash", "-", true},
		{"s.62 tbc", "TBC", true},
		{"s.62 none", "None", true},
		{"s.62 unknown", "unknown", true},
		{"s.62 a question mark", "?", true},
		{"s.62 a person", "PC 4021 Smith", false},
		{"s.62 a system", "disclosure-service", false},
		{"s.62 a justification that contains a placeholder word", "none of the exemptions apply; s.35(2)(b)", false},
		{"s.62 a short real word", "DBS", false},
		{"s.62 unknown with a Kelvin sign, shorter in lower case", "UN\u212aNOWN", true},
		{"s.62 not applicable in capitals", "NOT APPLICABLE", true},
		{"s.62 a long justification", "Enhanced check: PNC search returned a possible match; referred for local police information", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ledger.Meaningless(tt.v); got != tt.want {
				t.Errorf("Meaningless(%q) = %v, want %v", tt.v, got, tt.want)
			}
		})
	}
}

// TestInformedBeforeLifting: UK GDPR Art. 18(3) — the person is informed
// before the restriction is lifted. The same minute is fine when strictly
// before; the same instant is not before.
func TestInformedBeforeLifting(t *testing.T) {
	decided := time.Date(2026, 2, 28, 23, 59, 30, 0, time.UTC)
	tests := []struct {
		name     string
		informed *time.Time
		detail   string // "" when allowed
	}{
		{"Art18(3) not said", nil, "does not say when they were (subjectInformedAt)"},
		{"Art18(3) told a day before", ptr(decided.AddDate(0, 0, -1)), ""},
		{"Art18(3) told earlier the same minute", ptr(decided.Add(-29 * time.Second)), ""},
		{"Art18(3) told a nanosecond before", ptr(decided.Add(-1)), ""},
		{"Art18(3) told at the instant of the decision", ptr(decided), "2026-02-28T23:59:30Z is not before the lifting's decision at 2026-02-28T23:59:30Z"},
		{"Art18(3) told later the same minute", ptr(decided.Add(20 * time.Second)), "is not before"},
		{"Art18(3) told after, across the end of February", ptr(decided.Add(time.Minute)), "2026-03-01T00:00:30Z is not before"},
		{"Art18(3) the same instant in another time zone", ptr(decided.In(time.FixedZone("BST", 3600))), "is not before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ledger.InformedBeforeLifting(&ledger.RestrictionLifted{RequestHeader: ledger.RequestHeader{DecidedAt: decided}, SubjectInformedAt: tt.informed})
			switch {
			case tt.detail == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.detail != "" && (err == nil || !strings.Contains(err.Error(), tt.detail) || !strings.Contains(err.Error(), "Art. 18(3)")):
				t.Errorf("error %v, want one citing Art. 18(3) containing %q", err, tt.detail)
			}
		})
	}
}

// TestProcessorInstruction: UK GDPR Art. 28(3)(a),(g) — a processor acts on
// the controller's documented instructions; Art. 19 notifies controllers,
// who may refuse. Only a processor's refusal leaves the obligation open.
func TestProcessorInstruction(t *testing.T) {
	at := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		instruction bool
		outcome     string
		wantState   string
		escalated   bool
	}{
		{"Art28(3)(a) a processor refuses: open, escalated", true, ledger.OutcomeRefused, ledger.StateDelivered, true},
		{"Art28(3)(g) a processor erased: closed", true, ledger.OutcomeDone, ledger.StateAcknowledged, false},
		{"Art28(3)(g) a processor does not hold it: closed", true, ledger.OutcomeNotHeld, ledger.StateAcknowledged, false},
		{"Art19 a controller refuses: closed, its answer recorded", false, ledger.OutcomeRefused, ledger.StateAcknowledged, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ledger.Obligation{Notice: "n", Recipient: "r", State: ledger.StateDelivered, Instruction: tt.instruction}
			if err := o.Acknowledge(&ledger.NoticeAck{Notice: "n", Outcome: tt.outcome}, "r", at); err != nil {
				t.Fatal(err)
			}
			if o.State != tt.wantState || (o.EscalatedAt != nil) != tt.escalated || o.Outcome != tt.outcome || o.AcknowledgedAt == nil {
				t.Errorf("after %s: state %s, escalated %v, outcome %q; want %s, %v", tt.outcome, o.State, o.EscalatedAt != nil, o.Outcome, tt.wantState, tt.escalated)
			}
			if o.Open() != (tt.wantState != ledger.StateAcknowledged) {
				t.Errorf("Open() = %v", o.Open())
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestHeldErasureNotices: DPA 2018 s.47(2) — the notice of a held erasure
// asks the recipient to restrict and says why (the hold's reason) and until
// when (its review date); after the release the notice to erase carries
// only what the recipient received, with the person's identifier.
func TestHeldErasureNotices(t *testing.T) {
	review := time.Date(2027, 2, 28, 0, 0, 0, 0, time.UTC)
	hold := ledgertest.Event("h", ledger.TypeHold, &ledger.Hold{Hold: "H", Scope: &ledger.HoldScope{Subject: &a1}, Reason: "IICSA moratorium", ReviewAt: &review})
	m := run(t, ledger.Deadlines{}, append(ledgertest.Base(), ledgertest.OK(hold), ledgertest.OK(ledgertest.Erasure("e", "R", a1)))...)
	tests := []struct {
		name   string
		notice string
		action string
		hold   *ledger.NoticeHold
	}{
		{"s.47(2) the held notice restricts, with the hold's reason and review date", ledger.NoticeID("R", "police"), ledger.ActionRestrict, &ledger.NoticeHold{Hold: "H", Reason: "IICSA moratorium", ReviewAt: &review}},
		{"Art17(3)(e) every recipient of the held data restricts", ledger.NoticeID("R", "cloud"), ledger.ActionRestrict, &ledger.NoticeHold{Hold: "H", Reason: "IICSA moratorium", ReviewAt: &review}},
	}
	check := func(tests []struct {
		name   string
		notice string
		action string
		hold   *ledger.NoticeHold
	}) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				n, ok := m.Notice(tt.notice)
				if !ok {
					t.Fatalf("no notice %s", tt.notice)
				}
				if n.Action != tt.action || n.Subject != a1 || !reflect.DeepEqual(n.Hold, tt.hold) {
					t.Errorf("notice %s: action %s, subject ok %v, hold %+v; want %s, %+v", tt.notice, n.Action, n.Subject == a1, n.Hold, tt.action, tt.hold)
				}
				o, _ := m.Obligation(tt.notice)
				if o.Action != n.Action || !n.Due.Equal(o.Due) || !slices.Equal(o.Categories, n.Categories) {
					t.Errorf("notice %+v does not match its obligation %+v", n, o)
				}
			})
		}
	}
	check(tests)
	ledgertest.Run(t, m, m.hash, ledgertest.Scenario{Steps: []ledgertest.Step{ledgertest.OK(ledgertest.Release("rel", "H"))}})
	check([]struct {
		name   string
		notice string
		action string
		hold   *ledger.NoticeHold
	}{
		{"s.47(2) after the release the recipient is told to erase", ledger.AfterHoldNoticeID("R", "police"), ledger.ActionErase, nil},
		{"s.47(2) the held notice stays as it was, as evidence", ledger.NoticeID("R", "police"), ledger.ActionRestrict, &ledger.NoticeHold{Hold: "H", Reason: "IICSA moratorium", ReviewAt: &review}},
	})
	r, _ := m.Request("R")
	if len(r.Notices) != 6 {
		t.Errorf("request R lists %d notices, want the 3 held and the 3 after the release", len(r.Notices))
	}
	if h, _ := m.Hold("H"); !slices.Equal(h.Erasures, []string{"R"}) {
		t.Errorf("hold H records erasures %v, want [R]", h.Erasures)
	}
}

// TestOpensNotices: a plan says when it opens obligations whose notices are
// due at once, so that the dispatcher sends them without waiting for its
// next poll.
func TestOpensNotices(t *testing.T) {
	m := run(t, ledger.Deadlines{}, ledgertest.Base()...)
	b1 := ledgertest.Subject("B1")
	tests := []struct {
		name string
		ev   *ledger.Event
		want bool
	}{
		{"Art. 19: an erasure tells each recipient of the data", ledgertest.Erasure("e1", "R1", a1), true},
		{"Art. 19: a restriction tells each recipient of the data", ledgertest.Restriction("r2", "R2", a1), true},
		{"Art. 19: an erasure of data nobody received tells nobody", ledgertest.Erasure("e3", "R3", b1), false},
		{"a disclosure opens no obligation", ledgertest.Disclosure("d9", "acro", b1, ledger.RegimeDPAPart3, "user.contact.email"), false},
		{"s.47: a hold is placed; nothing is due yet", ledgertest.Hold("h1", "H", &ledger.HoldScope{Subject: &a1}), false},
		{"s.47: an erasure under the hold tells each recipient to restrict", ledgertest.Erasure("e4", "R4", a1), true},
		{"s.47: the hold's release lets the erasure proceed: each recipient is told to erase", ledgertest.Release("rel", "H"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, plan, err := m.MemState.Append(tt.ev, ledgertest.At(40), ledger.Deadlines{})
			if out != ledger.Recorded || plan == nil {
				t.Fatalf("%s: %v, %v", tt.ev.ID, out, err)
			}
			if got := plan.OpensNotices(); got != tt.want {
				t.Errorf("%s opens notices: %v, want %v", tt.ev.ID, got, tt.want)
			}
		})
	}
}
