package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// echoMarker is a refused value: no answer, header or rejection header may
// quote it back.
const echoMarker = "ZQ-ECHO-MARK-7731"

// refusedValues are events refused for a value in a field that may hold
// personal data (identifiers, free text, people, record references,
// dates), each value carrying echoMarker. Vocabulary keys are left out:
// an unknown key is named in its error (DESIGN.md), and is no one's data.
func refusedValues(t *testing.T) map[string]map[string]any {
	good := echoEvent
	return map[string]map[string]any{
		"conflicting replay": withData(good("e-recorded"), func(d map[string]any) { d["justification"] = echoMarker }),
		"identifier too long": withData(good("e-1"), func(d map[string]any) {
			d["subjects"] = []ledger.Subject{{Scheme: "dbs-ref", ID: echoMarker + strings.Repeat("x", 300)}}
		}),
		"scheme not a word":        withData(good("e-2"), func(d map[string]any) { d["subjects"] = []ledger.Subject{{Scheme: echoMarker, ID: "A1"}} }),
		"date not a date":          withData(good("e-3"), func(d map[string]any) { d["disclosedAt"] = echoMarker }),
		"free text too long":       withData(good("e-4"), func(d map[string]any) { d["justification"] = strings.Repeat(echoMarker, 400) }),
		"person of the wrong type": withData(good("e-5"), func(d map[string]any) { d["disclosedBy"] = []string{echoMarker} }),
		"unknown field":            withData(good("e-6"), func(d map[string]any) { d["note"] = echoMarker }),
		"record reference without ref": withData(good("e-7"), func(d map[string]any) {
			d["records"] = []map[string]any{{"system": echoMarker}}
		}),
		"country not a country": withData(good("e-8"), func(d map[string]any) { d["transfer"] = map[string]any{"country": echoMarker} }),
		"identifier in an extension": func() map[string]any {
			e := withData(good("e-9"), func(d map[string]any) { d["subjects"] = []ledger.Subject{{Scheme: "dbs-ref", ID: echoMarker}} })
			e["caseref"] = echoMarker
			return e
		}(),
		"identifier as the event id": func() map[string]any {
			e := withData(good(echoMarker), func(d map[string]any) { d["subjects"] = []ledger.Subject{{Scheme: "dbs-ref", ID: echoMarker}} })
			e["type"] = "org.sharelog.gossip.v1"
			return e
		}(),
		"rectification without a decision": ce("dpo", "e-10", ledger.TypeRectification, map[string]any{
			"request": "R-E", "subject": ledger.Subject{Scheme: "dbs-ref", ID: echoMarker},
			"changes": []map[string]any{{"category": "user.contact.address", "field": "address", "value": map[string]any{"x": echoMarker}}},
		}),
	}
}

// echoEvent returns a valid disclosure with the given id.
func echoEvent(id string) map[string]any {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	return disclosure("casework", id, []ledger.Subject{{Scheme: "dbs-ref", ID: "ECHO-1"}}, "acro", []string{"user.criminal_history"}, at)
}

// TestRefusedValuesNotEchoed sends each refused value over HTTP, over
// NATS (structured, and binary with a producer's header holding it) and to
// the NATS service, and finds the marker in no answer, no header of an
// answer, and no header of a rejection in SHARELOG_REJECTED, whose copies
// carry only sharelog's own headers.
func TestRefusedValuesNotEchoed(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	registerRecipient(t, m, "acro")
	publishAll(t, m, echoEvent("e-recorded")) // replayed with other content below
	nc, js := m.connect(t)
	ctx := context.Background()
	noMarker := func(what string, h map[string][]string, body []byte) {
		t.Helper()
		if strings.Contains(string(body), echoMarker) {
			t.Errorf("%s: the answer quotes the refused value: %s", what, body)
		}
		for k, vs := range h {
			for _, v := range vs {
				if strings.Contains(k+v, echoMarker) {
					t.Errorf("%s: header %s: %s quotes the refused value", what, k, v)
				}
			}
		}
	}
	seqs := map[uint64]int{}
	var names []string
	for name, ev := range refusedValues(t) {
		resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, ev))
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusConflict {
			t.Errorf("%s over HTTP: status %d, want 400 or 409: %s", name, resp.StatusCode, body)
		}
		noMarker(name+" over HTTP", resp.Header, body)

		req := natsio.NewMsg(nats.SubjectService)
		req.Header.Set("Content-Type", "application/cloudevents+json")
		req.Data = mustJSON(t, ev)
		reply, err := nc.RequestMsg(req, 5*time.Second)
		if err != nil {
			t.Fatalf("%s to the service: %v", name, err)
		}
		noMarker(name+" to the NATS service", reply.Header, reply.Data)

		structured := &natsio.Msg{Subject: "sharelog.in.casework", Data: mustJSON(t, ev)}
		binary := binaryMsg(t, "sharelog.in.casework", ev)
		binary.Header.Set("X-Case-Note", echoMarker)
		for mode, msg := range map[string]*natsio.Msg{"structured": structured, "binary": binary} {
			ack, err := js.PublishMsg(ctx, msg)
			if err != nil {
				t.Fatal(err)
			}
			seqs[ack.Sequence] = len(names)
			names = append(names, name+" over NATS, "+mode)
		}
	}
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	for i, msg := range rejectedOf(t, ctx, js, seqs) {
		noMarker(names[i]+": its rejection", msg.Headers(), nil)
		for k := range msg.Headers() {
			if !strings.HasPrefix(k, "Sharelog-") && k != "Nats-Msg-Id" {
				t.Errorf("%s: the rejection carries the refused message's header %s", names[i], k)
			}
		}
	}
	if strings.Contains(m.logs.String(), echoMarker) {
		t.Error("the logs quote a refused value")
	}
}
