package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// TestAnswerDeadlines runs the real serve code with a DPO's calendar
// (Europe/London, rolled past weekends and the bank holidays of England and
// Wales): a request received on 29 February over HTTP and one received on
// 31 January over NATS, an extension accepted over NATS on Easter Monday
// (in time only because the month ending on Good Friday rolls to the
// Tuesday), one refused over HTTP after the first month with its reason in
// SHARELOG_REJECTED, the deadlines status, obligations and report show for
// the person and for recipients (UK GDPR Art. 12(3); DPA 2018 s.54), and a
// clock stopped and resumed over NATS (Art. 12A; s.54(3C)).
func TestAnswerDeadlines(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Policy = filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(cfg.Policy, []byte("calendar:\n  rollToWorkingDay: true\n  bankHolidays: england-and-wales\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)
	_, js := m.connect(t)
	ctx := context.Background()
	client := slhttp.NewClient(m.HTTP.URL())

	a1 := ledger.Subject{Scheme: "dbs-ref", ID: secretID}
	t0 := time.Date(2024, 1, 10, 9, 0, 0, 0, time.UTC)
	outcomes := publishAll(t, m,
		manualRecipient("btp", "", 0),
		ukDisclosure("d-1", a1, "btp", []string{"user.contact"}, t0),
		// Over HTTP: received on 29 February 2024.
		ce("dpo", "erasure-1", ledger.TypeErasure, map[string]any{
			"request": "E-1", "subject": a1, "receivedAt": "2024-02-29T10:00:00Z", "decidedAt": "2024-03-05T10:00:00Z",
		}),
	)
	if strings.Join(outcomes, " ") != "recorded recorded recorded" {
		t.Fatalf("outcomes = %v, want all recorded", outcomes)
	}
	// Over NATS: received on 31 January 2025; and the extension of E-1,
	// decided on Easter Monday 2024.
	for _, ev := range []map[string]any{
		ce("dpo", "restriction-2", ledger.TypeRestriction, map[string]any{
			"request": "R-2", "subject": a1, "categories": []string{"user.contact.email"},
			"receivedAt": "2025-01-31T10:00:00Z", "decidedAt": "2025-02-03T10:00:00Z",
		}),
		ce("dpo", "extension-1", ledger.TypeExtension, map[string]any{
			"request": "E-1", "months": 1, "reason": "records held in three archives",
			"decidedAt": "2024-04-01T12:00:00Z", "subjectInformedAt": "2024-04-01T12:30:00Z",
		}),
	} {
		if _, err := js.Publish(ctx, "sharelog.in.dpo", mustJSON(t, ev)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	// Over HTTP: an extension of R-2 decided on 1 March 2025, after its
	// month ended on Friday 28 February.
	late := ce("dpo", "extension-2", ledger.TypeExtension, map[string]any{
		"request": "R-2", "months": 2, "reason": "complex", "decidedAt": "2025-03-01T09:00:00Z",
	})
	if got := publishAll(t, m, late); strings.Join(got, " ") != slhttp.OutcomeRejected {
		t.Fatalf("late extension: outcome %v, want rejected", got)
	}

	// The reason, in SHARELOG_REJECTED.
	cons, err := js.OrderedConsumer(ctx, nats.StreamRejected, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("SHARELOG_REJECTED: %v", err)
	}
	if got := msg.Headers().Get(nats.HeaderReason); got != string(ledger.ReasonExtensionRefused) || msg.Subject() != nats.RejectedSubject(ledger.ReasonExtensionRefused, "dpo") {
		t.Errorf("late extension rejected on %s with reason %q, want extension-refused", msg.Subject(), got)
	}
	if want := `one month of receipt of request "R-2"; that month ended 2025-02-28T23:59:59Z and the extension was decided 2025-03-01T09:00:00Z`; !strings.Contains(msg.Headers().Get(nats.HeaderDetail), want) {
		t.Errorf("detail %q, want it to say %q", msg.Headers().Get(nats.HeaderDetail), want)
	}

	// HTTP: the person's deadline beside the recipient's.
	cases := []struct {
		request, answerDue, firstMonth, noticeDue string
		extended                                  int
	}{
		// 29 March 2024 is Good Friday: rolled past Easter Monday to Tuesday
		// 2 April; the extension's further month from 29 February gives
		// Monday 29 April (BST). The notice: a month from 5 March, Friday 5 April.
		{"E-1", "2024-04-29T22:59:59.999999999Z", "2024-04-02T22:59:59.999999999Z", "2024-04-05T22:59:59.999999999Z", 1},
		// 31 January: the end of Friday 28 February. The notice: a month
		// from 3 February, Monday 3 March.
		{"R-2", "2025-02-28T23:59:59.999999999Z", "2025-02-28T23:59:59.999999999Z", "2025-03-03T23:59:59.999999999Z", 0},
	}
	for _, c := range cases {
		st, err := client.Status(ctx, c.request)
		if err != nil {
			t.Fatal(err)
		}
		a := st.Answer
		if a == nil {
			t.Fatalf("%s: no answer clock", c.request)
		}
		if got := a.Due.Format(time.RFC3339Nano); got != c.answerDue {
			t.Errorf("%s: answer due %s, want %s", c.request, got, c.answerDue)
		}
		if got := a.FirstMonthEnds.Format(time.RFC3339Nano); got != c.firstMonth {
			t.Errorf("%s: first month ends %s, want %s", c.request, got, c.firstMonth)
		}
		if months := 0; a.Extension != nil && a.Extension.Months != c.extended || a.Extension == nil && months != c.extended {
			t.Errorf("%s: extension %+v, want %d months", c.request, a.Extension, c.extended)
		}
		if !a.Overdue {
			t.Errorf("%s: answer not overdue, with its recipient still to be told", c.request)
		}
		if len(st.Obligations) != 1 || st.Obligations[0].Due.Format(time.RFC3339Nano) != c.noticeDue {
			t.Errorf("%s: obligations %+v, want one due %s", c.request, st.Obligations, c.noticeDue)
		} else if o := st.Obligations[0]; o.AnswerDue == nil || o.AnswerDue.Format(time.RFC3339Nano) != c.answerDue || !o.AnswerOverdue {
			t.Errorf("%s: obligation's answer due %v overdue %v, want %s overdue", c.request, o.AnswerDue, o.AnswerOverdue, c.answerDue)
		}
	}

	// The CLI: status, obligations and report.
	status := m.cli(t, "status", "E-1")
	if want := "Request E-1: erase, decided 2024-03-05 10:00Z, categories all.\n" +
		"Answer the person by 2024-04-29 22:59Z, OVERDUE (received 2024-02-29 10:00Z; extended by 1 month(s), decided 2024-04-01 12:00Z, person told 2024-04-01 12:30Z).\n"; !strings.HasPrefix(status, want) {
		t.Errorf("status E-1:\n%s\nwant it to begin:\n%s", status, want)
	}
	if !strings.Contains(status, "2024-04-05 22:59Z") {
		t.Errorf("status E-1 does not show the notice due 2024-04-05 22:59Z:\n%s", status)
	}
	obligations := m.cli(t, "obligations", "--overdue")
	for _, want := range []string{"ANSWER PERSON BY", "2024-04-29 22:59Z, overdue", "2025-02-28 23:59Z, overdue"} {
		if !strings.Contains(obligations, want) {
			t.Errorf("obligations --overdue does not show %q:\n%s", want, obligations)
		}
	}
	report := m.cli(t, "report", "dbs-ref:"+secretID)
	if want := "Answer the person by 2025-02-28 23:59Z, OVERDUE (received 2025-01-31 10:00Z)."; !strings.Contains(report, want) {
		t.Errorf("report:\n%s\nwant it to say %q", report, want)
	}
	rep, err := client.SubjectReport(ctx, a1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Requests) != 2 || rep.Requests[0].Answer == nil || rep.Requests[1].Answer == nil ||
		!rep.Requests[0].Answer.Due.Equal(mustTime(t, "2024-04-29T22:59:59.999999999Z")) {
		t.Errorf("report over HTTP: %+v", rep.Requests)
	}
	if !strings.Contains(obligations, "\n2 notices.") {
		t.Errorf("obligations --overdue: want 2 notices:\n%s", obligations)
	}

	// The clock stopped and resumed over NATS (Art. 12A; s.54(3C)): a
	// restriction of data nobody received, received Monday 2 June 2025; the
	// controller asks for clarification on the 5th and has it on the 9th:
	// five days do not count, so 2 July becomes Monday 7 July.
	if got := publishAll(t, m, ce("dpo", "restriction-3", ledger.TypeRestriction, map[string]any{
		"request": "R-3", "subject": a1, "categories": []string{"user.financial"},
		"receivedAt": "2025-06-02T08:00:00Z", "decidedAt": "2025-06-20T10:00:00Z",
	})); strings.Join(got, " ") != "recorded" {
		t.Fatalf("R-3: %v", got)
	}
	for _, ev := range []map[string]any{
		ce("dpo", "paused-3", ledger.TypeRequestPaused, map[string]any{"request": "R-3", "reason": "clarification", "askedAt": "2025-06-05T09:00:00Z", "note": "which accounts?"}),
		ce("dpo", "resumed-3", ledger.TypeRequestResumed, map[string]any{"request": "R-3", "receivedAt": "2025-06-09T15:00:00Z"}),
	} {
		if _, err := js.Publish(ctx, "sharelog.in.dpo", mustJSON(t, ev)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := client.Status(ctx, "R-3")
	if err != nil {
		t.Fatal(err)
	}
	if a := st.Answer; a == nil || a.Due.Format(time.RFC3339Nano) != "2025-07-07T22:59:59.999999999Z" || a.Paused || a.Overdue || len(a.Pauses) != 1 {
		t.Errorf("R-3 answer = %+v, want due 2025-07-07T22:59:59.999999999Z after one pause, not overdue (nobody to tell: the action is complete)", a)
	}
	if out := m.cli(t, "status", "R-3"); !strings.Contains(out, "Answer the person by 2025-07-07 22:59Z (received 2025-06-02 08:00Z; paused for clarification 2025-06-05 09:00Z to 2025-06-09 15:00Z).") {
		t.Errorf("status R-3:\n%s", out)
	}
	if strings.Contains(m.logs.String(), secretID) || strings.Contains(m.logs.String(), "which accounts") {
		t.Error("logs contain the identifier or the pause's note")
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}
