package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/sharelog/sharelog/internal/ledger"
)

// printAnswer prints the line about the deadline for answering the person
// (UK GDPR Art. 12(3); DPA 2018 s.54) under a request's heading: the due
// date as it stands, when the request arrived, any extension and pause.
// It prints nothing for a request that does not say when it arrived.
func printAnswer(w io.Writer, a *ledger.AnswerClock) {
	if a == nil {
		return
	}
	var notes []string
	notes = append(notes, "received "+formatTime(a.ReceivedAt))
	if e := a.Extension; e != nil {
		s := fmt.Sprintf("extended by %d month(s), decided %s", e.Months, formatTime(e.DecidedAt))
		if e.SubjectInformedAt != nil {
			s += ", person told " + formatTime(*e.SubjectInformedAt)
		}
		notes = append(notes, s)
	}
	for _, p := range a.Pauses {
		s := fmt.Sprintf("paused for %s %s", p.Reason, formatTime(p.AskedAt))
		if p.ResumedAt != nil {
			s += " to " + formatTime(*p.ResumedAt)
		} else {
			s += ", still waiting: the clock is stopped"
		}
		notes = append(notes, s)
	}
	state := ""
	switch {
	case a.Overdue:
		state = ", OVERDUE"
	case a.DecidedLate:
		state = ", decided after it"
	}
	fmt.Fprintf(w, "Answer the person by %s%s (%s).\n", formatTime(a.Due), state, strings.Join(notes, "; "))
}

// answerDue is the obligations table's column for the deadline for
// answering the person who made the obligation's request.
func answerDue(o ledger.Obligation) string {
	if o.AnswerDue == nil {
		return "-"
	}
	if o.AnswerOverdue {
		return formatTime(*o.AnswerDue) + ", overdue"
	}
	return formatTime(*o.AnswerDue)
}
