package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/metrics"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/store"
)

// cloudEvent returns a structured CloudEvent.
func cloudEvent(tb testing.TB, source, id, typ string, data any) []byte {
	tb.Helper()
	b, err := json.Marshal(map[string]any{
		"specversion": "1.0", "id": id, "source": source, "type": typ,
		"time": "2026-03-01T09:00:00Z", "datacontenttype": "application/json", "data": data,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// recipientEvent returns the registration of recipient id, on the manual channel.
func recipientEvent(tb testing.TB, id string) []byte {
	tb.Helper()
	return cloudEvent(tb, "admin", "rcp-"+id, ledger.TypeRecipient, map[string]any{
		"id": id, "name": "Recipient " + id, "role": "controller", "country": "GB", "channel": map[string]any{"type": "manual"}})
}

// disclosureEvent returns disclosure id of the dbs-ref subject to recipient
// to, made at (RFC 3339).
func disclosureEvent(tb testing.TB, id, subject, to, at string) []byte {
	tb.Helper()
	return cloudEvent(tb, "casework", id, ledger.TypeDisclosure, map[string]any{
		"subjects": []any{map[string]any{"scheme": "dbs-ref", "id": subject}}, "recipient": to,
		"categories": []string{"user.contact.email"}, "purpose": "essential.service", "lawfulBasis": "art6-1-b", "regime": "uk-gdpr",
		"disclosedAt": at})
}

// counterValue returns the value of counter name with the label value
// given (or the only one) in m.
func counterValue(t testing.TB, m *metrics.Metrics, name, label string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, c := range f.GetMetric() {
			if label == "" || (len(c.GetLabel()) > 0 && c.GetLabel()[0].GetValue() == label) {
				return c.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestIngestPipelinedAsAppliedOneByOne: the ingest loop, committing batches
// of 10 pipelined with the next, on messages that read what the batch
// before wrote (deliveries again of the batch before's disclosures,
// erasures of subjects disclosed just before, disclosures to recipients
// registered just before), leaves the ledger that applying the same
// events one by one leaves: the same entries, answers to Who, and
// obligations. Its metrics count each event once.
func TestIngestPipelinedAsAppliedOneByOne(t *testing.T) {
	ctx := context.Background()
	p := startPipelineConfig(t, false, nats.IngestConfig{BatchSize: 10})
	subject := func(k int) map[string]any {
		return map[string]any{"scheme": "dbs-ref", "id": fmt.Sprintf("S%03d", k%37)}
	}
	recipient := func(id string) []byte { return recipientEvent(t, id) }
	disclosure := func(k int, to string) []byte {
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(k) * time.Hour).Format(time.RFC3339)
		return disclosureEvent(t, fmt.Sprintf("d-%d", k), fmt.Sprintf("S%03d", k%37), to, at)
	}
	var msgs [][]byte
	var requests []string
	duplicates, refused := 0, 0
	for r := range 10 {
		msgs = append(msgs, recipient(fmt.Sprintf("r-%d", r)))
	}
	sent := map[int][]byte{}
	for k := range 400 {
		to := fmt.Sprintf("r-%d", k%10)
		if k%17 == 0 {
			to = fmt.Sprintf("n-%d", k)
			msgs = append(msgs, recipient(to))
		}
		sent[k] = disclosure(k, to)
		msgs = append(msgs, sent[k])
		if k%7 == 0 && k >= 6 {
			msgs = append(msgs, sent[k-6]) // again, as published before
			duplicates++
		}
		if k%11 == 3 {
			msgs = append(msgs, disclosure(1000+k, "nobody")) // refused: not registered
			refused++
		}
		if k%13 == 5 {
			req := fmt.Sprintf("E-%d", k)
			requests = append(requests, req)
			msgs = append(msgs, cloudEvent(t, "casework", "e-"+req, ledger.TypeErasure, map[string]any{
				"request": req, "subject": subject(k), "decidedAt": "2026-02-01T00:00:00Z"}))
		}
	}
	last := p.publishAll(t, "sharelog.in.casework", msgs)
	if err := p.store.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}

	// The same events, applied one by one.
	dir := t.TempDir()
	ref, err := store.Open(store.Config{Dir: filepath.Join(dir, "ledger"), KeyFile: filepath.Join(dir, "site.key"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for i, ev := range decodeAll(t, p, msgs) {
		b := ref.Begin()
		if o, err := b.Append(uint64(i+1), ev); o == 0 {
			b.Discard()
			t.Fatalf("reference: %s: %v", ev.ID, err)
		}
		if err := b.Commit(uint64(i + 1)); err != nil {
			t.Fatal(err)
		}
	}

	if p.store.Count() != ref.Count() {
		t.Fatalf("entries %d, one by one %d", p.store.Count(), ref.Count())
	}
	for seq := uint64(1); seq <= ref.Count(); seq++ {
		got, err := p.store.Entry(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref.Entry(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if got.Event.Source != want.Event.Source || got.Event.ID != want.Event.ID {
			t.Fatalf("entry %d is %s/%s, one by one %s/%s", seq, got.Event.Source, got.Event.ID, want.Event.Source, want.Event.ID)
		}
	}
	for k := range 37 {
		s := ledger.Subject{Scheme: "dbs-ref", ID: fmt.Sprintf("S%03d", k)}
		got, err := p.store.Who(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref.Who(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Who(%s):\n got %+v\nwant %+v", s.ID, got, want)
		}
	}
	told := func(st *store.Store, req string) []ledger.Obligation {
		t.Helper()
		rs, err := st.Status(ctx, req)
		if err != nil {
			t.Fatalf("Status(%s): %v", req, err)
		}
		for i := range rs.Obligations {
			o := &rs.Obligations[i] // times from the stream's clock or the store's
			o.OpenedAt, o.Due, o.Overdue, o.AnswerDue = time.Time{}, time.Time{}, false, nil
		}
		return rs.Obligations
	}
	for _, req := range requests {
		if got, want := told(p.store, req), told(ref, req); !reflect.DeepEqual(got, want) {
			t.Errorf("%s told:\n got %+v\nwant %+v", req, got, want)
		}
	}
	recorded := counterValue(t, p.m, "sharelog_events_total", "recorded")
	dups := counterValue(t, p.m, "sharelog_events_total", "duplicate")
	rejected := counterValue(t, p.m, "sharelog_events_total", "rejected")
	if recorded != float64(ref.Count()) || dups != float64(duplicates) || rejected != float64(refused) {
		t.Errorf("metrics: %v recorded, %v duplicates, %v rejected; want %d, %d and %d", recorded, dups, rejected, ref.Count(), duplicates, refused)
	}
	t.Logf("%v batches applied again", counterValue(t, p.m, "sharelog_ingest_batches_reapplied_total", ""))
}

// TestIngestRefusalKeepsThePipeline: refused events among events that read
// nothing the batch before wrote (disclosures of new subjects to
// recipients registered long before) cost no batch applied again: a
// speculative batch that meets a refusal commits what it holds and the
// refused event goes to the next batch, which sees the whole ledger
// (store.ErrRefusalDeferred). Each refusal is filed once.
func TestIngestRefusalKeepsThePipeline(t *testing.T) {
	ctx := context.Background()
	p := startPipelineConfig(t, false, nats.IngestConfig{BatchSize: 10})
	var msgs [][]byte
	for r := range 5 {
		msgs = append(msgs, recipientEvent(t, fmt.Sprintf("r-%d", r)))
	}
	last := p.publishAll(t, "sharelog.in.admin", msgs)
	if err := p.store.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	msgs, refused := nil, 0
	for k := range 400 {
		to := fmt.Sprintf("r-%d", k%5)
		if k%10 == 7 {
			to, refused = "nobody", refused+1
		}
		msgs = append(msgs, disclosureEvent(t, fmt.Sprintf("d-%d", k), fmt.Sprintf("S%04d", k), to, "2026-01-01T00:00:00Z"))
	}
	last = p.publishAll(t, "sharelog.in.casework", msgs)
	if err := p.store.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	if got, want := p.store.Count(), uint64(5+400-refused); got != want {
		t.Errorf("%d entries, want %d", got, want)
	}
	if got := counterValue(t, p.m, "sharelog_events_total", "rejected"); got != float64(refused) {
		t.Errorf("%v rejected, want %d", got, refused)
	}
	if got := counterValue(t, p.m, "sharelog_ingest_batches_reapplied_total", ""); got != 0 {
		t.Errorf("%v batches applied again, want none", got)
	}
}

// TestIngestWakesTheDispatcher: the NotifyRequests hook runs after each
// batch that opened obligations whose notices are due (ledger.Plan.
// OpensNotices), before WaitApplied returns: an erasure, and the release of
// a hold that held one (DPA 2018 s.47), but not a disclosure or a hold.
func TestIngestWakesTheDispatcher(t *testing.T) {
	ctx := context.Background()
	p := startPipelineConfig(t, false, nats.IngestConfig{})
	var woken atomic.Int64
	p.in.NotifyRequests(func() { woken.Add(1) })
	a1 := map[string]any{"scheme": "dbs-ref", "id": "A1"}
	steps := []struct {
		name string
		ev   []byte
		wake bool
	}{
		{"a recipient", recipientEvent(t, "r-1"), false},
		{"a disclosure", disclosureEvent(t, "d-1", "A1", "r-1", "2026-01-01T00:00:00Z"), false},
		{"a hold", cloudEvent(t, "dpo", "hold-1", ledger.TypeHold, map[string]any{"hold": "H", "scope": map[string]any{"subject": a1}, "reason": "inquiry"}), false},
		{"an erasure under the hold", cloudEvent(t, "dpo", "e-1", ledger.TypeErasure, map[string]any{
			"request": "E", "subject": a1, "decidedAt": "2026-02-01T00:00:00Z"}), true},
		{"the hold's release", cloudEvent(t, "dpo", "rel-1", ledger.TypeHoldReleased, map[string]any{"hold": "H", "reason": "over"}), true},
	}
	for _, s := range steps {
		before := woken.Load()
		last := p.publishAll(t, "sharelog.in.test", [][]byte{s.ev})
		if err := p.store.WaitApplied(ctx, last); err != nil {
			t.Fatal(err)
		}
		if got := woken.Load() - before; got != map[bool]int64{false: 0, true: 1}[s.wake] {
			t.Errorf("%s: the hook ran %d times, want it to run: %v", s.name, got, s.wake)
		}
	}
	if n := p.store.Count(); n != uint64(len(steps)) {
		t.Errorf("%d entries, want %d: a step was refused", n, len(steps))
	}
}
