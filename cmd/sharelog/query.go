package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sharelog/sharelog/internal/ledger"
)

// WhoCmd answers "who did we share this person's data with?".
type WhoCmd struct {
	ClientFlags
	Subject string `arg:"" help:"The data subject as SCHEME:ID, such as dbs-ref:A1."`
}

// Run implements the who command.
func (c *WhoCmd) Run(env *Env) error {
	subj, err := ledger.ParseSubject(c.Subject)
	if err != nil {
		return err
	}
	who, err := c.client().Who(env.Ctx, subj)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(env.Stdout, who)
	}
	if len(who.Recipients) == 0 {
		fmt.Fprintln(env.Stdout, "No disclosures of this person's data are recorded.")
		if len(who.Holds) > 0 {
			fmt.Fprintf(env.Stdout, "Legal holds: %s.\n", strings.Join(who.Holds, ", "))
		}
		return nil
	}
	t := newTable(env.Stdout, "RECIPIENT", "NAME", "ROLE", "CATEGORIES", "PURPOSES", "LAWFUL BASES", "FIRST", "LAST", "COUNT", "OPEN")
	for _, r := range who.Recipients {
		name := r.Name
		if r.Inquiry {
			name += " (inquiry)"
		}
		if len(r.ReceivedFrom) > 0 {
			name += " (data from " + strings.Join(r.ReceivedFrom, ", ") + ")"
		}
		t.row(r.Recipient, name, r.Role, list(r.Categories), list(r.Purposes), list(r.LawfulBases),
			formatTime(r.FirstDisclosedAt), formatTime(r.LastDisclosedAt), strconv.Itoa(r.Count), strconv.Itoa(r.OpenObligations))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "\n%s to %s.\n", plural(who.Disclosures, "disclosure"), plural(len(who.Recipients), "recipient"))
	if len(who.Holds) > 0 {
		fmt.Fprintf(env.Stdout, "Legal holds (the ledger will not forget this person): %s.\n", strings.Join(who.Holds, ", "))
	}
	return nil
}

// DisclosuresCmd lists disclosures.
type DisclosuresCmd struct {
	ClientFlags
	Subject   string `help:"Only disclosures of this data subject (SCHEME:ID); sent in the request body, never the URL."`
	Recipient string `help:"Only disclosures to this recipient id."`
	Since     string `help:"From this time (inclusive), RFC 3339 or YYYY-MM-DD."`
	Until     string `help:"Before this time (exclusive), RFC 3339 or YYYY-MM-DD."`
	Limit     int    `help:"Most disclosures to list (0: all, page by page)." default:"0"`
}

// allPages fetches page after page until the last, or until it holds limit
// items (0: all): fetch gets the page after the cursor after ("" first),
// of at most limit items (0: the server's default), and returns its items and
// the next page's cursor ("" after the last).
func allPages[T any](limit int, fetch func(limit int, after string) ([]T, string, error)) ([]T, error) {
	var all []T
	after := ""
	for {
		n := 0
		if limit > 0 {
			n = min(limit-len(all), ledger.MaxLimit)
		}
		items, next, err := fetch(n, after)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == "" || (limit > 0 && len(all) >= limit) {
			return all, nil
		}
		after = next
	}
}

// Run implements the disclosures command.
func (c *DisclosuresCmd) Run(env *Env) error {
	var f ledger.DisclosureFilter
	var err error
	if c.Subject != "" {
		subj, err := ledger.ParseSubject(c.Subject)
		if err != nil {
			return err
		}
		f.Subject = &subj
	}
	f.Recipient = c.Recipient
	if f.Since, err = parseTimeFlag("since", c.Since); err != nil {
		return err
	}
	if f.Until, err = parseTimeFlag("until", c.Until); err != nil {
		return err
	}
	all, err := allPages(c.Limit, func(limit int, after string) ([]ledger.DisclosureRecord, string, error) {
		f.Limit, f.After = limit, after
		page, err := c.client().Disclosures(env.Ctx, f)
		if err != nil {
			return nil, "", err
		}
		return page.Disclosures, page.Next, nil
	})
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(env.Stdout, ledger.DisclosurePage{Disclosures: all})
	}
	t := newTable(env.Stdout, "DISCLOSED", "RECIPIENT", "SUBJECTS", "CATEGORIES", "PURPOSE", "LAWFUL BASIS", "REGIME", "SOURCE", "ID")
	for _, d := range all {
		t.row(formatTime(d.Disclosure.DisclosedAt), d.Disclosure.Recipient, strconv.Itoa(len(d.Disclosure.Subjects)),
			list(d.Disclosure.Categories), d.Disclosure.Purpose, d.Disclosure.LawfulBasis, d.Disclosure.Regime, d.Source, d.ID)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "\n%s.\n", plural(len(all), "disclosure"))
	return nil
}

// DisclosureCmd shows one disclosure.
type DisclosureCmd struct {
	ClientFlags
	ID     string `arg:"" help:"The disclosure's CloudEvent id."`
	Source string `help:"The event source, when the id is used by more than one source."`
}

// Run implements the disclosure command: one field a row, or JSON.
func (c *DisclosureCmd) Run(env *Env) error {
	d, err := c.client().Disclosure(env.Ctx, c.ID, c.Source)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(env.Stdout, d)
	}
	subjects := make([]string, len(d.Disclosure.Subjects))
	for i, s := range d.Disclosure.Subjects {
		subjects[i] = s.String()
	}
	t := newTable(env.Stdout, "FIELD", "VALUE")
	rows := [][2]string{
		{"id", d.ID},
		{"source", d.Source},
		{"seq", strconv.FormatUint(d.Seq, 10)},
		{"recorded", formatTime(d.RecordedAt)},
		{"disclosed", formatTime(d.Disclosure.DisclosedAt)},
		{"recipient", d.Disclosure.Recipient},
		{"subjects", list(subjects)},
		{"categories", list(d.Disclosure.Categories)},
		{"purpose", d.Disclosure.Purpose},
		{"lawful basis", d.Disclosure.LawfulBasis},
		{"regime", d.Disclosure.Regime},
		{"disclosed by", dash(d.Disclosure.DisclosedBy)},
		{"justification", dash(d.Disclosure.Justification)},
	}
	if len(d.Disclosure.Records) > 0 {
		rows = append(rows, [2]string{"records", compactJSON(d.Disclosure.Records)})
	}
	if d.Disclosure.Transfer != nil {
		rows = append(rows, [2]string{"transfer", compactJSON(d.Disclosure.Transfer)})
	}
	if d.Disclosure.Inquiry {
		rows = append(rows, [2]string{"inquiry", "true"})
	}
	if d.Disclosure.OnwardOf != "" {
		rows = append(rows, [2]string{"onward of", d.Disclosure.OnwardOf})
	}
	if d.AfterErasure != "" {
		rows = append(rows, [2]string{"after erasure", d.AfterErasure})
	}
	if d.Forgotten {
		rows = append(rows, [2]string{"forgotten", "a subject was forgotten: identifiers and free text destroyed"})
	}
	for _, r := range rows {
		t.row(r[0], r[1])
	}
	return t.flush()
}

// RecipientsCmd lists the recipient registry.
type RecipientsCmd struct {
	ClientFlags
}

// Run implements the recipients command.
func (c *RecipientsCmd) Run(env *Env) error {
	rs, err := c.client().Recipients(env.Ctx)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(env.Stdout, map[string]any{"recipients": rs})
	}
	t := newTable(env.Stdout, "ID", "NAME", "ROLE", "COUNTRY", "REGIME", "CHANNEL")
	for _, r := range rs {
		t.row(r.ID, r.Name, r.Role, r.Country, r.Regime, r.Channel.Type)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "\n%s.\n", plural(len(rs), "recipient"))
	return nil
}

// Help gives examples.
func (c *WhoCmd) Help() string {
	return `Examples:
  sharelog who dbs-ref:A1
  sharelog who dbs-ref:A1 --json`
}

// Help gives examples.
func (c *DisclosuresCmd) Help() string {
	return `Examples:
  sharelog disclosures --recipient acro --since 2026-11-01 --until 2026-12-01
  sharelog disclosures --subject dbs-ref:A1 --json`
}
