package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// exemptionReasons are the reasons org.sharelog.exemption.v1 takes.
var exemptionReasons = []string{"impossible", "disproportionate-effort", "inquiry-authority", "other"}

// decisionsForm is the decisions page's forms, as last filled in.
type decisionsForm struct {
	Kind                                       string
	Notice, Reason, Justification              string
	Hold, Purpose, Categories, Request, Months string
}

type decisionsData struct {
	Form       decisionsForm
	Exemptions []string
	Refused    string
}

func (c *Console) decisions(w http.ResponseWriter, r *http.Request, ss *session) {
	q := r.URL.Query()
	c.render(w, r, ss, http.StatusOK, "decisions", "Record a decision", decisionsData{
		Form:       decisionsForm{Notice: q.Get("notice"), Request: q.Get("request")},
		Exemptions: exemptionReasons,
	})
}

// decide publishes one decision (an exemption, a hold, a hold's release,
// an extension) as the event it is: ledger.MayPublish for the signed-in
// principal, then the API's own path (Config.Publish). A refusal is shown
// with the rule's reason.
func (c *Console) decide(w http.ResponseWriter, r *http.Request, ss *session) {
	f := decisionsForm{Kind: r.PathValue("kind")}
	for k, p := range map[string]*string{"notice": &f.Notice, "reason": &f.Reason, "justification": &f.Justification,
		"hold": &f.Hold, "purpose": &f.Purpose, "categories": &f.Categories, "request": &f.Request, "months": &f.Months} {
		*p = strings.TrimSpace(r.PostFormValue(k))
	}
	now := c.cfg.Now().UTC()
	var typ string
	var data any
	var errs []fieldError
	need := func(v, field, msg string) {
		if v == "" {
			errs = append(errs, fieldError{f.Kind + "-" + field, msg})
		}
	}
	after := "/ui/decisions"
	switch f.Kind {
	case "exemption":
		need(f.Notice, "notice", "Enter the notice the exemption is for")
		need(f.Reason, "reason", "Choose the reason for the exemption")
		need(f.Justification, "justification", "Enter the justification: why telling this recipient is impossible or disproportionate")
		ex := ledger.Exemption{Notice: f.Notice, Reason: f.Reason, Justification: f.Justification, DecidedBy: ss.principal.Name}
		typ, data = ledger.TypeExemption, ex
		if f.Notice != "" && c.cfg.Notices != nil {
			if ob, err := c.cfg.Notices.Obligation(r.Context(), f.Notice); err == nil {
				after = "/ui/requests/" + ob.Request
				// The domain's rule, on a copy, to give its reason now;
				// the store applies the same rule when it records the event.
				if err := ob.Exempt(&ex, now); err != nil && len(errs) == 0 {
					errs = append(errs, fieldError{"exemption", "Not recorded: " + ledger.ErrorMessage(err)})
				}
			} else if errIs(err, ledger.ENOTFOUND) {
				errs = append(errs, fieldError{"exemption-notice", "There is no notice " + f.Notice + "; copy its id from the request's page"})
			}
		}
	case "hold":
		need(f.Hold, "hold", "Enter a name for the hold")
		need(f.Reason, "reason", "Enter why the data must be kept")
		scope := &ledger.HoldScope{Purpose: f.Purpose}
		for _, cat := range strings.Split(f.Categories, ",") {
			if cat = strings.TrimSpace(cat); cat != "" {
				scope.Categories = append(scope.Categories, cat)
			}
		}
		if scope.Purpose == "" && len(scope.Categories) == 0 {
			errs = append(errs, fieldError{"hold-purpose", "Enter the purpose or the categories the hold covers"})
		}
		typ, data = ledger.TypeHold, ledger.Hold{Hold: f.Hold, Scope: scope, Reason: f.Reason, PlacedBy: ss.principal.Name}
	case "release":
		need(f.Hold, "hold", "Enter the name of the hold to release")
		need(f.Reason, "reason", "Enter why the hold is released")
		typ, data = ledger.TypeHoldReleased, ledger.HoldReleased{Hold: f.Hold, Reason: f.Reason, PlacedBy: ss.principal.Name}
	case "extension":
		need(f.Request, "request", "Enter the request whose deadline is extended")
		need(f.Reason, "reason", "Enter why the request is complex or numerous (UK GDPR Art. 12(3))")
		months, err := strconv.Atoi(f.Months)
		if err != nil || (months != 1 && months != 2) {
			errs = append(errs, fieldError{"extension-months", "Choose an extension of 1 or 2 months"})
		}
		typ, data = ledger.TypeExtension, ledger.Extension{Request: f.Request, Months: months, Reason: f.Reason, DecidedAt: now}
		after = "/ui/requests/" + f.Request
	default:
		c.errorPage(w, r, ss, http.StatusNotFound, "There is no such decision.")
		return
	}
	d := decisionsData{Form: f, Exemptions: exemptionReasons}
	if len(errs) > 0 {
		c.render(w, r, ss, http.StatusBadRequest, "decisions", "Record a decision", d, errs...)
		return
	}
	outcome, err := c.publish(r, ss, typ, data)
	if err != nil {
		d.Refused = ledger.ErrorMessage(err)
		status := http.StatusBadRequest
		if errIs(err, ledger.EFORBIDDEN) {
			status = http.StatusForbidden
		}
		c.render(w, r, ss, status, "decisions", "Record a decision", d, fieldError{f.Kind, "Not recorded: " + d.Refused})
		return
	}
	msg := fmt.Sprintf("The %s was recorded.", f.Kind)
	if outcome == "pending" {
		msg = fmt.Sprintf("The %s is stored and will be recorded in a moment.", f.Kind)
	}
	c.sessions.setFlash(ss, msg)
	http.Redirect(w, r, after, http.StatusSeeOther)
}

// publish checks that the principal may publish typ, then publishes it.
func (c *Console) publish(r *http.Request, ss *session, typ string, data any) (string, error) {
	if err := ledger.MayPublish(ss.principal, typ, Source, ""); err != nil {
		return "", err
	}
	if c.cfg.Publish == nil {
		return "", ledger.Errorf(ledger.EUNAVAILABLE, "publishing is not available")
	}
	body, err := json.Marshal(map[string]any{
		"specversion": "1.0", "id": "console-" + randomID()[:24], "source": Source, "type": typ,
		"time": c.cfg.Now().UTC().Format(time.RFC3339Nano), "datacontenttype": "application/json", "data": data,
	})
	if err != nil {
		return "", err
	}
	return c.cfg.Publish(r.Context(), body)
}
