package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/notify"
)

// lawRecipients registers, by hand, a Part 3 recipient, a processor, an
// inquiry authority (Art. 4(9)) and a competent authority data came from
// (DPA 2018 s.48(7)).
func lawRecipients() []map[string]any {
	role := func(ev map[string]any, role string, inquiry bool) map[string]any {
		d := ev["data"].(map[string]any)
		d["role"] = role
		if inquiry {
			d["inquiryAuthority"] = true
		}
		return ev
	}
	return []map[string]any{
		manualRecipient("acro", "dpa-part3", 0),
		role(manualRecipient("proc", "", 0), ledger.RoleProcessor, false),
		role(manualRecipient("inq", "dpa-part3", 0), ledger.RoleCompetentAuthority, true),
		role(manualRecipient("origin", "dpa-part3", 0), ledger.RoleCompetentAuthority, false),
	}
}

// lifting is an org.sharelog.restriction.lifted.v1 event; informed "" leaves
// subjectInformedAt out.
func lifting(id, request, restriction string, subj ledger.Subject, informed, decided string) map[string]any {
	d := map[string]any{"request": request, "restriction": restriction, "subject": subj, "decidedAt": decided}
	if informed != "" {
		d["subjectInformedAt"] = informed
	}
	return ce("dpo", id, ledger.TypeRestrictionLifted, d)
}

// lawRefusals are events each rule of issue 11 refuses, with the reason and
// a part of the detail naming the provision.
func lawRefusals(subj ledger.Subject, at time.Time) []struct {
	name   string
	ev     map[string]any
	reason ledger.Reason
	detail string
	http   int // the HTTP status: 400 refused at once, 202 refused when applied ("rejected")
} {
	part3 := func(id string, f func(d map[string]any)) map[string]any {
		return withData(disclosure("casework", id, []ledger.Subject{subj}, "acro", []string{"user.contact.email"}, at), f)
	}
	return []struct {
		name   string
		ev     map[string]any
		reason ledger.Reason
		detail string
		http   int
	}{
		{"Art18(3) lifting without subjectInformedAt", lifting("l-none", "L-none", "RS", subj, "", "2025-01-20T10:00:00Z"), ledger.ReasonInvalidData, "Art. 18(3)", 400},
		{"Art18(3) told the instant of the lifting", lifting("l-same", "L-same", "RS", subj, "2025-01-20T10:00:00Z", "2025-01-20T10:00:00Z"), ledger.ReasonInvalidData, "is not before the lifting's decision", 400},
		{"Art18(3) told after the lifting", lifting("l-after", "L-after", "RS", subj, "2025-01-20T10:00:30+00:00", "2025-01-20T11:00:00+01:00"), ledger.ReasonInvalidData, "is not before the lifting's decision", 400},
		{"s.62 placeholder justification", part3("d-na", func(d map[string]any) { d["justification"] = "N/A" }), ledger.ReasonInvalidData, "s.62", 400},
		{"s.62 blank discloser", part3("d-blank", func(d map[string]any) { d["disclosedBy"] = "   " }), ledger.ReasonInvalidData, "disclosedBy", 400},
		{"s.48(7) unregistered origin", part3("d-from", func(d map[string]any) { d["receivedFrom"] = "nowhere" }), ledger.ReasonUnknownRecipient, "s.48(7)", 400},
		{"s.48(7) origin not a competent authority", part3("d-from2", func(d map[string]any) { d["receivedFrom"] = "proc" }), ledger.ReasonInvalidData, "not a competent authority", 202},
	}
}

// TestLawOverHTTP runs issue 11's rules (items 3 to 9) through the real
// serve code over HTTP, with a processor's refusal over NATS, and checks
// status, report, who and the refusals with their reasons.
func TestLawOverHTTP(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	_, js := m.connect(t)
	ctx := context.Background()
	client := slhttp.NewClient(m.HTTP.URL())
	a1 := ledger.Subject{Scheme: "dbs-ref", ID: secretID}
	t0 := time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)

	fromOrigin := ukDisclosure("d-o", a1, "acro", []string{"user.contact.email"}, t0)
	fromOrigin["data"].(map[string]any)["receivedFrom"] = "origin"
	events := append(lawRecipients(),
		disclosure("casework", "d-1", []ledger.Subject{a1}, "acro", []string{"user.criminal_history"}, t0),
		ukDisclosure("d-p", a1, "proc", []string{"user.contact"}, t0),
		ukDisclosure("d-i", a1, "inq", []string{"user.name"}, t0),
		func() map[string]any {
			d := ukDisclosure("d-q", a1, "origin", []string{"user.name"}, t0)
			d["data"].(map[string]any)["inquiry"] = true
			return d
		}(),
		fromOrigin,
		ce("dpo", "restriction-1", ledger.TypeRestriction, map[string]any{"request": "RS", "subject": a1, "categories": []string{"user.contact"}, "decidedAt": "2025-01-10T10:00:00Z"}),
		ukDisclosure("d-r", a1, "acro", []string{"user.contact.phone_number"}, time.Date(2025, 1, 11, 9, 0, 0, 0, time.UTC)),
	)
	if out := publishAll(t, m, events...); len(out) != len(events) || slices.ContainsFunc(out, func(o string) bool { return o != "recorded" }) {
		t.Fatalf("outcomes %v, want all recorded", out)
	}

	// Refusals: the rules that need no ledger (s.62, Art. 18(3)) and an
	// unregistered origin answer 400 with the reason; the origin's role is
	// known only to the ledger, which refuses it when applying it (its
	// reason is in SHARELOG_REJECTED: TestLawRefusedOverNATS).
	before := m.Store.Count()
	for _, c := range lawRefusals(a1, t0) {
		resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, c.ev))
		if c.http == http.StatusAccepted {
			if resp.StatusCode != c.http || !strings.Contains(string(body), `"outcome":"rejected"`) {
				t.Errorf("%s: %d %s, want 202 rejected", c.name, resp.StatusCode, body)
			}
			continue
		}
		var p slhttp.Problem
		_ = json.Unmarshal(body, &p)
		if resp.StatusCode != c.http || len(p.Events) != 1 || p.Events[0].Problems[0].Reason != c.reason || !strings.Contains(p.Events[0].Problems[0].Detail, c.detail) {
			t.Errorf("%s: %d %s, want %d %s naming %q", c.name, resp.StatusCode, body, c.http, c.reason, c.detail)
		}
		if strings.Contains(string(body), secretID) {
			t.Errorf("%s: the problem quotes the identifier", c.name)
		}
	}
	if got := m.Store.Count(); got != before {
		t.Errorf("ledger grew from %d to %d entries on refused events", before, got)
	}

	// Art. 18(3): told earlier the same minute as the lifting is in time.
	if out := publishAll(t, m, lifting("l-ok", "L", "RS", a1, "2025-01-20T10:00:00Z", "2025-01-20T10:00:45Z")); out[0] != "recorded" {
		t.Fatalf("lifting told in time: %v", out)
	}
	informed := time.Date(2025, 1, 20, 10, 0, 0, 0, time.UTC)
	st, err := client.Status(ctx, "L")
	if err != nil {
		t.Fatal(err)
	}
	if st.SubjectInformedAt == nil || !st.SubjectInformedAt.Equal(informed) {
		t.Errorf("status L: subjectInformedAt %v, want %v", st.SubjectInformedAt, informed)
	}

	// An erasure and a rectification of everything.
	if out := publishAll(t, m,
		ce("dpo", "erasure-1", ledger.TypeErasure, map[string]any{"request": "E", "subject": a1, "decidedAt": "2025-01-31T10:00:00Z"}),
		ce("dpo", "rect-1", ledger.TypeRectification, map[string]any{"request": "RC", "subject": a1, "categories": []string{"user.contact.email"}, "decidedAt": "2025-01-31T11:00:00Z"}),
	); strings.Join(out, " ") != "recorded recorded" {
		t.Fatalf("requests: %v", out)
	}
	st, err = client.Status(ctx, "E")
	if err != nil {
		t.Fatal(err)
	}
	byRecipient := map[string]ledger.Obligation{}
	for _, o := range st.Obligations {
		byRecipient[o.Recipient] = o
	}
	if _, ok := byRecipient["inq"]; !ok {
		t.Errorf("status E (the DPO's view) leaves out the inquiry authority: %+v", st.Obligations)
	}
	if _, ok := byRecipient["origin"]; !ok {
		t.Errorf("status E (the DPO's view) leaves out the disclosure sent with inquiry: true: %+v", st.Obligations)
	}
	if !byRecipient["proc"].Instruction || byRecipient["acro"].Instruction {
		t.Errorf("Art. 28(3)(a): instruction proc=%v acro=%v, want true, false", byRecipient["proc"].Instruction, byRecipient["acro"].Instruction)
	}

	// Art. 28(3)(a): the processor refuses over NATS; the obligation stays
	// open and escalated.
	procE := ledger.NoticeID("E", "proc")
	if _, err := js.Publish(ctx, "sharelog.in.ack.proc", mustJSON(t, ce("recipient", "ack-p", ledger.TypeNoticeAck, map[string]any{"notice": procE, "outcome": "refused"}))); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, func() error {
		st, err := client.Status(ctx, "E")
		if err != nil {
			return err
		}
		i := slices.IndexFunc(st.Obligations, func(o ledger.Obligation) bool { return o.Notice == procE })
		if i < 0 {
			return fmt.Errorf("no obligation %s", procE)
		}
		o := st.Obligations[i]
		if !o.Open() || o.EscalatedAt == nil || o.Outcome != "refused" {
			return fmt.Errorf("processor's refusal: state %s, escalated %v, outcome %q; want open, escalated, refused", o.State, o.EscalatedAt, o.Outcome)
		}
		return nil
	})
	if out := m.cli(t, "status", "E"); !strings.Contains(out, "refused, escalated") {
		t.Errorf("status E does not print the processor's escalated refusal:\n%s", out)
	}
	if out := m.cli(t, "status", "L"); !strings.Contains(out, "The person was told before the lifting (Art. 18(3)): 2025-01-20 10:00Z.") {
		t.Errorf("status L does not print when the person was told:\n%s", out)
	}
	list, err := client.Obligations(ctx, ledger.ObligationFilter{Recipient: "proc"})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(list.Obligations, func(o ledger.Obligation) bool { return o.Notice == procE }); i < 0 || list.Obligations[i].EscalatedAt == nil || !list.Obligations[i].Open() {
		t.Errorf("obligations of proc do not show %s open and escalated: %+v", procE, list.Obligations)
	}

	// Art. 4(9) and 15(1)(c): the person's report does not name the
	// inquiry authority; it shows when they were told of the lifting.
	rep, err := client.SubjectReport(ctx, a1)
	if err != nil {
		t.Fatal(err)
	}
	var sawLifting bool
	for _, r := range rep.Requests {
		for _, n := range r.Recipients {
			if n.Recipient == "inq" || (n.Recipient == "origin" && r.Request == "E") {
				t.Errorf("report names %s, which received the data within an inquiry, under request %s", n.Recipient, r.Request)
			}
		}
		if r.Request == "L" {
			sawLifting = r.SubjectInformedAt != nil && r.SubjectInformedAt.Equal(informed)
		}
	}
	if !sawLifting {
		t.Errorf("report does not show when the person was told of lifting L: %+v", rep.Requests)
	}

	// s.48(7): the rectification reaches the authority the data came from.
	st, err = client.Status(ctx, "RC")
	if err != nil {
		t.Fatal(err)
	}
	var origin *ledger.Obligation
	for i := range st.Obligations {
		if st.Obligations[i].Recipient == "origin" {
			origin = &st.Obligations[i]
		}
	}
	if origin == nil || !origin.Originator || origin.Action != ledger.ActionRectify {
		t.Errorf("status RC: obligation to origin %+v, want an originator's rectify", origin)
	}

	// The disclosure made while restricted is flagged in the listing too.
	if rec, err := m.Store.Disclosure(ctx, "d-r", "casework"); err != nil || rec.WhileRestricted != "RS" || rec.AfterErasure != "" {
		t.Errorf("disclosure d-r = %+v, %v; want flagged while restricted by RS", rec, err)
	}

	// who (the DPO's view): flags and origin.
	w := who(t, m, "dbs-ref:"+secretID)
	got := map[string]ledger.WhoRecipient{}
	for _, r := range w.Recipients {
		got[r.Recipient] = r
	}
	if !got["inq"].Inquiry {
		t.Errorf("who: inquiry authority not flagged: %+v", got["inq"])
	}
	if got["acro"].DisclosedWhileRestricted != 1 || !slices.Equal(got["acro"].ReceivedFrom, []string{"origin"}) {
		t.Errorf("who acro: while restricted %d, receivedFrom %v; want 1, [origin]", got["acro"].DisclosedWhileRestricted, got["acro"].ReceivedFrom)
	}
	if out := m.cli(t, "who", "dbs-ref:"+secretID); !strings.Contains(out, "(data from origin)") || !strings.Contains(out, "(inquiry)") {
		t.Errorf("who prints neither the origin nor the inquiry flag:\n%s", out)
	}
}

// TestLawRefusedOverNATS sends the refusals of issue 11's rules over NATS
// and finds each in SHARELOG_REJECTED with its reason and a detail naming
// the provision; the ledger does not grow.
func TestLawRefusedOverNATS(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	_, js := m.connect(t)
	ctx := context.Background()
	a1 := ledger.Subject{Scheme: "dbs-ref", ID: secretID}
	t0 := time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)
	publishAll(t, m, append(lawRecipients(),
		disclosure("casework", "d-1", []ledger.Subject{a1}, "acro", []string{"user.contact"}, t0),
		ce("dpo", "restriction-1", ledger.TypeRestriction, map[string]any{"request": "RS", "subject": a1, "decidedAt": "2025-01-10T10:00:00Z"}),
	)...)
	before := m.Store.Count()
	cases := lawRefusals(a1, t0)
	seqs := map[uint64]int{}
	for i, c := range cases {
		ack, err := js.PublishMsg(ctx, &natsio.Msg{Subject: "sharelog.in.casework", Data: mustJSON(t, c.ev)})
		if err != nil {
			t.Fatal(err)
		}
		seqs[ack.Sequence] = i
	}
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.Store.Count(); got != before {
		t.Errorf("ledger grew from %d to %d entries on refused events", before, got)
	}
	for i, msg := range rejectedOf(t, ctx, js, seqs) {
		c, detail := cases[i], msg.Headers().Get(nats.HeaderDetail)
		if got := ledger.Reason(msg.Headers().Get(nats.HeaderReason)); got != c.reason || !strings.Contains(detail, c.detail) {
			t.Errorf("%s: reason %q detail %q, want %q naming %q", c.name, got, detail, c.reason, c.detail)
		}
		if strings.Contains(detail, secretID) {
			t.Errorf("%s: the detail quotes the identifier", c.name)
		}
	}
}

// TestHeldErasureEndToEnd: DPA 2018 s.47(2) through serve. An erasure of a
// person under a legal hold is sent as a restriction over NATS, with the
// hold's reason and review date; when the hold is released, the recipient
// is sent a notice to erase.
func TestHeldErasureEndToEnd(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	_, js := m.connect(t)
	ctx := context.Background()
	client := slhttp.NewClient(m.HTTP.URL())
	a1 := ledger.Subject{Scheme: "dbs-ref", ID: secretID}
	t0 := time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)
	natsRecipient := ce("admin", "rcp-force", ledger.TypeRecipient, map[string]any{"id": "force", "name": "A force", "role": "competent-authority", "channel": map[string]any{"type": "nats"}})
	out := publishAll(t, m, natsRecipient,
		disclosure("casework", "d-1", []ledger.Subject{a1}, "force", []string{"user.criminal_history"}, t0),
		ce("dpo", "hold-1", ledger.TypeHold, map[string]any{"hold": "IICSA", "scope": map[string]any{"subject": a1}, "reason": "IICSA moratorium on destruction", "reviewAt": "2027-01-31T00:00:00Z"}),
		ce("dpo", "erasure-1", ledger.TypeErasure, map[string]any{"request": "E", "subject": a1, "decidedAt": "2025-01-31T10:00:00Z"}),
	)
	if strings.Join(out, " ") != "recorded recorded recorded recorded" {
		t.Fatalf("outcomes %v", out)
	}
	held, after := ledger.NoticeID("E", "force"), ledger.AfterHoldNoticeID("E", "force")
	st, err := client.Status(ctx, "E")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Obligations) != 1 || st.Obligations[0].Action != ledger.ActionRestrict || !slices.Equal(st.Obligations[0].HeldBy, []string{"IICSA"}) {
		t.Fatalf("status E under the hold: %+v, want one restrict held by IICSA", st.Obligations)
	}
	if out := publishAll(t, m, ce("dpo", "release-1", ledger.TypeHoldReleased, map[string]any{"hold": "IICSA", "reason": "the inquiry has reported"})); out[0] != "recorded" {
		t.Fatalf("release: %v", out)
	}
	st, err = client.Status(ctx, "E")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range st.Obligations {
		got[o.Notice] = o.Action
	}
	if got[held] != ledger.ActionRestrict || got[after] != ledger.ActionErase {
		t.Errorf("status E after the release: %v, want %s restrict and %s erase", got, held, after)
	}

	// The recipient reads both notices on its NATS subject.
	notices := map[string]ledger.Notice{}
	checkFor(t, 10*time.Second, func() error {
		cons, err := js.OrderedConsumer(ctx, notify.StreamNotices, jetstream.OrderedConsumerConfig{FilterSubjects: []string{notify.SubjectNoticePrefix + "force"}})
		if err != nil {
			return err
		}
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			return err
		}
		for msg := range batch.Messages() {
			var ev struct{ Data ledger.Notice }
			if err := json.Unmarshal(msg.Data(), &ev); err != nil {
				return err
			}
			notices[ev.Data.Notice] = ev.Data
		}
		if len(notices) < 2 {
			return fmt.Errorf("%d notices on sharelog.notice.force, want 2", len(notices))
		}
		return nil
	})
	review := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	if n := notices[held]; n.Action != ledger.ActionRestrict || n.Hold == nil || n.Hold.Reason != "IICSA moratorium on destruction" || n.Hold.ReviewAt == nil || !n.Hold.ReviewAt.Equal(review) {
		t.Errorf("held notice: %+v, want restrict with the hold's reason and review date", n)
	}
	if n := notices[after]; n.Action != ledger.ActionErase || n.Hold != nil || n.Subject != a1 || !slices.Equal(n.Categories, []string{"user.criminal_history"}) {
		t.Errorf("notice after the release: action %s, hold %+v, subject ok %v, categories %v; want erase of user.criminal_history", n.Action, n.Hold, n.Subject == a1, n.Categories)
	}
}
