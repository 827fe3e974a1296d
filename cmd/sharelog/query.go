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
	fmt.Fprintf(env.Stdout, "\n%d disclosures to %d recipients.\n", who.Disclosures, len(who.Recipients))
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
	var all []ledger.DisclosureRecord
	for {
		if c.Limit > 0 {
			f.Limit = min(c.Limit-len(all), ledger.MaxLimit)
		}
		page, err := c.client().Disclosures(env.Ctx, f)
		if err != nil {
			return err
		}
		all = append(all, page.Disclosures...)
		if page.Next == "" || (c.Limit > 0 && len(all) >= c.Limit) {
			break
		}
		f.After = page.Next
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
	fmt.Fprintf(env.Stdout, "\n%d disclosures.\n", len(all))
	return nil
}

// DisclosureCmd shows one disclosure.
type DisclosureCmd struct {
	ClientFlags
	ID     string `arg:"" help:"The disclosure's CloudEvent id."`
	Source string `help:"The event source, when the id is used by more than one source."`
}

// Run implements the disclosure command. It prints JSON either way: one
// disclosure's fields do not fit a table.
func (c *DisclosureCmd) Run(env *Env) error {
	d, err := c.client().Disclosure(env.Ctx, c.ID, c.Source)
	if err != nil {
		return err
	}
	return printJSON(env.Stdout, d)
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
	fmt.Fprintf(env.Stdout, "\n%d recipients.\n", len(rs))
	return nil
}
