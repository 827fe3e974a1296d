package console

import (
	"net/http"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

func (c *Console) recipients(w http.ResponseWriter, r *http.Request, ss *session) {
	rs, err := c.cfg.Ledger.Recipients(r.Context())
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	c.render(w, r, ss, http.StatusOK, "recipients", "Recipients", rs)
}

// monthCount is one month's disclosures to a recipient; Bar is its width
// out of 100 for the chart.
type monthCount struct {
	Month      string
	Count, Bar int
}

// chartMonths is how many months the recipient page counts.
const chartMonths = 12

func (c *Console) recipient(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx := r.Context()
	rec, err := c.cfg.Ledger.Recipient(ctx, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	now := c.cfg.Now().UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -(chartMonths - 1), 0)
	months := make([]monthCount, chartMonths)
	for i := range months {
		months[i].Month = start.AddDate(0, i, 0).Format("Jan 2006")
	}
	f := ledger.DisclosureFilter{Recipient: rec.ID, Since: start, Limit: ledger.MaxLimit}
	total, capped := 0, false
	// The disclosures are counted for those who may list them (listDisclosures).
	counted := c.may(ss, secExport)
	for counted {
		page, err := c.cfg.Ledger.Disclosures(ctx, f)
		if err != nil {
			c.fail(w, r, ss, err)
			return
		}
		for _, d := range page.Disclosures {
			at := d.Disclosure.DisclosedAt.UTC()
			i := (at.Year()-start.Year())*12 + int(at.Month()) - int(start.Month())
			if i >= 0 && i < chartMonths {
				months[i].Count++
				total++
			}
		}
		if page.Next == "" {
			break
		}
		if total >= 100*ledger.MaxLimit {
			capped = true
			break
		}
		f.After = page.Next
	}
	top := 0
	for _, m := range months {
		top = max(top, m.Count)
	}
	for i := range months {
		if top > 0 {
			months[i].Bar = months[i].Count * 100 / top
		}
	}
	var obs []ledger.Obligation
	if c.may(ss, secRequests) {
		list, err := c.cfg.Ledger.Obligations(ctx, ledger.ObligationFilter{Recipient: rec.ID, Limit: 200})
		if err != nil {
			c.fail(w, r, ss, err)
			return
		}
		obs = list.Obligations
	}
	c.render(w, r, ss, http.StatusOK, "recipient", rec.Name, struct {
		Recipient   *ledger.Recipient
		Counted     bool
		Months      []monthCount
		Total       int
		Capped      bool
		Obligations []ledger.Obligation
	}{rec, counted, months, total, capped, obs})
}
