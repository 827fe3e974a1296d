package console

import (
	"encoding/csv"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sharelog/sharelog/internal/ledger"
)

// The RoPA comparison: UK GDPR Art. 30(1)(d) asks the record of processing
// for "the categories of recipients to whom the personal data have been or
// will be disclosed". The DPO uploads their record (the ICO controller
// template's columns, as CSV); the console sets the recipients the ledger
// actually recorded, per purpose, beside the categories declared, and marks
// the differences.

// RoPA column headings of the ICO controller template that the comparison reads.
const (
	ropaPurpose    = "purpose of processing"
	ropaRecipients = "categories of recipients"
)

// maxRoPA bounds the uploaded file.
const maxRoPA = 1 << 20

// ropaColumns is the comparison's header.
var ropaColumns = []string{"purpose", "category_of_recipients", "declared_in_ropa", "observed_in_ledger", "recipients", "disclosures", "difference"}

// readRoPA reads the declared categories of recipients per purpose
// (lowercased purpose -> entries), from the first row that has both
// headings on. Entries are split on ';', ',' and new lines.
func readRoPA(r io.Reader) (map[string][]string, []string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	pc, rc := -1, -1
	declared := map[string][]string{}
	var order []string
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, ledger.Errorf(ledger.EINVALID, "the RoPA file is not CSV: %v", err)
		}
		if pc < 0 {
			for i, h := range row {
				switch strings.ToLower(strings.TrimSpace(h)) {
				case ropaPurpose:
					pc = i
				case ropaRecipients:
					rc = i
				}
			}
			if pc < 0 || rc < 0 {
				pc, rc = -1, -1
			}
			continue
		}
		if pc >= len(row) || rc >= len(row) || strings.TrimSpace(row[pc]) == "" {
			continue
		}
		purpose := strings.ToLower(strings.TrimSpace(row[pc]))
		if _, ok := declared[purpose]; !ok {
			order = append(order, purpose)
		}
		for _, e := range strings.FieldsFunc(row[rc], func(r rune) bool { return r == ';' || r == ',' || r == '\n' }) {
			if e = strings.TrimSpace(e); e != "" && !slices.Contains(declared[purpose], e) {
				declared[purpose] = append(declared[purpose], e)
			}
		}
		if declared[purpose] == nil {
			declared[purpose] = []string{}
		}
	}
	if pc < 0 {
		return nil, nil, ledger.Errorf(ledger.EINVALID, "the RoPA file has no header row with the columns %q and %q (the ICO controller template's)", "Purpose of processing", "Categories of recipients")
	}
	return declared, order, nil
}

// observedRecipient is what the ledger recorded for one purpose and recipient.
type observedRecipient struct {
	rec   ledger.Recipient
	count int
}

// ropaCSV compares an uploaded RoPA with the ledger's disclosures.
func (c *Console) ropaCSV(w http.ResponseWriter, r *http.Request, ss *session) {
	f, _, err := r.FormFile("ropa")
	if err != nil {
		c.errorPage(w, r, ss, http.StatusBadRequest, "Choose your record of processing (a CSV file with the ICO template's columns) to compare.")
		return
	}
	defer f.Close()
	declared, order, err := readRoPA(io.LimitReader(f, maxRoPA))
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	ctx := r.Context()
	rs, err := c.cfg.Ledger.Recipients(ctx)
	if err != nil {
		c.fail(w, r, ss, err)
		return
	}
	registry := map[string]ledger.Recipient{}
	for _, rec := range rs {
		registry[rec.ID] = rec
	}
	observed := map[string]map[string]*observedRecipient{} // purpose -> recipient
	fl := ledger.DisclosureFilter{Limit: ledger.MaxLimit}
	for {
		page, err := c.cfg.Ledger.Disclosures(ctx, fl)
		if err != nil {
			c.fail(w, r, ss, err)
			return
		}
		for _, d := range page.Disclosures {
			p := strings.ToLower(d.Disclosure.Purpose)
			if observed[p] == nil {
				observed[p] = map[string]*observedRecipient{}
				if _, ok := declared[p]; !ok {
					order = append(order, p)
				}
			}
			o := observed[p][d.Disclosure.Recipient]
			if o == nil {
				rec, ok := registry[d.Disclosure.Recipient]
				if !ok {
					rec = ledger.Recipient{ID: d.Disclosure.Recipient, Name: d.Disclosure.Recipient}
				}
				o = &observedRecipient{rec: rec}
				observed[p][d.Disclosure.Recipient] = o
			}
			o.count++
		}
		if page.Next == "" {
			break
		}
		fl.After = page.Next
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
	w.Header().Set("Content-Disposition", `attachment; filename="sharelog-ropa-recipients.csv"`)
	cw := csv.NewWriter(w)
	cw.Write(ropaColumns)
	for _, p := range order {
		matched := map[string]bool{}
		ids := make([]string, 0, len(observed[p]))
		for id := range observed[p] {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			o := observed[p][id]
			category, declaredAs := o.rec.Role, ""
			for _, e := range declared[p] {
				if strings.EqualFold(e, o.rec.ID) || strings.EqualFold(e, o.rec.Name) || strings.EqualFold(e, o.rec.Role) {
					declaredAs = e
					matched[e] = true
					break
				}
			}
			row := []string{cell(p), cell(category), "no", "yes", cell(o.rec.Name + " (" + o.rec.ID + ")"), strconv.Itoa(o.count), "disclosed, not declared in the RoPA"}
			if declaredAs != "" {
				row[1], row[2], row[6] = cell(declaredAs), "yes", ""
			}
			cw.Write(row)
		}
		for _, e := range declared[p] {
			if !matched[e] {
				cw.Write([]string{cell(p), cell(e), "yes", "no", "", "0", "declared, no disclosure recorded"})
			}
		}
	}
	cw.Flush()
}
