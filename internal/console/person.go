package console

import (
	"context"
	"net/http"
	"strings"

	"github.com/sharelog/sharelog/internal/ledger"
)

// personForm is the search form: scheme, identifier and the reason for the
// lookup. It travels in POST bodies only.
type personForm struct {
	Scheme, ID, Reason string
}

// personData is the person page: the form (to look again), who received
// their data, the requests about them and the disclosures in order.
type personData struct {
	Form        personForm
	Who         *ledger.Who
	Report      *ledger.SubjectReport
	Disclosures []ledger.DisclosureRecord
	More        bool
	Flags       int
}

func (c *Console) personForm(w http.ResponseWriter, r *http.Request, ss *session) {
	c.render(w, r, ss, http.StatusOK, "person-form", "Find a person", personData{})
}

// readPerson reads and checks the search form; errs lists what is missing.
func readPerson(r *http.Request) (personForm, ledger.Subject, []fieldError) {
	f := personForm{
		Scheme: strings.TrimSpace(r.PostFormValue("scheme")),
		ID:     strings.TrimSpace(r.PostFormValue("id")),
		Reason: strings.TrimSpace(r.PostFormValue("reason")),
	}
	var errs []fieldError
	if f.Scheme == "" {
		errs = append(errs, fieldError{"scheme", "Enter the identifier's scheme, such as dbs-ref or email"})
	}
	if f.ID == "" {
		errs = append(errs, fieldError{"id", "Enter the person's identifier"})
	}
	if f.Reason == "" {
		errs = append(errs, fieldError{"reason", "Enter why you are looking this person up; the reason is kept in the consultation log"})
	}
	return f, ledger.Subject{Scheme: f.Scheme, ID: f.ID}, errs
}

// consult records the lookup before anything is read (fail closed), as
// the API does: with sign-in on and no consultation log, it refuses.
func (c *Console) consult(ctx context.Context, ss *session, operation, reason string, subj *ledger.Subject, query string) error {
	if c.cfg.Consult == nil {
		if !c.authenticates() {
			return nil // as the API: without sign-in and without a log, nothing is recorded
		}
		return ledger.Errorf(ledger.EUNAVAILABLE, "the consultation log is not running: a lookup of a person is answered only once it is recorded (DPA 2018 s.62)")
	}
	err := c.cfg.Consult(ctx, ledger.Consultation{Principal: ss.principal.Name, Operation: operation, Reason: reason, Subject: subj, Query: query})
	if err != nil {
		c.log.Error("consultation not recorded; lookup refused", "operation", operation, "err", err)
		return ledger.Errorf(ledger.EUNAVAILABLE, "the lookup could not be recorded in the consultation log, so it was not made; try again later")
	}
	return nil
}

// person answers the search: the lookup is recorded first, then the page
// is rendered in the POST's own response, so the identifier is never in a
// URL.
func (c *Console) person(w http.ResponseWriter, r *http.Request, ss *session) {
	f, subj, errs := readPerson(r)
	if len(errs) > 0 {
		c.render(w, r, ss, http.StatusBadRequest, "person-form", "Find a person", personData{Form: f}, errs...)
		return
	}
	ctx := r.Context()
	if err := c.consult(ctx, ss, "who", f.Reason, &subj, "console: person page"); err != nil {
		c.fail(w, r, ss, err)
		return
	}
	who, err := c.cfg.Ledger.Who(ctx, subj)
	if err != nil {
		if errIs(err, ledger.EINVALID) {
			c.render(w, r, ss, http.StatusBadRequest, "person-form", "Find a person", personData{Form: f},
				fieldError{"scheme", ledger.ErrorMessage(err)})
			return
		}
		c.fail(w, r, ss, err)
		return
	}
	report, err := c.cfg.Ledger.SubjectReport(ctx, subj)
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	page, err := c.cfg.Ledger.Disclosures(ctx, ledger.DisclosureFilter{Subject: &subj, Limit: 500})
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	d := personData{Form: f, Who: who, Report: report, Disclosures: page.Disclosures, More: page.Next != ""}
	for _, rc := range who.Recipients {
		if rc.Inquiry || rc.DisclosedAfterErasure > 0 || rc.DisclosedWhileRestricted > 0 {
			d.Flags++
		}
	}
	c.render(w, r, ss, http.StatusOK, "person", "Who received this person's data", d)
}

// personReport is the printable subject report (UK GDPR Art. 15(1)(c) and
// 19): the recipients and what each was told, for the person themselves.
// It is a lookup of its own, recorded with the same reason.
func (c *Console) personReport(w http.ResponseWriter, r *http.Request, ss *session) {
	f, subj, errs := readPerson(r)
	if len(errs) > 0 {
		c.render(w, r, ss, http.StatusBadRequest, "person-form", "Find a person", personData{Form: f}, errs...)
		return
	}
	ctx := r.Context()
	if err := c.consult(ctx, ss, "subjectReport", f.Reason, &subj, "console: printable subject report"); err != nil {
		c.fail(w, r, ss, err)
		return
	}
	who, err := c.cfg.Ledger.Who(ctx, subj)
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	report, err := c.cfg.Ledger.SubjectReport(ctx, subj)
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	c.render(w, r, ss, http.StatusOK, "report", "Subject report", personData{Form: f, Who: who, Report: report})
}
