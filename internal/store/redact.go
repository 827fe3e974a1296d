package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// clearEvent returns the clear, pseudonymous part of a sealed entry: the
// event in the CloudEvents JSON format with every field that identifies a
// person or may name one removed. Subject identifiers become empty (their
// schemes stay); free text (justifications, summaries, notes, reasons),
// the people who decided or disclosed, record references and rectified
// values are dropped. What stays is the evidence that outlives forgetting:
// who received which categories, for what purpose, on what basis, when;
// which requests were decided and which notices answered.
func clearEvent(ev *ledger.Event) ([]byte, error) {
	data, err := redactData(ev.Data)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(struct {
		SpecVersion     string    `json:"specversion"`
		ID              string    `json:"id"`
		Source          string    `json:"source"`
		Type            string    `json:"type"`
		Time            time.Time `json:"time"`
		DataContentType string    `json:"datacontenttype"`
		DataSchema      string    `json:"dataschema,omitempty"`
		Data            any       `json:"data"`
	}{"1.0", ev.ID, ev.Source, ev.Type, ev.Time, "application/json", ev.DataSchema, data})
	if err != nil {
		return nil, fmt.Errorf("store: encode clear part: %w", err)
	}
	return b, nil
}

func redactSubject(s ledger.Subject) ledger.Subject { return ledger.Subject{Scheme: s.Scheme} }

// redactData returns a copy of an event's data without personal fields.
func redactData(data any) (any, error) {
	switch d := data.(type) {
	case *ledger.Disclosure:
		c := *d
		c.Subjects = make([]ledger.Subject, len(d.Subjects))
		for i, s := range d.Subjects {
			c.Subjects[i] = redactSubject(s)
		}
		c.DisclosedBy, c.Justification, c.Records = "", "", nil
		return &c, nil
	case *ledger.Rectification:
		c := *d
		c.Subject = redactSubject(d.Subject)
		c.Summary, c.DecidedBy = "", ""
		c.Changes = make([]ledger.Change, len(d.Changes))
		for i, ch := range d.Changes {
			c.Changes[i] = ledger.Change{Category: ch.Category, Field: ch.Field}
		}
		return &c, nil
	case *ledger.Erasure:
		c := *d
		c.Subject, c.DecidedBy = redactSubject(d.Subject), ""
		return &c, nil
	case *ledger.Restriction:
		c := *d
		c.Subject, c.DecidedBy = redactSubject(d.Subject), ""
		return &c, nil
	case *ledger.RestrictionLifted:
		c := *d
		c.Subject = redactSubject(d.Subject)
		return &c, nil
	case *ledger.NoticeAck:
		c := *d
		c.Note = ""
		return &c, nil
	case *ledger.Exemption:
		c := *d
		c.Justification = ""
		return &c, nil
	case *ledger.Hold:
		c := *d
		c.Reason, c.Scope = "", redactScope(d.Scope)
		return &c, nil
	case *ledger.HoldReleased:
		c := *d
		c.Reason, c.Scope = "", redactScope(d.Scope)
		return &c, nil
	}
	return nil, fmt.Errorf("store: no clear form for event data %T", data)
}

func redactScope(s *ledger.HoldScope) *ledger.HoldScope {
	if s == nil {
		return nil
	}
	c := *s
	if s.Subject != nil {
		r := redactSubject(*s.Subject)
		c.Subject = &r
	}
	return &c
}
