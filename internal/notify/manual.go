package notify

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// ManualNotice is one line of the manual queue: what to send to whom. It
// holds the data subject's identifier, because a person must send it; it is
// shown to the operator only, never logged.
type ManualNotice struct {
	Recipient   string          `json:"recipient"`
	Name        string          `json:"name,omitempty"`
	Contact     string          `json:"contact,omitempty"`
	Notice      string          `json:"notice"`
	Action      string          `json:"action"`
	Request     string          `json:"request"`
	Subject     ledger.Subject  `json:"subject"`
	Categories  []string        `json:"categories"`
	Disclosures []string        `json:"disclosures"`
	Changes     []ledger.Change `json:"changes,omitempty"`
	Due         time.Time       `json:"due"`
	Overdue     bool            `json:"overdue,omitempty"`
}

// LogValue keeps the subject out of logs.
func (m ManualNotice) LogValue() slog.Value {
	return slog.GroupValue(slog.String("recipient", m.Recipient), slog.String("notice", m.Notice))
}

// ManualList is the JSON export of the manual queue.
type ManualList struct {
	Notices []ManualNotice `json:"notices"`
}

// ManualQueue returns the open manual-channel notices not yet sent, in the
// store's order, with the recipient's name and contact from the registry.
func (d *Dispatcher) ManualQueue(ctx context.Context) ([]ManualNotice, error) {
	queue, err := d.store.ManualQueue(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ManualNotice, 0, len(queue))
	for _, o := range queue {
		var n struct {
			Data ledger.Notice `json:"data"`
		}
		if err := json.Unmarshal(o.Event, &n); err != nil {
			return nil, fmt.Errorf("manual queue: notice %s: unreadable notice event", o.Obligation.Notice)
		}
		m := ManualNotice{
			Recipient:   o.Obligation.Recipient,
			Name:        o.Obligation.Name,
			Notice:      o.Obligation.Notice,
			Action:      n.Data.Action,
			Request:     n.Data.Request,
			Subject:     n.Data.Subject,
			Categories:  n.Data.Categories,
			Disclosures: n.Data.Disclosures,
			Changes:     n.Data.Changes,
			Due:         n.Data.Due,
			Overdue:     o.Obligation.Overdue,
		}
		if m.Action == "" {
			m.Action = o.Obligation.Action
		}
		if m.Request == "" {
			m.Request = o.Obligation.Request
		}
		if m.Due.IsZero() {
			m.Due = o.Obligation.Due
		}
		if rec, err := d.store.Recipient(ctx, m.Recipient); err == nil {
			m.Name, m.Contact = rec.Name, rec.Contact
		}
		out = append(out, m)
	}
	return out, nil
}

// ManualCSVHeader is the header row of the CSV export.
var ManualCSVHeader = []string{"recipient", "name", "contact", "notice", "action", "request",
	"subject_scheme", "subject_id", "categories", "disclosures", "changes", "due", "overdue"}

// WriteManualCSV writes the queue as CSV (RFC 4180) with ManualCSVHeader.
// Lists are joined with "; ", changes are JSON. A cell that a spreadsheet
// would run as a formula (starting with =, +, -, @, tab or CR) is prefixed
// with a single quote.
func WriteManualCSV(w io.Writer, queue []ManualNotice) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(ManualCSVHeader); err != nil {
		return err
	}
	for _, m := range queue {
		changes := ""
		if len(m.Changes) > 0 {
			b, err := json.Marshal(m.Changes)
			if err != nil {
				return err
			}
			changes = string(b)
		}
		row := []string{m.Recipient, m.Name, m.Contact, m.Notice, m.Action, m.Request,
			m.Subject.Scheme, m.Subject.ID, strings.Join(m.Categories, "; "), strings.Join(m.Disclosures, "; "),
			changes, m.Due.UTC().Format(time.RFC3339), fmt.Sprint(m.Overdue)}
		for i, c := range row {
			row[i] = csvSafe(c)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe defuses spreadsheet formula injection.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Obligation returns the obligation of notice, or ENOTFOUND.
func (d *Dispatcher) Obligation(ctx context.Context, notice string) (*ledger.Obligation, error) {
	return d.store.Obligation(ctx, notice)
}

// MarkSent records that a person sent the manual notice: it publishes a
// delivery record with outcome sent and waits until the ledger has applied
// it. It returns ENOTFOUND if there is no such notice, ECONFLICT if the
// notice is not on the manual channel, or is closed or already sent, and
// EINVALID without sentBy. Two concurrent calls for one notice record it once
// (the record's id is notice + "/" + attempt).
func (d *Dispatcher) MarkSent(ctx context.Context, notice, sentBy string) (*ledger.NoticeDelivery, error) {
	sentBy = strings.TrimSpace(sentBy)
	if sentBy == "" || len(sentBy) > 200 {
		return nil, ledger.Errorf(ledger.EINVALID, "sentBy is required: who sent the notice (at most 200 bytes)")
	}
	ob, err := d.store.Obligation(ctx, notice)
	if err != nil {
		return nil, err
	}
	switch {
	case ob.Channel != "manual":
		return nil, ledger.Errorf(ledger.ECONFLICT, "notice %s goes over the %s channel; only manual notices are marked sent", notice, ob.Channel)
	case !ob.Open():
		return nil, ledger.Errorf(ledger.ECONFLICT, "notice %s is %s", notice, ob.State)
	case ob.State == ledger.StateDelivered:
		return nil, ledger.Errorf(ledger.ECONFLICT, "notice %s was already marked sent", notice)
	}
	r := &ledger.NoticeDelivery{
		Notice:  notice,
		Attempt: ob.Attempts + 1,
		Channel: "manual",
		Outcome: ledger.DeliverySent,
		At:      d.cfg.Now().UTC(),
		SentBy:  sentBy,
	}
	ev, err := DeliveryEvent(r)
	if err != nil {
		return nil, err
	}
	acks, err := d.pub.Publish(ctx, SubjectDelivery, []*ledger.Event{ev})
	if err != nil {
		return nil, ledger.Errorf(ledger.EUNAVAILABLE, "delivery record not stored: %v", err)
	}
	if err := d.store.WaitApplied(ctx, acks[0].Seq); err != nil {
		return nil, err
	}
	return r, nil
}
