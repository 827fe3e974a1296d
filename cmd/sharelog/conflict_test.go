package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"

	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// TestReplayWithOtherContent: the same (source, id) sent again with the
// same content is a duplicate, in another JSON form too; with other content
// it is refused as a conflict: over HTTP 409 with a conflict problem for
// the event, and over HTTP and NATS kept in SHARELOG_REJECTED under reason
// conflict (the same conflicting copy posted again is kept once). The
// ledger keeps the first content.
func TestReplayWithOtherContent(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	registerRecipient(t, m, "acro")
	_, js := m.connect(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	ev := disclosure("casework", "c-1", []ledger.Subject{{Scheme: "dbs-ref", ID: secretID}}, "acro", []string{"user.criminal_history"}, at)
	other := withData(disclosure("casework", "c-1", []ledger.Subject{{Scheme: "dbs-ref", ID: secretID}}, "acro", []string{"user.criminal_history"}, at),
		func(d map[string]any) { d["justification"] = "another justification" })

	if out := publishAll(t, m, ev); out[0] != slhttp.OutcomeRecorded {
		t.Fatalf("first = %v", out)
	}
	indented, _ := json.MarshalIndent(ev, "", "  ")
	resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, indented)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"outcome":"duplicate"`) {
		t.Errorf("same content again: %d %s", resp.StatusCode, body)
	}

	resp, body = postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, other))
	var p struct {
		Code   string `json:"code"`
		Events []struct {
			ID       string           `json:"id"`
			Problems []ledger.Problem `json:"problems"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("Content-Type") != slhttp.ContentTypeProblem || p.Code != "conflict" ||
		len(p.Events) != 1 || p.Events[0].ID != "c-1" || p.Events[0].Problems[0].Reason != ledger.ReasonConflict {
		t.Errorf("other content over HTTP: %d %s", resp.StatusCode, body)
	}
	// The refused copy went to SHARELOG_IN for the ingest to keep; posted
	// again, it is a resend within the duplicate window, stored once.
	in, err := js.Stream(ctx, nats.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := in.GetLastMsgForSubject(ctx, nats.SubjectInHTTP)
	if err != nil || !strings.Contains(string(kept.Data), "another justification") || kept.Header.Get("Nats-Msg-Id") == nats.MsgID("casework", "c-1") {
		t.Fatalf("last on %s = %v, %v; want the conflicting copy under a message id of its own", nats.SubjectInHTTP, kept, err)
	}
	if resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, other)); resp.StatusCode != http.StatusConflict {
		t.Errorf("other content over HTTP again: %d %s", resp.StatusCode, body)
	}
	if again, err := in.GetLastMsgForSubject(ctx, nats.SubjectInHTTP); err != nil || again.Sequence != kept.Sequence {
		t.Errorf("the same conflicting copy posted again: last on %s = %v, %v; want %d", nats.SubjectInHTTP, again, err, kept.Sequence)
	}

	// Over NATS, structured and binary.
	seqs := map[uint64]int{kept.Sequence: 2}
	for i, msg := range []*natsio.Msg{{Subject: "sharelog.in.casework", Data: mustJSON(t, other)}, binaryMsg(t, "sharelog.in.casework", other)} {
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		seqs[ack.Sequence] = i
	}
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	rejected := rejectedOf(t, ctx, js, seqs)
	if !strings.Contains(string(rejected[2].Data()), "another justification") {
		t.Errorf("HTTP replay kept as %s", rejected[2].Data())
	}
	for i, msg := range rejected {
		if got := msg.Headers().Get(nats.HeaderReason); got != string(ledger.ReasonConflict) {
			t.Errorf("replay %d (2: over HTTP): reason %q, want conflict", i, got)
		}
		if want := nats.RejectedSubject(ledger.ReasonConflict, "casework"); msg.Subject() != want {
			t.Errorf("replay %d (2: over HTTP): subject %q, want %q", i, msg.Subject(), want)
		}
	}
	rec, err := m.Store.Disclosure(ctx, "c-1", "casework")
	if err != nil || rec.Disclosure.Justification != "enhanced check requested by a registered body" {
		t.Errorf("c-1 after the replays = %+v, %v", rec, err)
	}
	if m.Store.Count() != 2 {
		t.Errorf("ledger holds %d entries, want 2", m.Store.Count())
	}
}
