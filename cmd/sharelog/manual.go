package main

import (
	"fmt"
	"strconv"
)

// ManualCmd exports the manual queue: the notices a person must send, with
// what to send to whom. The output holds data subjects' identifiers, because
// they must be sent; keep it accordingly.
type ManualCmd struct {
	ClientFlags
	Format string `help:"Output: table, csv or json." enum:"table,csv,json" default:"table"`
}

// Run implements the manual command.
func (c *ManualCmd) Run(env *Env) error {
	if c.JSON {
		c.Format = "json"
	}
	if c.Format == "csv" {
		b, err := c.client().ManualCSV(env.Ctx)
		if err != nil {
			return err
		}
		_, err = env.Stdout.Write(b)
		return err
	}
	q, err := c.client().Manual(env.Ctx)
	if err != nil {
		return err
	}
	if c.Format == "json" {
		return printJSON(env.Stdout, map[string]any{"notices": q})
	}
	if len(q) == 0 {
		fmt.Fprintln(env.Stdout, "No manual notices to send.")
		return nil
	}
	t := newTable(env.Stdout, "NOTICE", "RECIPIENT", "CONTACT", "ACTION", "REQUEST", "SUBJECT", "CATEGORIES", "DUE", "OVERDUE")
	for _, n := range q {
		t.row(n.Notice, n.Recipient, n.Contact, n.Action, n.Request, n.Subject.String(), list(n.Categories), formatTime(n.Due), strconv.FormatBool(n.Overdue))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "\n%s to send. Mark each with: sharelog sent NOTICE --by NAME\n", plural(len(q), "notice"))
	return nil
}

// SentCmd marks a manual notice as sent.
type SentCmd struct {
	ClientFlags
	Notice string `arg:"" help:"The notice id (from sharelog manual)."`
	By     string `help:"Who sent it." required:""`
}

// Run implements the sent command.
func (c *SentCmd) Run(env *Env) error {
	r, err := c.client().MarkSent(env.Ctx, c.Notice, c.By)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(env.Stdout, r)
	}
	fmt.Fprintf(env.Stdout, "Notice %s marked sent by %s at %s.\n", r.Notice, r.SentBy, formatTime(r.At))
	return nil
}
