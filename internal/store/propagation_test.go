package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/vocab"
)

// rcp registers a recipient with a channel, regime and SLA.
func rcp(tb testing.TB, id, channel, regime string, sla int) *ledger.Event {
	ch := ledger.Channel{Type: channel}
	if channel == "webhook" {
		ch.URL = "https://" + id + ".example/hook"
	}
	return newEvent(tb, ledger.TypeRecipient, "admin", "rcp-"+id, &ledger.Recipient{
		ID: id, Name: strings.ToUpper(id), Role: ledger.RoleController, Regime: regime, Channel: ch, SLADays: sla,
	})
}

func erasure(tb testing.TB, id, request string, s ledger.Subject, decided time.Time, cats ...string) *ledger.Event {
	return newEvent(tb, ledger.TypeErasure, "dpo", id, &ledger.Erasure{RequestHeader: ledger.RequestHeader{Request: request, Subject: s, DecidedAt: decided}, Categories: cats})
}

func ack(tb testing.TB, id, notice, outcome, from string) *ledger.Event {
	ev := newEvent(tb, ledger.TypeNoticeAck, "ack", id, &ledger.NoticeAck{Notice: notice, Outcome: outcome})
	ev.From = from
	return ev
}

func exemption(tb testing.TB, id, notice, reason string) *ledger.Event {
	return newEvent(tb, ledger.TypeExemption, "dpo", id, &ledger.Exemption{Notice: notice, Reason: reason, Justification: "why", DecidedBy: "dpo@example.org"})
}

func delivery(tb testing.TB, id, notice, outcome string, attempt int, at time.Time, next *time.Time, reminder bool) *ledger.Event {
	ev := newEvent(tb, ledger.TypeNoticeDelivery, "sharelog/notify", id, &ledger.NoticeDelivery{
		Notice: notice, Attempt: attempt, Channel: "nats", Outcome: outcome, At: at, NextAttemptAt: next, Reminder: reminder,
		Error: map[bool]string{true: "", false: "503 from webhook"}[outcome != ledger.DeliveryFailed],
	})
	return internal(ev)
}

// propFixture registers acro (uk-gdpr, manual), police (dpa-part3, nats), cloud
// (webhook) and web (nats), and records disclosures of A1 and B2:
//
//	d1 A1 -> acro   user.contact.email           day 1
//	d2 A1 -> police user.contact (dpa-part3)     day 2
//	d3 A1 -> cloud  user.health_and_medical      day 3
//	d4 B2 -> web    user.contact.email           day 4
//	d5 A1 -> acro   user.financial               day 5
func propFixture(t *testing.T) *Store {
	t.Helper()
	s := openTest(t, testConfig(t))
	s.now = func() time.Time { return day(20) }
	a1 := []ledger.Subject{subj("A1")}
	applyBatch(t, s,
		rcp(t, "acro", "manual", "", 0), rcp(t, "police", "nats", "", 0), rcp(t, "cloud", "webhook", "", 0), rcp(t, "web", "nats", "", 0),
		disc{id: "d1", recipient: "acro", subjects: a1, at: day(1), categories: []string{"user.contact.email"}}.event(t),
		disc{id: "d2", recipient: "police", subjects: a1, at: day(2), categories: []string{"user.contact"}, regime: ledger.RegimeDPAPart3}.event(t),
		disc{id: "d3", recipient: "cloud", subjects: a1, at: day(3), categories: []string{"user.health_and_medical"}}.event(t),
		disc{id: "d4", recipient: "web", subjects: []ledger.Subject{subj("B2")}, at: day(4), categories: []string{"user.contact.email"}}.event(t),
		disc{id: "d5", recipient: "acro", subjects: a1, at: day(5), categories: []string{"user.financial"}}.event(t),
	)
	return s
}

// told summarises one obligation for comparison.
type told struct {
	recipient, notice  string
	categories, discls []string
}

func toldOf(st *ledger.RequestStatus) []told {
	var out []told
	for _, o := range st.Obligations {
		out = append(out, told{o.Recipient, o.Notice, o.Categories, o.Disclosures})
	}
	return out
}

func mustStatus(t *testing.T, s *Store, request string) *ledger.RequestStatus {
	t.Helper()
	st, err := s.Status(context.Background(), request)
	if err != nil {
		t.Fatalf("Status(%s): %v", request, err)
	}
	return st
}

func TestRequestFanOut(t *testing.T) {
	tests := []struct {
		name    string
		subject ledger.Subject
		cats    []string
		want    []told
	}{
		{
			name: "broad erasure covers narrower disclosures", subject: subj("A1"), cats: []string{"user.contact"},
			want: []told{
				{"acro", ledger.NoticeID("r", "acro"), []string{"user.contact.email"}, []string{"d1"}},
				{"police", ledger.NoticeID("r", "police"), []string{"user.contact"}, []string{"d2"}},
			},
		},
		{
			name: "narrow erasure covers a broader disclosure, naming the narrower key", subject: subj("A1"), cats: []string{"user.contact.email"},
			want: []told{
				{"acro", ledger.NoticeID("r", "acro"), []string{"user.contact.email"}, []string{"d1"}},
				{"police", ledger.NoticeID("r", "police"), []string{"user.contact.email"}, []string{"d2"}},
			},
		},
		{
			name: "no categories means all received", subject: subj("A1"),
			want: []told{
				{"acro", ledger.NoticeID("r", "acro"), []string{"user.contact.email", "user.financial"}, []string{"d1", "d5"}},
				{"cloud", ledger.NoticeID("r", "cloud"), []string{"user.health_and_medical"}, []string{"d3"}},
				{"police", ledger.NoticeID("r", "police"), []string{"user.contact"}, []string{"d2"}},
			},
		},
		{name: "categories nobody received", subject: subj("A1"), cats: []string{"user.criminal_history"}},
		{name: "sibling category is not covered", subject: subj("A1"), cats: []string{"user.contact.address", "user.financial.bank_account"},
			want: []told{
				{"acro", ledger.NoticeID("r", "acro"), []string{"user.financial.bank_account"}, []string{"d5"}},
				{"police", ledger.NoticeID("r", "police"), []string{"user.contact.address"}, []string{"d2"}},
			}},
		{name: "unknown subject: accepted, nobody to tell", subject: subj("NOBODY")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := propFixture(t)
			got := applyBatch(t, s, erasure(t, "e1", "r", tt.subject, day(10), tt.cats...))
			if !slices.Equal(got, []ledger.Outcome{ledger.Recorded}) {
				t.Fatalf("outcome = %v, want recorded", got)
			}
			st := mustStatus(t, s, "r")
			if g := toldOf(st); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("obligations:\n got %v\nwant %v", g, tt.want)
			}
			if st.Type != ledger.TypeErasure || st.Action != ledger.ActionErase || !st.DecidedAt.Equal(day(10)) || !slices.Equal(st.Categories, tt.cats) {
				t.Errorf("status header = %+v", st)
			}
			for _, o := range st.Obligations {
				if o.State != ledger.StatePending || o.Attempts != 0 || !o.OpenedAt.Equal(day(20)) || o.Name != strings.ToUpper(o.Recipient) {
					t.Errorf("obligation %s = %+v, want pending, opened day 20", o.Recipient, o)
				}
			}
		})
	}
}

func TestObligationRegimeAndDue(t *testing.T) {
	s := openTest(t, Config{
		Dir: testConfig(t).Dir, KeyFile: t.TempDir() + "/k",
		Deadlines: ledger.Deadlines{Regimes: map[string]ledger.Deadline{ledger.RegimeDPAPart3: {Days: 14}, ledger.RegimeEUGDPR: {Months: 2}}},
	})
	a1 := []ledger.Subject{subj("A1")}
	applyBatch(t, s,
		rcp(t, "acro", "nats", "", 0), rcp(t, "police", "nats", ledger.RegimeDPAPart3, 0), rcp(t, "fast", "nats", "", 5), rcp(t, "slow", "nats", "", 60), rcp(t, "eu", "nats", "", 0),
		disc{id: "d1", recipient: "acro", subjects: a1, at: day(1)}.event(t),
		disc{id: "d2", recipient: "police", subjects: a1, at: day(1)}.event(t),
		disc{id: "d3", recipient: "fast", subjects: a1, at: day(1)}.event(t),
		disc{id: "d4", recipient: "slow", subjects: a1, at: day(1)}.event(t),
		disc{id: "d5", recipient: "eu", subjects: a1, at: day(1), regime: ledger.RegimeEUGDPR}.event(t),
		erasure(t, "e1", "r", subj("A1"), time.Date(2025, 1, 31, 9, 30, 0, 0, time.UTC)),
	)
	want := map[string]struct {
		regime string
		due    time.Time
	}{
		"acro":   {ledger.RegimeUKGDPR, time.Date(2025, 2, 28, 9, 30, 0, 0, time.UTC)},   // 31 Jan + 1 month
		"police": {ledger.RegimeDPAPart3, time.Date(2025, 2, 14, 9, 30, 0, 0, time.UTC)}, // recipient's regime, 14 days
		"fast":   {ledger.RegimeUKGDPR, time.Date(2025, 2, 5, 9, 30, 0, 0, time.UTC)},    // SLA earlier
		"slow":   {ledger.RegimeUKGDPR, time.Date(2025, 2, 28, 9, 30, 0, 0, time.UTC)},   // SLA later: the month holds
		"eu":     {ledger.RegimeEUGDPR, time.Date(2025, 3, 31, 9, 30, 0, 0, time.UTC)},   // disclosure's regime, 2 months
	}
	st := mustStatus(t, s, "r")
	if len(st.Obligations) != len(want) {
		t.Fatalf("%d obligations, want %d", len(st.Obligations), len(want))
	}
	for _, o := range st.Obligations {
		w := want[o.Recipient]
		if o.Regime != w.regime || !o.Due.Equal(w.due) {
			t.Errorf("%s: regime %q due %v, want %q %v", o.Recipient, o.Regime, o.Due, w.regime, w.due)
		}
	}
}

// notices returns the notices in the manual queue and due for delivery,
// decoded, by recipient.
func notices(t *testing.T, s *Store) map[string]ledger.Notice {
	t.Helper()
	ctx := context.Background()
	due, err := s.DueNotices(ctx, s.now(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	manual, err := s.ManualQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ledger.Notice{}
	for _, n := range append(due, manual...) {
		var ev struct {
			Data ledger.Notice `json:"data"`
		}
		if err := json.Unmarshal(n.Event, &ev); err != nil {
			t.Fatal(err)
		}
		out[n.Obligation.Recipient] = ev.Data
	}
	return out
}

func TestRectificationChangesFiltered(t *testing.T) {
	s := propFixture(t)
	changes := []ledger.Change{
		{Category: "user.contact.email", Field: "email", Value: "new@example.org"},
		{Category: "user.contact.address", Field: "postcode", Value: "OX1 1AA"},
		{Category: "user.contact", Field: "preferred", Value: "post"},
		{Category: "user.health_and_medical", Field: "condition", Value: "x"},
	}
	applyBatch(t, s, newEvent(t, ledger.TypeRectification, "dpo", "rect1", &ledger.Rectification{RequestHeader: ledger.RequestHeader{Request: "rq", Subject: subj("A1"), DecidedAt: day(10)}, Categories: []string{"user.contact"}, Changes: changes}))
	got := notices(t, s)
	fields := func(n ledger.Notice) []string {
		var f []string
		for _, c := range n.Changes {
			f = append(f, c.Field)
		}
		return f
	}
	// acro received only user.contact.email: not the postcode, not the
	// broader user.contact change, not health. police received user.contact.
	want := map[string][]string{"acro": {"email"}, "police": {"email", "postcode", "preferred"}}
	if len(got) != len(want) {
		t.Fatalf("notices to %v, want acro and police", slices.Sorted(func(yield func(string) bool) {
			for k := range got {
				if !yield(k) {
					return
				}
			}
		}))
	}
	for r, w := range want {
		n := got[r]
		if f := fields(n); !slices.Equal(f, w) {
			t.Errorf("%s changes = %v, want %v", r, f, w)
		}
		if n.Action != ledger.ActionRectify || n.Request != "rq" || n.Subject != subj("A1") || n.Notice != ledger.NoticeID("rq", r) {
			t.Errorf("%s notice = %+v", r, n)
		}
	}
	if !slices.Equal(got["acro"].Categories, []string{"user.contact.email"}) || !slices.Equal(got["acro"].Disclosures, []string{"d1"}) {
		t.Errorf("acro notice carries %v %v, want only what it received", got["acro"].Categories, got["acro"].Disclosures)
	}
}

func TestNoticeIDs(t *testing.T) {
	re := regexp.MustCompile(`^ntc-[0-9a-f]{20}$`)
	seen := map[string]string{}
	for i := range 200 {
		for _, r := range []string{"acro", "police", "cloud", "web", "acro-2"} {
			id := ledger.NoticeID(fmt.Sprintf("REQ-%d", i), r)
			if !re.MatchString(id) {
				t.Fatalf("NoticeID = %q, want ntc- and 20 hex digits", id)
			}
			if ledger.NoticeID(fmt.Sprintf("REQ-%d", i), r) != id {
				t.Fatalf("NoticeID is not stable")
			}
			key := fmt.Sprintf("REQ-%d/%s", i, r)
			if prev, ok := seen[id]; ok {
				t.Fatalf("ledger.NoticeID(%s) = ledger.NoticeID(%s)", key, prev)
			}
			seen[id] = key
		}
	}
	if ledger.NoticeID("ab", "c") == ledger.NoticeID("a", "bc") {
		t.Error("the separator does not separate")
	}
}

// reasonOf returns the reason and detail of a rejection.
func reasonOf(t *testing.T, err error) (ledger.Reason, string) {
	t.Helper()
	var ie *ledger.InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("error = %T %v, want *ledger.InvalidError", err, err)
	}
	return ie.Reason(), ie.Error()
}

// internal marks ev as the ingest loop marks events on sharelog.in.notify.
func internal(ev *ledger.Event) *ledger.Event {
	ev.Internal = true
	return ev
}

// applyOne appends one event in its own batch and returns the outcome and error.
func applyOne(t *testing.T, s *Store, ev *ledger.Event) (ledger.Outcome, error) {
	t.Helper()
	b := s.Begin()
	defer b.Discard()
	seq := s.Applied() + 1
	o, err := b.Append(seq, ev)
	if o != ledger.Rejected && err != nil {
		t.Fatalf("Append(%s): %v", ev.ID, err)
	}
	if err := b.Commit(seq); err != nil {
		t.Fatal(err)
	}
	return o, err
}

func TestSameRequestTwice(t *testing.T) {
	s := propFixture(t)
	ev := erasure(t, "e1", "r", subj("A1"), day(10), "user.contact")
	applyBatch(t, s, ev)
	before := mustStatus(t, s, "r")
	count := s.Count()

	if o, _ := applyOne(t, s, ev); o != ledger.Duplicate {
		t.Errorf("same event again = %v, want duplicate", o)
	}
	tests := []struct {
		name string
		ev   *ledger.Event
		want string
	}{
		{"same request, new event", erasure(t, "e2", "r", subj("A1"), day(11)),
			`data.request: request "r" is already recorded (entry 10); it opened its obligations then and opens none again`},
		{"same request id, another type", newEvent(t, ledger.TypeRestriction, "dpo", "x1", &ledger.Restriction{RequestHeader: ledger.RequestHeader{Request: "r", Subject: subj("A1"), DecidedAt: day(11)}}),
			`data.request: request "r" is already recorded as a org.sharelog.erasure.v1 (entry 10); a request id names one request`},
	}
	for _, tt := range tests {
		o, err := applyOne(t, s, tt.ev)
		if o != ledger.Rejected {
			t.Fatalf("%s: outcome %v, want rejected", tt.name, o)
		}
		if reason, detail := reasonOf(t, err); reason != ledger.ReasonConflict || detail != tt.want {
			t.Errorf("%s: %s %q, want conflict %q", tt.name, reason, detail, tt.want)
		}
	}
	if s.Count() != count {
		t.Errorf("Count = %d, want %d", s.Count(), count)
	}
	if after := mustStatus(t, s, "r"); !reflect.DeepEqual(after, before) {
		t.Errorf("status changed:\n%+v\n%+v", after, before)
	}
}

func TestAckRules(t *testing.T) {
	s := propFixture(t)
	applyBatch(t, s, erasure(t, "e1", "r", subj("A1"), day(10), "user.contact"))
	acro, police := ledger.NoticeID("r", "acro"), ledger.NoticeID("r", "police")
	applyBatch(t, s, exemption(t, "x1", police, "impossible"))

	steps := []struct {
		name   string
		ev     *ledger.Event
		reason ledger.Reason // "" for recorded
		detail string
	}{
		{"unknown notice", ack(t, "a1", "ntc-00000000000000000000", "done", "acro"), ledger.ReasonUnknownNotice,
			`data.notice: notice "ntc-00000000000000000000" is not in the ledger`},
		{"not vouched for by the transport", ack(t, "a2", acro, "done", ""), ledger.ReasonWrongRecipient,
			`data.notice: notice "` + acro + `" went to recipient "acro"; this acknowledgement came from no recipient (it did not arrive on sharelog.in.ack.<recipient>)`},
		{"from another recipient", ack(t, "a3", acro, "done", "police"), ledger.ReasonWrongRecipient,
			`data.notice: notice "` + acro + `" went to recipient "acro"; this acknowledgement came from recipient "police"`},
		{"from the recipient", ack(t, "a4", acro, "not-held", "acro"), "", ""},
		{"after the obligation closed", ack(t, "a5", acro, "done", "acro"), ledger.ReasonConflict,
			`data.notice: obligation "` + acro + `" is already closed (acknowledged)`},
		{"after an exemption", ack(t, "a6", police, "done", "police"), ledger.ReasonConflict,
			`data.notice: obligation "` + police + `" is already closed (exempted)`},
	}
	for _, st := range steps {
		count := s.Count()
		o, err := applyOne(t, s, st.ev)
		if st.reason == "" {
			if o != ledger.Recorded {
				t.Fatalf("%s: outcome %v (%v), want recorded", st.name, o, err)
			}
			continue
		}
		if o != ledger.Rejected {
			t.Fatalf("%s: outcome %v, want rejected", st.name, o)
		}
		if reason, detail := reasonOf(t, err); reason != st.reason || detail != st.detail {
			t.Errorf("%s:\n got %s %q\nwant %s %q", st.name, reason, detail, st.reason, st.detail)
		}
		if s.Count() != count {
			t.Errorf("%s: a rejected event changed the ledger", st.name)
		}
	}
	o, err := s.Obligation(context.Background(), acro)
	if err != nil {
		t.Fatal(err)
	}
	if o.State != ledger.StateAcknowledged || o.Outcome != "not-held" || o.AcknowledgedAt == nil || !o.AcknowledgedAt.Equal(day(20)) || o.Open() {
		t.Errorf("acknowledged obligation = %+v", o)
	}
	if _, err := s.Obligation(context.Background(), "ntc-nope"); ledger.ErrorCode(err) != ledger.ENOTFOUND {
		t.Errorf("Obligation(unknown) error = %v, want not_found", err)
	}
}

func TestExemptionRules(t *testing.T) {
	s := propFixture(t)
	// police's disclosure was under dpa-part3; acro's under uk-gdpr. A second
	// request under dpa-part3 makes acro's obligation Part 3 as well.
	applyBatch(t, s, erasure(t, "e1", "r", subj("A1"), day(10), "user.contact"),
		newEvent(t, ledger.TypeRectification, "dpo", "rc1", &ledger.Rectification{RequestHeader: ledger.RequestHeader{Request: "r3", Subject: subj("A1"), DecidedAt: day(10)}, Regime: ledger.RegimeDPAPart3}))
	acro, police, acro3 := ledger.NoticeID("r", "acro"), ledger.NoticeID("r", "police"), ledger.NoticeID("r3", "acro")
	s48 := "s.48 requires every recipient to be told and has no disproportionate-effort exception"
	steps := []struct {
		name   string
		ev     *ledger.Event
		reason ledger.Reason
		detail string
	}{
		{"unknown notice", exemption(t, "x1", "ntc-nope", "impossible"), ledger.ReasonUnknownNotice, `data.notice: notice "ntc-nope" is not in the ledger`},
		{"disproportionate effort, disclosure under Part 3", exemption(t, "x2", police, "disproportionate-effort"), ledger.ReasonExemptionRefused,
			`data.reason: notice "` + police + `" is under DPA 2018 Part 3: ` + s48},
		{"disproportionate effort, request under Part 3", exemption(t, "x3", acro3, "disproportionate-effort"), ledger.ReasonExemptionRefused,
			`data.reason: notice "` + acro3 + `" is under DPA 2018 Part 3: ` + s48},
		{"impossible under Part 3", exemption(t, "x4", police, "impossible"), "", ""},
		{"disproportionate effort under UK GDPR", exemption(t, "x5", acro, "disproportionate-effort"), "", ""},
		{"closed", exemption(t, "x6", acro, "other"), ledger.ReasonConflict, `data.notice: obligation "` + acro + `" is already closed (exempted)`},
	}
	for _, st := range steps {
		o, err := applyOne(t, s, st.ev)
		if st.reason == "" {
			if o != ledger.Recorded {
				t.Fatalf("%s: outcome %v (%v), want recorded", st.name, o, err)
			}
			continue
		}
		if reason, detail := reasonOf(t, err); o != ledger.Rejected || reason != st.reason || detail != st.detail {
			t.Errorf("%s:\n got %v %s %q\nwant rejected %s %q", st.name, o, reason, detail, st.reason, st.detail)
		}
	}
	st := mustStatus(t, s, "r")
	for _, o := range st.Obligations {
		if o.State != ledger.StateExempted || o.Exemption == nil || o.ExemptedAt == nil || o.Exemption.DecidedBy != "dpo@example.org" {
			t.Errorf("%s = %+v, want exempted with its exemption", o.Recipient, o)
		}
	}
	if r := st.Obligations[1].Exemption.Reason; r != "impossible" {
		t.Errorf("police exemption reason = %q", r)
	}
}

func TestLiftingPropagation(t *testing.T) {
	s := propFixture(t)
	applyBatch(t, s,
		newEvent(t, ledger.TypeRestriction, "dpo", "res1", &ledger.Restriction{RequestHeader: ledger.RequestHeader{Request: "R", Subject: subj("A1"), DecidedAt: day(10)}, Categories: []string{"user.contact"}}),
		newEvent(t, ledger.TypeRestriction, "dpo", "res2", &ledger.Restriction{RequestHeader: ledger.RequestHeader{Request: "R2", Subject: subj("A1"), DecidedAt: day(10)}}),
		// Disclosed to cloud after the restriction: cloud was never told of it.
		disc{id: "d9", recipient: "cloud", subjects: []ledger.Subject{subj("A1")}, at: day(11), categories: []string{"user.contact.email"}}.event(t),
		exemption(t, "x1", ledger.NoticeID("R2", "cloud"), "impossible"),
	)
	lift := func(id, request, restriction string, sub ledger.Subject) *ledger.Event {
		return newEvent(t, ledger.TypeRestrictionLifted, "dpo", id, &ledger.RestrictionLifted{RequestHeader: ledger.RequestHeader{Request: request, Subject: sub, DecidedAt: day(15)}, Restriction: restriction, SubjectInformedAt: ptrTime(day(14))})
	}
	rejects := []struct {
		name   string
		ev     *ledger.Event
		reason ledger.Reason
		detail string
	}{
		{"unknown restriction", lift("l0", "L0", "NOPE", subj("A1")), ledger.ReasonUnknownRequest, `data.restriction: restriction "NOPE" is not in the ledger`},
		{"not a restriction", lift("l1", "L1", "E", subj("A1")), ledger.ReasonUnknownRequest, `data.restriction: request "E" is a org.sharelog.erasure.v1, not a restriction`},
		{"another subject", lift("l2", "L2", "R", subj("B2")), ledger.ReasonConflict, `data.subject: the subject is not the subject of restriction "R"`},
	}
	applyBatch(t, s, erasure(t, "e1", "E", subj("A1"), day(12)))
	for _, tt := range rejects {
		o, err := applyOne(t, s, tt.ev)
		if reason, detail := reasonOf(t, err); o != ledger.Rejected || reason != tt.reason || detail != tt.detail {
			t.Errorf("%s: got %v %s %q, want rejected %s %q", tt.name, o, reason, detail, tt.reason, tt.detail)
		}
	}

	if o, err := applyOne(t, s, lift("l3", "L", "R", subj("A1"))); o != ledger.Recorded {
		t.Fatalf("lifting: %v %v", o, err)
	}
	want := []told{
		{"acro", ledger.NoticeID("L", "acro"), []string{"user.contact.email"}, []string{"d1"}},
		{"police", ledger.NoticeID("L", "police"), []string{"user.contact"}, []string{"d2"}},
	}
	st := mustStatus(t, s, "L")
	if g := toldOf(st); !reflect.DeepEqual(g, want) {
		t.Errorf("lifting told:\n got %v\nwant %v", g, want)
	}
	if st.Action != ledger.ActionLiftRestriction || !slices.Equal(st.Categories, []string{"user.contact"}) {
		t.Errorf("lifting status = %+v", st)
	}
	ns, err := s.DueNotices(context.Background(), s.now(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range ns {
		if n.Obligation.Notice != ledger.NoticeID("L", "police") {
			continue
		}
		found = true
		var ev struct{ Data ledger.Notice }
		if err := json.Unmarshal(n.Event, &ev); err != nil {
			t.Fatal(err)
		}
		if d := ev.Data; d.Action != ledger.ActionLiftRestriction || d.Request != "L" || d.Subject != subj("A1") || !slices.Equal(d.Disclosures, []string{"d2"}) {
			t.Errorf("police lifting notice = %+v", d)
		}
	}
	if !found {
		t.Error("no lifting notice due for police")
	}
	if o, err := applyOne(t, s, lift("l4", "L4", "R", subj("A1"))); o != ledger.Rejected || !strings.Contains(err.Error(), `restriction "R" was already lifted by request "L"`) {
		t.Errorf("second lifting: %v %v", o, err)
	}
	// An exempted recipient of the restriction is not told of its lifting.
	applyOne(t, s, lift("l5", "L5", "R2", subj("A1")))
	var got []string
	for _, o := range mustStatus(t, s, "L5").Obligations {
		got = append(got, o.Recipient)
	}
	if want := []string{"acro", "police"}; !slices.Equal(got, want) {
		t.Errorf("lifting of R2 told %v, want %v (cloud was exempted)", got, want)
	}
}

func TestAfterErasureFlag(t *testing.T) {
	ctx := context.Background()
	s := propFixture(t)
	a1 := []ledger.Subject{subj("A1")}
	applyBatch(t, s, erasure(t, "e1", "E", subj("A1"), day(10), "user.contact"))
	got := applyBatch(t, s,
		disc{id: "late", recipient: "acro", subjects: a1, at: day(11), categories: []string{"user.contact.email"}}.event(t),
		disc{id: "other-data", recipient: "acro", subjects: a1, at: day(11), categories: []string{"user.financial"}}.event(t),
		disc{id: "backdated", recipient: "acro", subjects: a1, at: day(9), categories: []string{"user.contact.email"}}.event(t),
		disc{id: "other-person", recipient: "acro", subjects: []ledger.Subject{subj("B2")}, at: day(11), categories: []string{"user.contact.email"}}.event(t),
		disc{id: "new-recipient", recipient: "web", subjects: a1, at: day(12), categories: []string{"user.contact"}}.event(t),
	)
	for _, o := range got {
		if o != ledger.Recorded {
			t.Fatalf("outcomes = %v, want all recorded", got)
		}
	}
	want := map[string]string{"late": "E", "other-data": "", "backdated": "", "other-person": "", "new-recipient": "E"}
	for id, w := range want {
		d, err := s.Disclosure(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if d.AfterErasure != w {
			t.Errorf("%s: AfterErasure = %q, want %q", id, d.AfterErasure, w)
		}
	}
	who, err := s.Who(ctx, subj("A1"))
	if err != nil {
		t.Fatal(err)
	}
	flagged := map[string]int{}
	for _, r := range who.Recipients {
		flagged[r.Recipient] = r.DisclosedAfterErasure
	}
	if w := map[string]int{"acro": 1, "police": 0, "cloud": 0, "web": 1}; !reflect.DeepEqual(flagged, w) {
		t.Errorf("DisclosedAfterErasure = %v, want %v", flagged, w)
	}
	page, err := s.Disclosures(ctx, ledger.DisclosureFilter{Recipient: "web", Since: day(5)})
	if err != nil || len(page.Disclosures) != 1 || page.Disclosures[0].AfterErasure != "E" {
		t.Errorf("Disclosures(web) = %+v, %v; want the flagged disclosure", page, err)
	}
}

func TestDueNoticesAndDeliveries(t *testing.T) {
	ctx := context.Background()
	s := propFixture(t)
	applyBatch(t, s, erasure(t, "e1", "E", subj("A1"), day(10)))
	s.now = func() time.Time { return day(21) }
	applyBatch(t, s, erasure(t, "e2", "E2", subj("B2"), day(10)))
	acro, police, cloud, web := ledger.NoticeID("E", "acro"), ledger.NoticeID("E", "police"), ledger.NoticeID("E", "cloud"), ledger.NoticeID("E2", "web")

	dueIDs := func(now time.Time, remind time.Duration, limit int) []string {
		t.Helper()
		ns, err := s.DueNotices(ctx, now, remind, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range ns {
			id := n.Obligation.Notice
			if n.Reminder {
				id += "!"
			}
			out = append(out, id)
		}
		return out
	}
	// Never attempted, in (OpenedAt, Notice) order; acro is manual.
	byNotice := []string{cloud, police}
	slices.Sort(byNotice)
	if got, want := dueIDs(day(21), 0, 10), append(byNotice, web); !slices.Equal(got, want) {
		t.Errorf("due = %v, want %v", got, want)
	}
	if got := dueIDs(day(21), 0, 1); !slices.Equal(got, byNotice[:1]) {
		t.Errorf("due with limit 1 = %v, want %v", got, byNotice[:1])
	}
	mq, err := s.ManualQueue(ctx)
	if err != nil || len(mq) != 1 || mq[0].Obligation.Notice != acro {
		t.Fatalf("ManualQueue = %+v, %v; want acro's notice", mq, err)
	}

	// The event is a valid org.sharelog.notice.v1 CloudEvent.
	voc, err := vocab.Load()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := cloudevents.NewDecoder(voc)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dec.DecodeStructured(mq[0].Event)
	if err != nil {
		t.Fatalf("notice event does not validate: %v\n%s", err, mq[0].Event)
	}
	if ev.ID != acro || ev.Source != "sharelog" || ev.Type != ledger.TypeNotice || !ev.Time.Equal(day(20)) {
		t.Errorf("notice event context = %+v", ev)
	}
	n := ev.Data.(*ledger.Notice)
	if n.Notice != acro || n.Action != ledger.ActionErase || !n.Due.Equal(time.Date(2025, 2, 10, 0, 0, 0, 0, time.UTC)) ||
		!slices.Equal(n.Disclosures, []string{"d1", "d5"}) {
		t.Errorf("notice = %+v", n)
	}

	next := day(22)
	long := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	applyBatch(t, s,
		delivery(t, "dl1", police, ledger.DeliveryFailed, 1, day(21), &next, false),
		delivery(t, "dl2", cloud, ledger.DeliveryFailed, 1, day(21), nil, false), // given up
		delivery(t, "dl3", web, ledger.DeliveryDelivered, 1, day(21), nil, false),
		internal(newEvent(t, ledger.TypeNoticeDelivery, "sharelog/notify", "dl4", &ledger.NoticeDelivery{Notice: acro, Attempt: 1, Channel: "manual", Outcome: ledger.DeliverySent, At: day(21), SentBy: "clerk"})),
	)
	if got := dueIDs(day(21), 0, 10); len(got) != 0 {
		t.Errorf("due right after the attempts = %v, want none", got)
	}
	if got := dueIDs(day(22), 0, 10); !slices.Equal(got, []string{police}) {
		t.Errorf("due at NextAttemptAt = %v, want police", got)
	}
	if mq, _ := s.ManualQueue(ctx); len(mq) != 0 {
		t.Errorf("ManualQueue after sent = %v, want empty", mq)
	}
	o, _ := s.Obligation(ctx, police)
	if o.State != ledger.StatePending || o.Attempts != 1 || o.LastError != "503 from webhook" || o.NextAttemptAt == nil || !o.NextAttemptAt.Equal(next) {
		t.Errorf("failed obligation = %+v", o)
	}
	o, _ = s.Obligation(ctx, web)
	if o.State != ledger.StateDelivered || o.DeliveredAt == nil || !o.DeliveredAt.Equal(day(21)) || o.LastError != "" {
		t.Errorf("delivered obligation = %+v", o)
	}
	o, _ = s.Obligation(ctx, acro)
	if o.State != ledger.StateDelivered || o.Attempts != 1 {
		t.Errorf("sent obligation = %+v", o)
	}

	// Overdue (due 10 Feb): delivered ones get a reminder when remindEvery
	// has passed since the last attempt.
	if got := dueIDs(long, 0, 10); !slices.Equal(got, []string{police}) {
		t.Errorf("overdue, no reminders = %v, want police", got)
	}
	if got := dueIDs(long, 7*24*time.Hour, 10); !slices.Equal(got, []string{police, web + "!"}) {
		t.Errorf("overdue with reminders = %v, want police and a reminder to web (manual acro never)", got)
	}
	applyBatch(t, s, delivery(t, "dl5", web, ledger.DeliveryDelivered, 2, long.Add(-time.Hour), nil, true))
	if got := dueIDs(long, 7*24*time.Hour, 10); !slices.Equal(got, []string{police}) {
		t.Errorf("after a reminder = %v, want police", got)
	}
	o, _ = s.Obligation(ctx, web)
	if o.Attempts != 2 || o.Reminders != 1 || !o.DeliveredAt.Equal(day(21)) {
		t.Errorf("reminded obligation = %+v", o)
	}

	// A delivery for an unknown notice is refused; one for a closed
	// obligation is recorded and changes nothing.
	if o, err := applyOne(t, s, delivery(t, "dl6", "ntc-nope", ledger.DeliveryDelivered, 1, day(22), nil, false)); o != ledger.Rejected {
		t.Errorf("delivery for unknown notice: %v %v", o, err)
	} else if r, _ := reasonOf(t, err); r != ledger.ReasonUnknownNotice {
		t.Errorf("reason = %s", r)
	}
	// A delivery record from outside sharelog (not on sharelog.in.notify),
	// and a notice published by a producer, are refused: they would forge
	// the evidence that a recipient was told.
	forged := delivery(t, "dl-forged", police, ledger.DeliveryDelivered, 2, day(22), nil, false)
	forged.Internal = false
	if o, err := applyOne(t, s, forged); o != ledger.Rejected {
		t.Errorf("forged delivery: %v %v", o, err)
	} else if r, _ := reasonOf(t, err); r != ledger.ReasonConflict {
		t.Errorf("forged delivery reason = %s", r)
	}
	if got, _ := s.Obligation(ctx, police); got.State == ledger.StateDelivered {
		t.Errorf("forged delivery changed the obligation: %+v", got)
	}
	notice := newEvent(t, ledger.TypeNotice, "producer", "n-forged", &ledger.Notice{Notice: police, Action: ledger.ActionErase,
		Request: "E1", Subject: subj("A1"), Categories: []string{"user.name"}, Disclosures: []string{"d1"}, Due: day(40)})
	if o, err := applyOne(t, s, notice); o != ledger.Rejected {
		t.Errorf("notice from a producer: %v %v", o, err)
	}

	applyBatch(t, s, ack(t, "a1", web, "done", "web"))
	before, _ := s.Obligation(ctx, web)
	if o, err := applyOne(t, s, delivery(t, "dl7", web, ledger.DeliveryFailed, 3, day(23), &next, true)); o != ledger.Recorded {
		t.Errorf("delivery for closed obligation: %v %v", o, err)
	}
	after, _ := s.Obligation(ctx, web)
	if !reflect.DeepEqual(before, after) || after.State != ledger.StateAcknowledged {
		t.Errorf("closed obligation changed:\n%+v\n%+v", before, after)
	}
	if got := dueIDs(long, 7*24*time.Hour, 10); !slices.Equal(got, []string{police}) {
		t.Errorf("after ack = %v, want police", got)
	}
}

func TestObligationsQuery(t *testing.T) {
	ctx := context.Background()
	s := propFixture(t)
	s.deadlines = ledger.Deadlines{Regimes: map[string]ledger.Deadline{ledger.RegimeDPAPart3: {Days: 5}}}
	applyBatch(t, s, erasure(t, "e1", "E", subj("A1"), day(10)))
	// Due: police 15 Jan (Part 3, 5 days); acro and cloud 10 Feb.
	applyBatch(t, s, ack(t, "a1", ledger.NoticeID("E", "cloud"), "done", "cloud"))
	s.now = func() time.Time { return day(20) }

	list := func(f ledger.ObligationFilter) []string {
		t.Helper()
		l, err := s.Obligations(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range l.Obligations {
			out = append(out, o.Recipient)
		}
		return out
	}
	// acro and cloud are both due 10 Feb: in notice order.
	feb := []string{"acro", "cloud"}
	if ledger.NoticeID("E", "cloud") < ledger.NoticeID("E", "acro") {
		feb = []string{"cloud", "acro"}
	}
	tests := []struct {
		f    ledger.ObligationFilter
		want []string
	}{
		{ledger.ObligationFilter{}, append([]string{"police"}, feb...)},
		{ledger.ObligationFilter{Overdue: true}, []string{"police"}},
		{ledger.ObligationFilter{Recipient: "acro"}, []string{"acro"}},
		{ledger.ObligationFilter{State: ledger.StateAcknowledged}, []string{"cloud"}},
		{ledger.ObligationFilter{Overdue: true, Recipient: "acro"}, nil},
	}
	for _, tt := range tests {
		if got := list(tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("Obligations(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
	l, err := s.Obligations(ctx, ledger.ObligationFilter{Limit: 1})
	if err != nil || len(l.Obligations) != 1 || !l.More {
		t.Errorf("limit 1 = %+v, %v", l, err)
	}
	if _, err := s.Obligations(ctx, ledger.ObligationFilter{State: "late"}); ledger.ErrorCode(err) != ledger.EINVALID {
		t.Errorf("bad state error = %v", err)
	}
	open, overdue, err := s.ObligationCounts(ctx)
	if err != nil || open != 2 || overdue != 1 {
		t.Errorf("ObligationCounts = %d, %d, %v; want 2, 1", open, overdue, err)
	}
	st := mustStatus(t, s, "E")
	if !st.Obligations[2].Overdue || st.Obligations[0].Overdue || st.Obligations[0].Recipient != "acro" {
		t.Errorf("overdue in status = %+v", st.Obligations)
	}
	if _, err := s.Status(ctx, "NOPE"); ledger.ErrorCode(err) != ledger.ENOTFOUND {
		t.Errorf("Status(unknown) = %v, want not_found", err)
	}
	who, err := s.Who(ctx, subj("A1"))
	if err != nil {
		t.Fatal(err)
	}
	open1 := map[string]int{}
	for _, r := range who.Recipients {
		open1[r.Recipient] = r.OpenObligations
	}
	if w := map[string]int{"acro": 1, "police": 1, "cloud": 0}; !reflect.DeepEqual(open1, w) {
		t.Errorf("Who open obligations = %v, want %v", open1, w)
	}
}

func TestSubjectReport(t *testing.T) {
	ctx := context.Background()
	s := propFixture(t)
	applyBatch(t, s,
		erasure(t, "e1", "E", subj("A1"), day(10), "user.contact"),
		newEvent(t, ledger.TypeRectification, "dpo", "rc", &ledger.Rectification{RequestHeader: ledger.RequestHeader{Request: "NONE", Subject: subj("A1"), DecidedAt: day(9)}, Categories: []string{"user.criminal_history"}}),
		erasure(t, "e2", "OTHER", subj("B2"), day(10)),
	)
	applyBatch(t, s,
		delivery(t, "dl1", ledger.NoticeID("E", "police"), ledger.DeliveryDelivered, 1, day(21), nil, false),
		ack(t, "a1", ledger.NoticeID("E", "police"), "done", "police"),
		exemption(t, "x1", ledger.NoticeID("E", "acro"), "impossible"),
	)
	rep, err := s.SubjectReport(ctx, subj("A1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Requests) != 2 || rep.Requests[0].Request != "NONE" || len(rep.Requests[0].Recipients) != 0 || rep.Requests[1].Request != "E" {
		t.Fatalf("report = %+v", rep)
	}
	rs := rep.Requests[1].Recipients
	d20, d21 := day(20), day(21)
	due := time.Date(2025, 2, 10, 0, 0, 0, 0, time.UTC)
	want := []ledger.RecipientNotified{
		{Recipient: "acro", Name: "ACRO", Notice: ledger.NoticeID("E", "acro"), State: ledger.StateExempted, Categories: []string{"user.contact.email"},
			Due: due, Exemption: "impossible", ExemptedAt: &d20},
		{Recipient: "police", Name: "POLICE", Notice: ledger.NoticeID("E", "police"), State: ledger.StateAcknowledged, Categories: []string{"user.contact"},
			Due: due, ToldAt: &d21, AcknowledgedAt: &d20, Outcome: "done"},
	}
	if !reflect.DeepEqual(rs, want) {
		t.Errorf("recipients:\n got %+v\nwant %+v", rs, want)
	}
	empty, err := s.SubjectReport(ctx, subj("NOBODY"))
	if err != nil || len(empty.Requests) != 0 {
		t.Errorf("report for unknown subject = %+v, %v", empty, err)
	}
}

// TestRestartIdempotency: a fan-out interrupted before its commit leaves
// nothing; applied again after a restart it opens each obligation once, and
// the same events replayed afterwards open nothing new.
func TestRestartIdempotency(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a1 := []ledger.Subject{subj("A1")}
	setup := []*ledger.Event{
		rcp(t, "acro", "nats", "", 0), rcp(t, "police", "nats", "", 0),
		disc{id: "d1", recipient: "acro", subjects: a1, at: day(1)}.event(t),
		disc{id: "d2", recipient: "police", subjects: a1, at: day(1)}.event(t),
	}
	applyBatch(t, s, setup...)
	er := erasure(t, "e1", "E", subj("A1"), day(10))

	// The crash: the batch holding the erasure never commits.
	b := s.Begin()
	if o, err := b.Append(s.Applied()+1, er); o != ledger.Recorded || err != nil {
		t.Fatalf("Append = %v %v", o, err)
	}
	b.Discard()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, cfg)
	if _, err := s.Status(ctx, "E"); ledger.ErrorCode(err) != ledger.ENOTFOUND {
		t.Fatalf("uncommitted request visible after restart: %v", err)
	}
	applyBatch(t, s, er)
	first := mustStatus(t, s, "E")
	if got := toldOf(first); len(got) != 2 || got[0].notice != ledger.NoticeID("E", "acro") || got[1].notice != ledger.NoticeID("E", "police") {
		t.Fatalf("after restart: %v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, cfg)
	// Replay of the whole input (as after a lost applied position): all duplicates.
	got := applyBatch(t, s, append(setup, er)...)
	for _, o := range got {
		if o != ledger.Duplicate {
			t.Fatalf("replay outcomes = %v, want all duplicate", got)
		}
	}
	if again := mustStatus(t, s, "E"); !reflect.DeepEqual(again, first) {
		t.Errorf("status changed by the replay:\n%+v\n%+v", again, first)
	}
	open, _, err := s.ObligationCounts(ctx)
	if err != nil || open != 2 {
		t.Errorf("open obligations = %d, %v; want 2", open, err)
	}
	ns, err := s.DueNotices(ctx, day(20), 0, 100)
	if err != nil || len(ns) != 2 {
		t.Errorf("due notices = %d, %v; want 2", len(ns), err)
	}
}

// TestObligationsAnswerOverdue: an overdue listing shows obligations past
// the deadline for answering the person (UK GDPR Art. 12(3)) as well as
// those past their own due date: overdue for either clock.
func TestObligationsAnswerOverdue(t *testing.T) {
	ctx := context.Background()
	s := propFixture(t)
	s.deadlines = ledger.Deadlines{Regimes: map[string]ledger.Deadline{ledger.RegimeDPAPart3: {Days: 5}}}
	e := erasure(t, "e1", "E", subj("A1"), day(10))
	received := day(-20) // 11 December 2024: the person is due an answer by the end of 11 January
	e.Data.(*ledger.Erasure).ReceivedAt = &received
	e = newEvent(t, ledger.TypeErasure, "dpo", "e1", e.Data)
	applyBatch(t, s, e)
	// Due: police 15 Jan (Part 3, 5 days); acro and cloud 10 Feb.
	applyBatch(t, s, ack(t, "a1", ledger.NoticeID("E", "cloud"), "done", "cloud"))
	tests := []struct {
		name string
		now  time.Time
		f    ledger.ObligationFilter
		want []string
	}{
		{"Art12(3) before the person's deadline: nothing overdue", day(11), ledger.ObligationFilter{Overdue: true}, nil},
		{"Art12(3) past the person's deadline: every open obligation of the request", day(12), ledger.ObligationFilter{Overdue: true}, []string{"police", "acro"}},
		{"Art19 past police's own due date too, in due order", day(20), ledger.ObligationFilter{Overdue: true}, []string{"police", "acro"}},
		{"one recipient's", day(20), ledger.ObligationFilter{Overdue: true, Recipient: "acro"}, []string{"acro"}},
		{"the limit cuts the merged listing", day(20), ledger.ObligationFilter{Overdue: true, Limit: 1}, []string{"police"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.now = func() time.Time { return tt.now }
			l, err := s.Obligations(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range l.Obligations {
				got = append(got, o.Recipient)
				if o.AnswerDue == nil || !o.AnswerDue.Equal(time.Date(2025, 1, 11, 23, 59, 59, 999999999, time.UTC)) {
					t.Errorf("%s: answer due %v, want the end of 11 January", o.Recipient, o.AnswerDue)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Obligations(%+v) = %v, want %v", tt.f, got, tt.want)
			}
			if tt.f.Limit == 1 && !l.More {
				t.Error("limit 1: More not set")
			}
		})
	}
}
