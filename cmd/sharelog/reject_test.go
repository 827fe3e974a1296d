package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// registerRecipient records one recipient over HTTP.
func registerRecipient(t *testing.T, m *testMain, id string) {
	t.Helper()
	ev := map[string]any{
		"specversion": "1.0", "id": "recipient-" + id, "source": "admin", "type": ledger.TypeRecipient,
		"time": "2026-01-01T00:00:00Z", "datacontenttype": "application/json",
		"data": map[string]any{"id": id, "name": "Recipient " + id, "role": "competent-authority",
			"country": "GB", "regime": "dpa-part3", "channel": map[string]any{"type": "nats"}},
	}
	resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, ev))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("register %s: %d %s", id, resp.StatusCode, body)
	}
}

func withData(ev map[string]any, f func(d map[string]any)) map[string]any {
	d := ev["data"].(map[string]any)
	f(d)
	return ev
}

// rejectedOf reads SHARELOG_REJECTED until it has found the rejection of
// each message published at the stream sequences of seqs (stream sequence
// -> case index), and returns them by case index.
func rejectedOf(t *testing.T, ctx context.Context, js jetstream.JetStream, seqs map[uint64]int) map[int]jetstream.Msg {
	t.Helper()
	cons, err := js.OrderedConsumer(ctx, nats.StreamRejected, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	found := make(map[int]jetstream.Msg, len(seqs))
	for len(found) < len(seqs) {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("SHARELOG_REJECTED: %d of %d found: %v", len(found), len(seqs), err)
		}
		seq, _ := strconv.ParseUint(msg.Headers().Get(nats.HeaderStreamSeq), 10, 64)
		if i, ok := seqs[seq]; ok {
			found[i] = msg
		}
	}
	return found
}

// TestRejectedOverNATS sends every kind of bad input over NATS and finds each
// in SHARELOG_REJECTED, original bytes and the reason, with the ledger untouched.
func TestRejectedOverNATS(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	registerRecipient(t, m, "acro")
	_, js := m.connect(t)
	ctx := context.Background()
	subj := []ledger.Subject{{Scheme: "dbs-ref", ID: secretID}}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	good := func(id string) map[string]any {
		return disclosure("casework", id, subj, "acro", []string{"user.criminal_history"}, at)
	}

	headerBinary := binaryMsg(t, "sharelog.in.casework", good("bin-subject-attr"))
	headerBinary.Header.Set("ce-subject", secretID)
	extBinary := binaryMsg(t, "sharelog.in.casework", good("bin-extension"))
	extBinary.Header.Set("ce-caseref", "ref-"+secretID)

	cases := []struct {
		name   string
		msg    *natsio.Msg
		reason ledger.Reason
		source string // the source the rejection is filed under; "" for none
	}{
		{"malformed JSON", &natsio.Msg{Data: []byte(`{"specversion":"1.0", nope`)}, ledger.ReasonMalformed, ""},
		{"not a CloudEvent", &natsio.Msg{Data: []byte(`{"hello":"world"}`)}, ledger.ReasonNotCloudEvent, ""},
		{"wrong specversion", &natsio.Msg{Data: mustJSON(t, func() map[string]any { e := good("v03"); e["specversion"] = "0.3"; return e }())}, ledger.ReasonSpecVersion, "casework"},
		{"unknown type", &natsio.Msg{Data: mustJSON(t, func() map[string]any { e := good("ut"); e["type"] = "org.sharelog.gossip.v1"; return e }())}, ledger.ReasonUnknownType, "casework"},
		{"schema-invalid data", &natsio.Msg{Data: mustJSON(t, withData(good("si"), func(d map[string]any) { delete(d, "categories") }))}, ledger.ReasonInvalidData, "casework"},
		{"unknown category", &natsio.Msg{Data: mustJSON(t, withData(good("uc"), func(d map[string]any) { d["categories"] = []string{"user.contact.emial"} }))}, ledger.ReasonUnknownKey, "casework"},
		{"dpa-part3 without justification", &natsio.Msg{Data: mustJSON(t, withData(good("nj"), func(d map[string]any) { delete(d, "justification") }))}, ledger.ReasonInvalidData, "casework"},
		{"unknown recipient", &natsio.Msg{Data: mustJSON(t, withData(good("ur"), func(d map[string]any) { d["recipient"] = "nobody" }))}, ledger.ReasonUnknownRecipient, "casework"},
		{"oversize", &natsio.Msg{Data: mustJSON(t, withData(good("big"), func(d map[string]any) { d["justification"] = strings.Repeat("x", 1<<20+10) }))}, ledger.ReasonOversize, ""},
		{"identifier in subject attribute", headerBinary, ledger.ReasonIdentifierHeader, "casework"},
		{"identifier in an extension", extBinary, ledger.ReasonIdentifierHeader, ""},
		{"another producer", &natsio.Msg{Data: mustJSON(t, func() map[string]any {
			e := good("other")
			e["source"], e["type"] = "https://other.example/sys.tem", "org.sharelog.gossip.v1"
			return e
		}())}, ledger.ReasonUnknownType, "https://other.example/sys.tem"},
		{"identifier in the source, refused for its data", &natsio.Msg{Data: mustJSON(t, withData(func() map[string]any {
			e := good("leaky-source")
			e["source"] = "/people/" + secretID
			return e
		}(), func(d map[string]any) { d["categories"] = "not-an-array" }))}, ledger.ReasonInvalidData, ""},
	}
	before := m.Store.Count()
	seqs := map[uint64]int{}
	for i, c := range cases {
		c.msg.Subject = "sharelog.in.casework"
		ack, err := js.PublishMsg(ctx, c.msg)
		if err != nil {
			t.Fatalf("%s: publish: %v", c.name, err)
		}
		seqs[ack.Sequence] = i
	}
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.Store.Count(); got != before {
		t.Errorf("ledger grew from %d to %d entries on bad input", before, got)
	}

	for i, msg := range rejectedOf(t, ctx, js, seqs) {
		c := cases[i]
		if got := ledger.Reason(msg.Headers().Get(nats.HeaderReason)); got != c.reason {
			t.Errorf("%s: reason %q, want %q (detail: %s)", c.name, got, c.reason, msg.Headers().Get(nats.HeaderDetail))
		}
		if want := nats.RejectedSubject(c.reason, c.source); msg.Subject() != want {
			t.Errorf("%s: subject %q, want %q", c.name, msg.Subject(), want)
		}
		if strings.Contains(msg.Subject(), secretID) {
			t.Errorf("%s: subject %q holds the identifier", c.name, msg.Subject())
		}
		if string(msg.Data()) != string(c.msg.Data) {
			t.Errorf("%s: rejected body differs from the original", c.name)
		}
		if strings.Contains(msg.Headers().Get(nats.HeaderDetail), secretID) {
			t.Errorf("%s: detail header quotes the identifier", c.name)
		}
		if msg.Headers().Get(nats.HeaderDetail) == "" {
			t.Errorf("%s: no detail", c.name)
		}
	}
	// A producer subscribes to its own rejections by its source, and a
	// consumer by reason with a wildcard for the source.
	for filter, want := range map[string]int{
		"sharelog.rejected.*." + nats.SourceToken("casework"):                      7,
		"sharelog.rejected.*." + nats.SourceToken("https://other.example/sys.tem"): 1,
		"sharelog.rejected." + string(ledger.ReasonUnknownType) + ".>":             2,
		"sharelog.rejected.*." + nats.SourceUnknown:                                5,
	} {
		cons, err := js.OrderedConsumer(ctx, nats.StreamRejected, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := int(info.NumPending); got != want {
			t.Errorf("%s: %d rejections, want %d", filter, got, want)
		}
	}
	metrics := get(t, m.HTTP.URL()+"/metrics")
	for _, r := range []ledger.Reason{ledger.ReasonUnknownType, ledger.ReasonIdentifierHeader, ledger.ReasonOversize} {
		if !strings.Contains(metrics, fmt.Sprintf(`sharelog_rejected_total{reason=%q,transport="nats"}`, r)) {
			t.Errorf("metrics do not count %s rejections", r)
		}
	}
	if strings.Contains(m.logs.String(), secretID) {
		t.Error("logs contain the identifier")
	}
}

// TestRejectedOverHTTP checks that HTTP answers 400 problem+json naming each
// problem of each event, and that a batch with one bad event records nothing.
func TestRejectedOverHTTP(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	registerRecipient(t, m, "acro")
	subj := []ledger.Subject{{Scheme: "dbs-ref", ID: secretID}}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	good := func(id string) map[string]any {
		return disclosure("web", id, subj, "acro", []string{"user.criminal_history"}, at)
	}
	before := m.Store.Count()

	batch := []any{
		good("ok-1"),
		withData(good("bad-cat"), func(d map[string]any) { d["categories"] = []string{"user.criminal_histroy"} }),
		good("ok-2"),
		withData(good("bad-rcpt"), func(d map[string]any) { d["recipient"] = "nobody" }),
	}
	resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents-batch+json", nil, mustJSON(t, batch))
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != slhttp.ContentTypeProblem {
		t.Fatalf("batch with bad events: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var p slhttp.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 2 || p.Events[0].Index != 1 || p.Events[1].Index != 3 {
		t.Fatalf("problem events = %+v, want indexes 1 and 3", p.Events)
	}
	if pr := p.Events[0].Problems[0]; pr.Reason != ledger.ReasonUnknownKey || !strings.Contains(pr.Detail, "user.criminal_histroy") || pr.Field != "data.categories[0]" {
		t.Errorf("bad category problem = %+v", pr)
	}
	if pr := p.Events[1].Problems[0]; pr.Reason != ledger.ReasonUnknownRecipient || pr.Field != "data.recipient" {
		t.Errorf("bad recipient problem = %+v", pr)
	}

	single := []struct {
		name        string
		contentType string
		body        []byte
		status      int
		reason      ledger.Reason
	}{
		{"malformed", "application/cloudevents+json", []byte(`{"id":`), 400, ledger.ReasonMalformed},
		{"specversion", "application/cloudevents+json", mustJSON(t, func() map[string]any { e := good("v"); e["specversion"] = "0.3"; return e }()), 400, ledger.ReasonSpecVersion},
		{"unknown type", "application/cloudevents+json", mustJSON(t, func() map[string]any { e := good("t"); e["type"] = "com.example.other"; return e }()), 400, ledger.ReasonUnknownType},
		{"missing s.62 field", "application/cloudevents+json", mustJSON(t, withData(good("j"), func(d map[string]any) { delete(d, "disclosedBy") })), 400, ledger.ReasonInvalidData},
		{"oversize", "application/cloudevents+json", mustJSON(t, withData(good("big"), func(d map[string]any) { d["justification"] = strings.Repeat("y", 2<<20) })), 413, ""},
		{"not an event content type", "text/plain", []byte("hello"), 0, ""},
	}
	for _, c := range single {
		resp, body := postEvents(t, m.HTTP.URL(), c.contentType, nil, c.body)
		if c.status != 0 && resp.StatusCode != c.status || c.status == 0 && resp.StatusCode < 400 {
			t.Errorf("%s: status %d, want %d: %s", c.name, resp.StatusCode, c.status, body)
			continue
		}
		if c.reason != "" && !strings.Contains(string(body), `"reason":"`+string(c.reason)+`"`) {
			t.Errorf("%s: body does not name reason %s: %s", c.name, c.reason, body)
		}
		if strings.Contains(string(body), secretID) {
			t.Errorf("%s: error body quotes the identifier", c.name)
		}
	}
	if err := m.Ingester.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := m.Store.Count(); got != before {
		t.Errorf("ledger grew from %d to %d entries on refused requests", before, got)
	}
	if got := get(t, m.HTTP.URL()+"/metrics"); !strings.Contains(got, `sharelog_rejected_total{reason="unknown-key",transport="http"} 1`) {
		t.Errorf("metrics do not count the HTTP rejection")
	}
	// No identifier in a URL: the API refuses a subject query parameter.
	for path, post := range map[string]string{
		"/v1/disclosures?subject=dbs-ref:x": "/v1/disclosures/search",
		"/v1/obligations?subject=dbs-ref:x": "/v1/reports/subject",
	} {
		resp, err := http.Get(m.HTTP.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), post) {
			t.Errorf("GET %s: %d %s, want 400 pointing to %s", path, resp.StatusCode, body, post)
		}
	}
	if got := m.logs.String(); strings.Contains(got, "dbs-ref:x") {
		t.Error("a subject from a URL reached the logs")
	}
}
