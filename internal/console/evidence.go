package console

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

func (c *Console) evidence(w http.ResponseWriter, r *http.Request, ss *session) {
	var checkpoint string
	if c.cfg.Tree != nil {
		b, err := c.cfg.Tree.Checkpoint(r.Context(), 0)
		switch {
		case err == nil:
			checkpoint = string(b)
		case !errIs(err, ledger.ENOTFOUND):
			c.fail(w, r, ss, err)
			return
		}
	}
	now := c.cfg.Now().UTC()
	c.render(w, r, ss, http.StatusOK, "evidence", "Evidence", struct {
		Checkpoint   string
		MayExport    bool
		MayAccesses  bool
		Since, Until string
	}{checkpoint, c.may(ss, secExport), c.may(ss, secAccesses), now.AddDate(0, -1, 0).Format(time.DateOnly), now.AddDate(0, 0, 1).Format(time.DateOnly)})
}

// disclosureColumns is the disclosures CSV's header. It names no person:
// the record of disclosures as the Commissioner may ask for it (UK GDPR
// Art. 30(1)(d)), each disclosure with the number of people it was about.
var disclosureColumns = []string{"seq", "recorded_at", "source", "id", "disclosed_at", "recipient", "categories",
	"purpose", "lawful_basis", "regime", "subjects", "inquiry", "after_erasure", "while_restricted", "forgotten"}

// disclosuresCSV exports the disclosures made in a period (since
// inclusive, until exclusive; dates, UTC).
func (c *Console) disclosuresCSV(w http.ResponseWriter, r *http.Request, ss *session) {
	q := r.URL.Query()
	since, err1 := time.Parse(time.DateOnly, q.Get("since"))
	until, err2 := time.Parse(time.DateOnly, q.Get("until"))
	if err1 != nil || err2 != nil || !until.After(since) {
		c.errorPage(w, r, ss, http.StatusBadRequest, "Enter a period: from and to dates (YYYY-MM-DD), the second after the first.")
		return
	}
	ctx := r.Context()
	f := ledger.DisclosureFilter{Since: since, Until: until, Limit: ledger.MaxLimit}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
	w.Header().Set("Content-Disposition", `attachment; filename="sharelog-disclosures-`+since.Format(time.DateOnly)+`-`+until.Format(time.DateOnly)+`.csv"`)
	cw := csv.NewWriter(w)
	cw.Write(disclosureColumns)
	for {
		page, err := c.cfg.Ledger.Disclosures(ctx, f)
		if err != nil {
			// The header is sent; end the file with a line saying so.
			c.log.Error("disclosures export", "err", err)
			cw.Write([]string{"error: export incomplete"})
			break
		}
		for _, d := range page.Disclosures {
			dd := d.Disclosure
			cw.Write([]string{strconv.FormatUint(d.Seq, 10), d.RecordedAt.UTC().Format(time.RFC3339), cell(d.Source), cell(d.ID),
				dd.DisclosedAt.UTC().Format(time.RFC3339), dd.Recipient, strings.Join(dd.Categories, ";"), dd.Purpose,
				dd.LawfulBasis, dd.Regime, strconv.Itoa(len(dd.Subjects)), strconv.FormatBool(dd.Inquiry),
				cell(d.AfterErasure), cell(d.WhileRestricted), strconv.FormatBool(d.Forgotten)})
		}
		if page.Next == "" {
			break
		}
		f.After = page.Next
	}
	cw.Flush()
}

// cell keeps a producer's free text from being read as a formula by a
// spreadsheet (CSV injection): a leading =, +, -, @, tab or carriage
// return gets a quote in front.
func cell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
