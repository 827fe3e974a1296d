package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	slhttp "github.com/sharelog/sharelog/internal/http"
)

// PublishCmd sends events to the server's HTTP API in batches.
type PublishCmd struct {
	ClientFlags
	Files []string `arg:"" help:"JSON files, each one structured CloudEvent or an array of them; - reads stdin."`
	Batch int      `help:"Events per request." default:"1000"`
}

// Run implements the publish command. Each batch is accepted or refused
// whole; publishing the same events again is harmless.
func (c *PublishCmd) Run(env *Env) error {
	var events []json.RawMessage
	for _, name := range c.Files {
		evs, err := readEvents(name)
		if err != nil {
			return err
		}
		events = append(events, evs...)
	}
	if c.Batch <= 0 {
		c.Batch = 1000
	}
	counts := map[string]int{}
	var results []slhttp.AcceptedEvent
	for start := 0; start < len(events); start += c.Batch {
		part := events[start:min(start+c.Batch, len(events))]
		body, err := json.Marshal(part)
		if err != nil {
			return err
		}
		acc, err := c.client().Publish(env.Ctx, body)
		var p *slhttp.Problem
		if errors.As(err, &p) && len(p.Events) > 0 {
			for _, ev := range p.Events {
				for _, pr := range ev.Problems {
					fmt.Fprintf(env.Stderr, "event %d (source %q, id %q): %s [%s]\n", start+ev.Index, ev.Source, ev.ID, pr.String(), pr.Reason)
				}
			}
			return fmt.Errorf("events %d to %d were not sent: %w", start, len(events)-1, p)
		}
		if err != nil {
			return err
		}
		for _, a := range acc.Accepted {
			counts[a.Outcome]++
		}
		results = append(results, acc.Accepted...)
	}
	if c.JSON {
		return printJSON(env.Stdout, slhttp.Accepted{Accepted: results})
	}
	fmt.Fprintf(env.Stdout, "%s sent: %d recorded, %d duplicate, %d rejected, %d pending.\n",
		plural(len(events), "event"), counts[slhttp.OutcomeRecorded], counts[slhttp.OutcomeDuplicate], counts[slhttp.OutcomeRejected], counts[slhttp.OutcomePending])
	return nil
}

// readEvents reads one event or an array of events from a file.
func readEvents(name string) ([]json.RawMessage, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	data = bytes.TrimSpace(data)
	switch {
	case len(data) > 0 && data[0] == '[':
		var evs []json.RawMessage
		if err := json.Unmarshal(data, &evs); err != nil {
			return nil, fmt.Errorf("%s: not a JSON array of events: %v", name, err)
		}
		return evs, nil
	case len(data) > 0 && data[0] == '{':
		if !json.Valid(data) {
			return nil, fmt.Errorf("%s: not valid JSON", name)
		}
		return []json.RawMessage{data}, nil
	}
	return nil, fmt.Errorf("%s: expected a JSON event object or an array of events", name)
}

// Help gives examples.
func (c *PublishCmd) Help() string {
	return `Examples:
  sharelog publish deploy/examples/disclosure-acro.json deploy/examples/disclosure-cgi.json
  cat events.json | sharelog publish -`
}
