package console

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// requestFilter is the requests list's filter; none of it is personal data,
// so it goes in the URL.
type requestFilter struct {
	Show, Regime, Recipient string
}

// requestRow is one request with its obligations (one per recipient).
type requestRow struct {
	Request, Action, Regime string
	AnswerDue               *time.Time
	AnswerOverdue           bool
	Obligations             []ledger.Obligation
	Open, Overdue           int
}

type requestsData struct {
	Filter     requestFilter
	Regimes    []string
	Recipients []ledger.Recipient
	Requests   []requestRow
	More       bool
}

// open reports whether an obligation still waits for something.
func open(o ledger.Obligation) bool { return o.Open() }

func (c *Console) requests(w http.ResponseWriter, r *http.Request, ss *session) {
	q := r.URL.Query()
	f := requestFilter{Show: cmp.Or(q.Get("show"), "all"), Regime: q.Get("regime"), Recipient: q.Get("recipient")}
	if !slices.Contains([]string{"all", "open", "overdue"}, f.Show) {
		c.errorPage(w, r, ss, http.StatusBadRequest, "Show must be all, open or overdue.")
		return
	}
	ctx := r.Context()
	list, err := c.cfg.Ledger.Obligations(ctx, ledger.ObligationFilter{Overdue: f.Show == "overdue", Recipient: f.Recipient, Limit: ledger.MaxLimit})
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	recipients, err := c.cfg.Ledger.Recipients(ctx)
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	d := requestsData{Filter: f, More: list.More, Recipients: recipients,
		Regimes: []string{ledger.RegimeUKGDPR, ledger.RegimeEUGDPR, ledger.RegimeDPAPart3, ledger.RegimeDPAPart4}}
	byReq := map[string]int{}
	for _, o := range list.Obligations {
		if f.Regime != "" && o.Regime != f.Regime {
			continue
		}
		if f.Show == "open" && !open(o) {
			continue
		}
		i, ok := byReq[o.Request]
		if !ok {
			i = len(d.Requests)
			byReq[o.Request] = i
			d.Requests = append(d.Requests, requestRow{Request: o.Request, Action: o.Action, Regime: o.Regime, AnswerDue: o.AnswerDue})
		}
		row := &d.Requests[i]
		row.Obligations = append(row.Obligations, o)
		row.AnswerOverdue = row.AnswerOverdue || o.AnswerOverdue
		if open(o) {
			row.Open++
		}
		if o.Overdue {
			row.Overdue++
		}
	}
	c.render(w, r, ss, http.StatusOK, "requests", "Requests", d)
}

func (c *Console) request(w http.ResponseWriter, r *http.Request, ss *session) {
	st, err := c.cfg.Ledger.Status(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	c.render(w, r, ss, http.StatusOK, "request", "Request "+st.Request, struct {
		Status     *ledger.RequestStatus
		MayDecide  bool
		Exemptions []string
	}{st, c.may(ss, secDecisions), exemptionReasons})
}

// recipientDue is one recipient's line on the overdue dashboard.
type recipientDue struct {
	Recipient, Name  string
	Overdue, DueWeek []ledger.Obligation
}

func (c *Console) overdue(w http.ResponseWriter, r *http.Request, ss *session) {
	list, err := c.cfg.Ledger.Obligations(r.Context(), ledger.ObligationFilter{Limit: ledger.MaxLimit})
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	week := c.cfg.Now().Add(7 * 24 * time.Hour)
	by := map[string]*recipientDue{}
	var rows []*recipientDue
	late, soon := 0, 0
	for _, o := range list.Obligations {
		if !open(o) || (!o.Overdue && o.Due.After(week)) {
			continue
		}
		rd := by[o.Recipient]
		if rd == nil {
			rd = &recipientDue{Recipient: o.Recipient, Name: o.Name}
			by[o.Recipient] = rd
			rows = append(rows, rd)
		}
		if o.Overdue {
			rd.Overdue = append(rd.Overdue, o)
			late++
		} else {
			rd.DueWeek = append(rd.DueWeek, o)
			soon++
		}
	}
	slices.SortFunc(rows, func(a, b *recipientDue) int {
		return cmp.Or(cmp.Compare(len(b.Overdue), len(a.Overdue)), cmp.Compare(a.Recipient, b.Recipient))
	})
	c.render(w, r, ss, http.StatusOK, "overdue", "Overdue at a glance", struct {
		Rows       []*recipientDue
		Late, Soon int
		More       bool
	}{rows, late, soon, list.More})
}
