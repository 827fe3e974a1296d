package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
)

// ce returns a structured CloudEvent as a map.
func ce(source, id, typ string, data map[string]any) map[string]any {
	return map[string]any{
		"specversion": "1.0", "id": id, "source": source, "type": typ,
		"time": "2026-01-01T00:00:00Z", "datacontenttype": "application/json", "data": data,
	}
}

// manualRecipient is a recipient told by a person, so that no dispatcher
// delivers its notices while the test looks at them.
func manualRecipient(id, regime string, sla int) map[string]any {
	d := map[string]any{"id": id, "name": "Recipient " + id, "role": "controller", "country": "GB", "channel": map[string]any{"type": "manual"}}
	if regime != "" {
		d["regime"] = regime
	}
	if sla > 0 {
		d["slaDays"] = sla
	}
	return ce("admin", "rcp-"+id, ledger.TypeRecipient, d)
}

// ukDisclosure is a disclosure under UK GDPR.
func ukDisclosure(id string, subject ledger.Subject, recipient string, categories []string, at time.Time) map[string]any {
	return ce("casework", id, ledger.TypeDisclosure, map[string]any{
		"subjects": []ledger.Subject{subject}, "recipient": recipient, "categories": categories,
		"purpose": "essential.service", "lawfulBasis": "art6-1-b", "regime": "uk-gdpr", "disclosedAt": at.Format(time.RFC3339),
	})
}

// publishAll sends events in one HTTP batch and returns each event's outcome.
func publishAll(t *testing.T, m *testMain, events ...map[string]any) []string {
	t.Helper()
	acc, err := slhttp.NewClient(m.HTTP.URL()).Publish(context.Background(), mustJSON(t, events))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	var out []string
	for _, a := range acc.Accepted {
		out = append(out, a.Outcome)
	}
	return out
}

// TestPropagationStatus runs the real serve code: disclosures of one person
// to several recipients, an erasure of some categories over HTTP, an ack over
// NATS, and checks what sharelog status, obligations, report and who print.
func TestPropagationStatus(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Policy = filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(cfg.Policy, []byte("deadlines:\n  regimes:\n    dpa-part3: {days: 14}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)
	_, js := m.connect(t)
	ctx := context.Background()

	a1 := ledger.Subject{Scheme: "dbs-ref", ID: secretID}
	b2 := ledger.Subject{Scheme: "dbs-ref", ID: "B2-OTHER"}
	t0 := time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)
	outcomes := publishAll(t, m,
		manualRecipient("acro", "dpa-part3", 0), manualRecipient("btp", "", 0), manualRecipient("cgi", "", 10), manualRecipient("web", "", 0),
		disclosure("casework", "d-1", []ledger.Subject{a1}, "acro", []string{"user.criminal_history"}, t0),
		ukDisclosure("d-2", a1, "btp", []string{"user.contact.address"}, t0.Add(time.Hour)),
		ukDisclosure("d-3", a1, "cgi", []string{"user.contact.email"}, t0.Add(2*time.Hour)),
		ukDisclosure("d-4", a1, "web", []string{"user.financial"}, t0.Add(3*time.Hour)),
		ukDisclosure("d-5", a1, "acro", []string{"user.contact"}, t0.Add(4*time.Hour)),
		ukDisclosure("d-6", b2, "web", []string{"user.contact.email"}, t0.Add(5*time.Hour)),
		ce("dpo", "erasure-1", ledger.TypeErasure, map[string]any{
			"request": "E-1", "subject": a1, "categories": []string{"user.contact", "user.criminal_history"},
			"ground": "art17-1-a", "decidedAt": "2025-01-31T10:00:00Z", "decidedBy": "dpo@example.org",
		}),
	)
	if want := strings.Repeat("recorded ", 11); strings.Join(outcomes, " ")+" " != want {
		t.Fatalf("outcomes = %v, want all recorded", outcomes)
	}

	acro, btp, cgi := ledger.NoticeID("E-1", "acro"), ledger.NoticeID("E-1", "btp"), ledger.NoticeID("E-1", "cgi")
	// acro: Part 3 (its regime), 14 days. btp: one calendar month from
	// 31 January, the last day of February. cgi: its 10-day SLA comes first.
	// web received only user.financial, so it is not told. Everything is
	// overdue by now.
	want := `Request E-1: erase, decided 2025-01-31 10:00Z, categories user.contact,user.criminal_history.

RECIPIENT  STATE             OUTCOME  CATEGORIES                          DISCLOSURES  DUE                ATTEMPTS  DELIVERED  CLOSED  NOTICE
acro       pending, overdue  -        user.contact,user.criminal_history  d-1,d-5      2025-02-14 23:59Z  0         -          -       ` + acro + `
btp        pending, overdue  -        user.contact.address                d-2          2025-02-28 23:59Z  0         -          -       ` + btp + `
cgi        pending, overdue  -        user.contact.email                  d-3          2025-02-10 23:59Z  0         -          -       ` + cgi + `

3 recipients: 3 pending, overdue.
`
	if got := m.cli(t, "status", "E-1"); got != want {
		t.Errorf("status:\n%s\nwant:\n%s", got, want)
	}

	// acro answers on its own ack subject; cgi tries to answer btp's notice.
	ack := func(id, notice string) []byte {
		return mustJSON(t, ce("recipient", id, ledger.TypeNoticeAck, map[string]any{"notice": notice, "outcome": "done"}))
	}
	if _, err := js.Publish(ctx, "sharelog.in.ack.acro", ack("ack-1", acro)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "sharelog.in.ack.cgi", ack("ack-2", btp)); err != nil {
		t.Fatal(err)
	}
	// A person sent cgi's manual notice, and says so through the manual
	// queue. A delivery record or an ack posted to /v1/events by a producer
	// is refused outright: only sharelog records deliveries, and an ack must
	// come from its recipient. An exemption for a notice nobody opened is
	// accepted onto the stream and refused when applied.
	if out := m.cli(t, "sent", cgi, "--by", "clerk"); !strings.Contains(out, cgi) {
		t.Errorf("sent: %s", out)
	}
	for _, forged := range []map[string]any{
		ce("sharelog/notify", "sent-1", ledger.TypeNoticeDelivery, map[string]any{
			"notice": btp, "attempt": 1, "channel": "manual", "outcome": "sent", "at": "2025-02-03T12:00:00Z", "sentBy": "clerk",
		}),
		ce("recipient", "ack-3", ledger.TypeNoticeAck, map[string]any{"notice": cgi, "outcome": "done"}),
	} {
		resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, forged))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s posted by a producer: %d %s, want 400", forged["type"], resp.StatusCode, body)
		}
	}
	outcomes = publishAll(t, m,
		ce("dpo", "ex-1", ledger.TypeExemption, map[string]any{
			"notice": ledger.NoticeID("E-1", "nobody"), "reason": "impossible", "justification": "j", "decidedBy": "dpo",
		}),
	)
	if got := strings.Join(outcomes, " "); got != "rejected" {
		t.Errorf("outcomes = %s, want rejected", got)
	}
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}

	var st ledger.RequestStatus
	if err := json.Unmarshal([]byte(m.cli(t, "status", "E-1", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	closed := st.Obligations[0].AcknowledgedAt
	if closed == nil {
		t.Fatalf("acro not acknowledged: %+v", st.Obligations[0])
	}
	sent := st.Obligations[2].DeliveredAt
	if sent == nil {
		t.Fatalf("cgi not marked sent: %+v", st.Obligations[2])
	}
	want = `Request E-1: erase, decided 2025-01-31 10:00Z, categories user.contact,user.criminal_history.

RECIPIENT  STATE               OUTCOME  CATEGORIES                          DISCLOSURES  DUE                ATTEMPTS  DELIVERED          CLOSED             NOTICE
acro       acknowledged        done     user.contact,user.criminal_history  d-1,d-5      2025-02-14 23:59Z  0         -                  ` + formatTime(*closed) + `  ` + acro + `
btp        pending, overdue    -        user.contact.address                d-2          2025-02-28 23:59Z  0         -                  -                  ` + btp + `
cgi        delivered, overdue  -        user.contact.email                  d-3          2025-02-10 23:59Z  1         ` + formatTime(*sent) + `  -                  ` + cgi + `

3 recipients: 1 pending, overdue; 1 delivered, overdue; 1 acknowledged.
`
	if got := m.cli(t, "status", "E-1"); got != want {
		t.Errorf("status after answers:\n%s\nwant:\n%s", got, want)
	}

	var list ledger.ObligationList
	if err := json.Unmarshal([]byte(m.cli(t, "obligations", "--overdue", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	var late []string
	for _, o := range list.Obligations {
		late = append(late, o.Recipient)
	}
	if got := strings.Join(late, " "); got != "cgi btp" {
		t.Errorf("overdue = %s, want cgi btp (by due date)", got)
	}

	var rep ledger.SubjectReport
	if err := json.Unmarshal([]byte(m.cli(t, "report", "dbs-ref:"+secretID, "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Requests) != 1 || len(rep.Requests[0].Recipients) != 3 || rep.Requests[0].Recipients[2].ToldAt == nil ||
		!rep.Requests[0].Recipients[2].ToldAt.Equal(*sent) {
		t.Errorf("report = %+v", rep)
	}
	if out := m.cli(t, "report", "dbs-ref:"+secretID); !strings.Contains(out, "cgi        Recipient cgi   user.contact.email                  delivered, overdue  "+formatTime(*sent)) {
		t.Errorf("report table:\n%s", out)
	}

	// A later disclosure of erased data is recorded, and flagged.
	if got := publishAll(t, m, ukDisclosure("d-7", a1, "cgi", []string{"user.contact.email"}, time.Date(2025, 2, 2, 0, 0, 0, 0, time.UTC))); got[0] != "recorded" {
		t.Fatalf("late disclosure: %v", got)
	}
	var d ledger.DisclosureRecord
	if err := json.Unmarshal([]byte(m.cli(t, "disclosure", "d-7", "--json")), &d); err != nil {
		t.Fatal(err)
	}
	if d.AfterErasure != "E-1" {
		t.Errorf("d-7 afterErasure = %q, want E-1", d.AfterErasure)
	}
	for _, r := range who(t, m, "dbs-ref:"+secretID).Recipients {
		wantOpen := map[string]int{"btp": 1, "cgi": 1}[r.Recipient]
		if r.OpenObligations != wantOpen {
			t.Errorf("who %s: %d open obligations, want %d", r.Recipient, r.OpenObligations, wantOpen)
		}
	}

	metrics := get(t, m.HTTP.URL()+"/metrics")
	for _, line := range []string{"sharelog_obligations_open 2", "sharelog_obligations_overdue 2"} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
	if err, _ := m.cliErr(t, "status", "NO-SUCH-REQUEST"); !strings.Contains(err.Error(), `not_found: no request "NO-SUCH-REQUEST"`) {
		t.Errorf("status of an unknown request: %v", err)
	}
	if strings.Contains(m.logs.String(), secretID) {
		t.Error("logs contain the subject identifier")
	}
}
