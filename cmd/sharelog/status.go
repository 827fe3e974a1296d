package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// StatusCmd shows the propagation of one request.
type StatusCmd struct {
	ClientFlags
	Request string `arg:"" help:"The request id of a rectification, erasure, restriction or lifting."`
}

// Run implements the status command.
func (c *StatusCmd) Run(env *Env) error {
	st, err := c.client().Status(env.Ctx, c.Request)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(env.Stdout, st)
	}
	fmt.Fprintf(env.Stdout, "Request %s: %s, decided %s, categories %s.\n", st.Request, st.Action, formatTime(st.DecidedAt), categoriesOrAll(st.Categories))
	printAnswer(env.Stdout, st.Answer)
	fmt.Fprintln(env.Stdout)
	if len(st.Obligations) == 0 {
		fmt.Fprintln(env.Stdout, "No recipient received the affected data: nobody to tell.")
		return nil
	}
	t := newTable(env.Stdout, "RECIPIENT", "STATE", "OUTCOME", "CATEGORIES", "DISCLOSURES", "DUE", "ATTEMPTS", "DELIVERED", "CLOSED", "NOTICE")
	counts := map[string]int{}
	for _, o := range st.Obligations {
		state := obligationState(o)
		counts[state]++
		t.row(o.Recipient, state, outcome(o), list(o.Categories), list(o.Disclosures), formatTime(o.Due),
			strconv.Itoa(o.Attempts), formatTimePtr(o.DeliveredAt), formatTimePtr(closedAt(o)), o.Notice)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "\n%s: %s.\n", plural(len(st.Obligations), "recipient"), summarise(counts))
	if st.SubjectInformedAt != nil {
		fmt.Fprintf(env.Stdout, "The person was told before the lifting (Art. 18(3)): %s.\n", formatTime(*st.SubjectInformedAt))
	}
	if len(st.Holds) > 0 {
		fmt.Fprintf(env.Stdout, "Legal holds on the subject: %s.\n", strings.Join(st.Holds, ", "))
	}
	if st.ForgottenAt != nil {
		fmt.Fprintf(env.Stdout, "The subject was forgotten %s: identifiers and notices destroyed, these facts kept.\n", formatTime(*st.ForgottenAt))
	}
	return nil
}

// ObligationsCmd lists obligations across requests.
type ObligationsCmd struct {
	ClientFlags
	Overdue   bool   `help:"Only open notices past their due date."`
	Recipient string `help:"Only notices to this recipient id."`
	State     string `help:"Only notices in this state: pending, delivered, acknowledged or exempted." enum:"pending,delivered,acknowledged,exempted," default:""`
	Limit     int    `help:"Most notices to list (0: the server's default)." default:"0"`
}

// Run implements the obligations command.
func (c *ObligationsCmd) Run(env *Env) error {
	list, err := c.client().Obligations(env.Ctx, ledger.ObligationFilter{Overdue: c.Overdue, Recipient: c.Recipient, State: c.State, Limit: c.Limit})
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(env.Stdout, list)
	}
	if len(list.Obligations) == 0 {
		if c.Overdue {
			fmt.Fprintln(env.Stdout, "Nothing is overdue.")
		} else {
			fmt.Fprintln(env.Stdout, "No notices match.")
		}
		return nil
	}
	t := newTable(env.Stdout, "DUE", "REQUEST", "ACTION", "RECIPIENT", "STATE", "ATTEMPTS", "LAST ATTEMPT", "LAST ERROR", "NOTICE", "ANSWER PERSON BY")
	for _, o := range list.Obligations {
		t.row(formatTime(o.Due), o.Request, o.Action, o.Recipient, obligationState(o), strconv.Itoa(o.Attempts),
			formatTimePtr(o.LastAttemptAt), dash(o.LastError), o.Notice, answerDue(o))
	}
	if err := t.flush(); err != nil {
		return err
	}
	more := ""
	if list.More {
		more = " (more match; raise --limit)"
	}
	fmt.Fprintf(env.Stdout, "\n%s%s.\n", plural(len(list.Obligations), "notice"), more)
	return nil
}

// ReportCmd prints the report for a data subject.
type ReportCmd struct {
	ClientFlags
	Subject string `arg:"" help:"The data subject as SCHEME:ID; sent in the request body, never the URL."`
}

// Run implements the report command.
func (c *ReportCmd) Run(env *Env) error {
	subj, err := ledger.ParseSubject(c.Subject)
	if err != nil {
		return err
	}
	rep, err := c.client().SubjectReport(env.Ctx, subj)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(env.Stdout, rep)
	}
	if len(rep.Requests) == 0 {
		fmt.Fprintln(env.Stdout, "No rectification, erasure or restriction of this person's data is recorded.")
		return nil
	}
	for i, r := range rep.Requests {
		if i > 0 {
			fmt.Fprintln(env.Stdout)
		}
		fmt.Fprintf(env.Stdout, "Request %s: %s, decided %s, categories %s.\n", r.Request, r.Action, formatTime(r.DecidedAt), categoriesOrAll(r.Categories))
		printAnswer(env.Stdout, r.Answer)
		if r.SubjectInformedAt != nil {
			fmt.Fprintf(env.Stdout, "The person was told before the lifting (Art. 18(3)): %s.\n", formatTime(*r.SubjectInformedAt))
		}
		if len(r.Recipients) == 0 {
			fmt.Fprintln(env.Stdout, "No recipient received the affected data: nobody was told.")
			continue
		}
		t := newTable(env.Stdout, "RECIPIENT", "NAME", "CATEGORIES", "STATE", "TOLD", "ANSWERED", "OUTCOME", "EXEMPTION")
		for _, n := range r.Recipients {
			state := n.State
			if n.Overdue {
				state += ", overdue"
			}
			t.row(n.Recipient, n.Name, list(n.Categories), state, formatTimePtr(n.ToldAt), formatTimePtr(n.AcknowledgedAt), dash(n.Outcome), dash(n.Exemption))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}

// obligationState is the state shown in tables: overdue is added to an
// open obligation past its due date.
func obligationState(o ledger.Obligation) string {
	if o.Overdue {
		return o.State + ", overdue"
	}
	return o.State
}

// outcome is the recipient's answer shown in tables: a processor's refusal
// of an instruction leaves the obligation open, escalated (Art. 28(3)).
func outcome(o ledger.Obligation) string {
	if o.EscalatedAt != nil && o.Open() {
		return o.Outcome + ", escalated"
	}
	return dash(o.Outcome)
}

// closedAt is when an obligation was acknowledged or exempted, or nil
// while it is open.
func closedAt(o ledger.Obligation) *time.Time {
	if o.Open() {
		return nil
	}
	if o.AcknowledgedAt != nil {
		return o.AcknowledgedAt
	}
	return o.ExemptedAt
}

// summarise prints state counts in a fixed order: "1 pending, 2 acknowledged".
func summarise(counts map[string]int) string {
	var parts []string
	for _, s := range []string{ledger.StatePending, ledger.StatePending + ", overdue", ledger.StateDelivered, ledger.StateDelivered + ", overdue", ledger.StateAcknowledged, ledger.StateExempted} {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return strings.Join(parts, "; ")
}

func categoriesOrAll(c []string) string {
	if len(c) == 0 {
		return "all"
	}
	return strings.Join(c, ",")
}

func formatTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return formatTime(*t)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
