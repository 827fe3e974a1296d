package console

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// ConsultationLog is the consultation log (DPA 2018 s.62) as POST
// /v1/accesses reads it; *store.Store implements it.
type ConsultationLog interface {
	Consultations(ctx context.Context, f ledger.ConsultationFilter) (*ledger.ConsultationPage, error)
}

// accessesPageSize is how many consultations a page of the log shows.
const accessesPageSize = 50

// accessesForm is the consultation log's filters. The person (scheme, id)
// and the reason for selecting by them travel in POST bodies only.
type accessesForm struct {
	Principal, Since, Until, After string
	Scheme, ID, Reason             string
}

// accessesData is the consultation log page.
type accessesData struct {
	Form     accessesForm
	Personal bool // the principal sees people and reasons (and may select by person)
	Rows     []ledger.ConsultationRecord
	Next     string
	Filtered bool // a filter other than paging is set
}

// readAccesses reads the filters: principal, period and page from the form
// or the query, the person only from a POST body (never a URL). errs lists
// what is wrong.
func readAccesses(r *http.Request) (accessesForm, ledger.ConsultationFilter, []fieldError) {
	f := accessesForm{
		Principal: strings.TrimSpace(r.FormValue("principal")),
		Since:     strings.TrimSpace(r.FormValue("since")),
		Until:     strings.TrimSpace(r.FormValue("until")),
		After:     strings.TrimSpace(r.FormValue("after")),
	}
	if r.Method == http.MethodPost {
		f.Scheme = strings.TrimSpace(r.PostFormValue("scheme"))
		f.ID = strings.TrimSpace(r.PostFormValue("id"))
		f.Reason = strings.TrimSpace(r.PostFormValue("reason"))
	}
	lf := ledger.ConsultationFilter{Principal: f.Principal, After: f.After}
	var errs []fieldError
	var err error
	if f.Since != "" {
		if lf.Since, err = time.Parse(time.DateOnly, f.Since); err != nil {
			errs = append(errs, fieldError{"since", "Enter the first day as a date, YYYY-MM-DD"})
		}
	}
	if f.Until != "" {
		if lf.Until, err = time.Parse(time.DateOnly, f.Until); err != nil {
			errs = append(errs, fieldError{"until", "Enter the day after the last as a date, YYYY-MM-DD"})
		}
	}
	if len(errs) == 0 && !lf.Since.IsZero() && !lf.Until.IsZero() && !lf.Until.After(lf.Since) {
		errs = append(errs, fieldError{"until", "The end of the period must be after its start"})
	}
	if f.Scheme != "" || f.ID != "" {
		if f.Scheme == "" {
			errs = append(errs, fieldError{"scheme", "Enter the identifier's scheme, such as dbs-ref or email"})
		}
		if f.ID == "" {
			errs = append(errs, fieldError{"id", "Enter the person's identifier"})
		}
		if f.Reason == "" {
			errs = append(errs, fieldError{"reason", "Enter why you are looking up this person's consultations; the reason is kept in the consultation log"})
		}
		lf.Subject = &ledger.Subject{Scheme: f.Scheme, ID: f.ID}
	}
	return f, lf, errs
}

// consultationsQuery describes the filter for the log itself, without
// its subject.
func consultationsQuery(what string, f ledger.ConsultationFilter) string {
	q := url.Values{}
	if f.Principal != "" {
		q.Set("principal", f.Principal)
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.DateOnly))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.Format(time.DateOnly))
	}
	if f.After != "" {
		q.Set("after", f.After)
	}
	if len(q) == 0 {
		return what
	}
	return what + "?" + q.Encode()
}

// openAccesses checks that the log is kept and that ss's principal may
// read it with filter f (an auditor may not select by person), and records
// a selection by person as a consultation before anything is read (fail
// closed). It returns the log and whether the principal sees its personal
// parts.
func (c *Console) openAccesses(ctx context.Context, ss *session, f ledger.ConsultationFilter, reason, what string) (ConsultationLog, bool, error) {
	if c.cfg.Consultations == nil {
		return nil, false, ledger.Errorf(ledger.EUNAVAILABLE, "this server keeps no consultation log")
	}
	personal, err := ledger.MayReadConsultations(ss.principal, f)
	if err != nil {
		return nil, false, err
	}
	if f.Subject != nil {
		if err := c.consult(ctx, ss, OperationAccesses, reason, f.Subject, consultationsQuery(what, f)); err != nil {
			return nil, false, err
		}
	}
	return c.cfg.Consultations, personal, nil
}

// OperationAccesses is the API operation the consultation log pages stand
// for (POST /v1/accesses).
const OperationAccesses = "listAccesses"

// accesses shows one page of the consultation log. A POST may select by
// person; the page is then rendered in the POST's own response, so the
// identifier is never in a URL.
func (c *Console) accesses(w http.ResponseWriter, r *http.Request, ss *session) {
	form, f, errs := readAccesses(r)
	d := accessesData{Form: form, Personal: c.personal(ss),
		Filtered: form.Principal != "" || form.Since != "" || form.Until != "" || form.Scheme != ""}
	if len(errs) > 0 {
		c.render(w, r, ss, http.StatusBadRequest, "accesses", "Consultation log", d, errs...)
		return
	}
	ctx := r.Context()
	log, personal, err := c.openAccesses(ctx, ss, f, form.Reason, "console: consultation log")
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	f.Limit = accessesPageSize
	page, err := log.Consultations(ctx, f)
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	if !personal {
		page = page.WithoutPersonal()
	}
	d.Rows, d.Next, d.Personal = page.Consultations, page.Next, personal
	c.render(w, r, ss, http.StatusOK, "accesses", "Consultation log", d)
}

// personal reports whether ss's principal sees the personal parts of the
// consultation log.
func (c *Console) personal(ss *session) bool {
	p, _ := ledger.MayReadConsultations(ss.principal, ledger.ConsultationFilter{})
	return p
}

// accessColumns is the consultation log CSV's header, the columns of
// `sharelog accesses --csv`.
var accessColumns = []string{"RECORDED", "PRINCIPAL", "OPERATION", "SUBJECT", "REASON", "QUERY", "SEQ"}

// accessesCSV exports the consultation log for the filters, every page of
// it. Selecting by person takes a POST (the identifier in its body) and
// is a consultation itself, recorded first.
func (c *Console) accessesCSV(w http.ResponseWriter, r *http.Request, ss *session) {
	form, f, errs := readAccesses(r)
	if len(errs) > 0 {
		d := accessesData{Form: form, Personal: c.personal(ss), Filtered: true}
		c.render(w, r, ss, http.StatusBadRequest, "accesses", "Consultation log", d, errs...)
		return
	}
	ctx := r.Context()
	f.After = "" // the export is the whole log for the filters
	log, personal, err := c.openAccesses(ctx, ss, f, form.Reason, "console: consultation log CSV")
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	f.Limit = ledger.MaxLimit
	page, err := log.Consultations(ctx, f)
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
	w.Header().Set("Content-Disposition", `attachment; filename="sharelog-consultations.csv"`)
	cw := csv.NewWriter(w)
	cw.Write(accessColumns)
	for {
		if !personal {
			page = page.WithoutPersonal()
		}
		for _, rec := range page.Consultations {
			cw.Write(accessRow(rec))
		}
		if page.Next == "" {
			break
		}
		f.After = page.Next
		if page, err = log.Consultations(ctx, f); err != nil {
			// The header is sent; end the file with a line saying so.
			c.log.Error("consultation log export", "err", err)
			cw.Write([]string{"error: export incomplete"})
			break
		}
	}
	cw.Flush()
}

// accessRow is one consultation as a CSV row, free text escaped (cell).
func accessRow(r ledger.ConsultationRecord) []string {
	return []string{r.RecordedAt.UTC().Format(time.RFC3339), cell(r.Principal), cell(r.Operation), cell(consulted(r)),
		cell(r.Reason), cell(r.Query), strconv.FormatUint(r.Seq, 10)}
}

// consulted names whom a consultation was about, as far as the reader may
// see: the person, "(forgotten)", "(a person)" when hidden, or "".
func consulted(r ledger.ConsultationRecord) string {
	switch {
	case r.Subject != nil:
		return r.Subject.String()
	case r.Forgotten:
		return "(forgotten)"
	case r.BySubject:
		return "(a person)"
	}
	return ""
}
