package main

import (
	"encoding/csv"
	"fmt"
	"strconv"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// AccessesCmd lists the consultation log (DPA 2018 s.62): who looked up
// whose data, when and why.
type AccessesCmd struct {
	ClientFlags
	Subject   string `help:"Only consultations of this data subject (SCHEME:ID); sent in the request body, never the URL. The query is itself a consultation, recorded."`
	Principal string `help:"Only consultations by this principal (a name from the access file)."`
	Since     string `help:"From this time (inclusive), RFC 3339 or YYYY-MM-DD."`
	Until     string `help:"Before this time (exclusive), RFC 3339 or YYYY-MM-DD."`
	Limit     int    `help:"Most consultations to list (0: all, page by page)." default:"0"`
	CSV       bool   `help:"Print CSV instead of a table." name:"csv" xor:"format"`
}

// Run implements the accesses command.
func (c *AccessesCmd) Run(env *Env) error {
	f := ledger.ConsultationFilter{Principal: c.Principal}
	var err error
	if c.Subject != "" {
		subj, err := ledger.ParseSubject(c.Subject)
		if err != nil {
			return err
		}
		f.Subject = &subj
	}
	if f.Since, err = parseTimeFlag("since", c.Since); err != nil {
		return err
	}
	if f.Until, err = parseTimeFlag("until", c.Until); err != nil {
		return err
	}
	// Each page by person is a consultation of its own, recorded.
	all, err := allPages(c.Limit, func(limit int, after string) ([]ledger.ConsultationRecord, string, error) {
		f.Limit, f.After = limit, after
		page, err := c.client().Accesses(env.Ctx, f)
		if err != nil {
			return nil, "", err
		}
		return page.Consultations, page.Next, nil
	})
	if err != nil {
		return err
	}
	if c.JSON {
		if all == nil {
			all = []ledger.ConsultationRecord{}
		}
		return printJSON(env.Stdout, ledger.ConsultationPage{Consultations: all})
	}
	header := []string{"RECORDED", "PRINCIPAL", "OPERATION", "SUBJECT", "REASON", "QUERY", "SEQ"}
	row := func(r ledger.ConsultationRecord) []string {
		return []string{r.RecordedAt.UTC().Format(time.RFC3339), r.Principal, r.Operation, consulted(r), r.Reason, r.Query, strconv.FormatUint(r.Seq, 10)}
	}
	if c.CSV {
		w := csv.NewWriter(env.Stdout)
		w.Write(header)
		for _, r := range all {
			w.Write(row(r))
		}
		w.Flush()
		return w.Error()
	}
	t := newTable(env.Stdout, header...)
	for _, r := range all {
		cells := row(r)
		for i, v := range cells {
			cells[i] = dash(v)
		}
		t.row(cells...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "\n%s.\n", plural(len(all), "consultation"))
	return nil
}

// consulted says whom a consultation was about, as far as the answer shows.
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
