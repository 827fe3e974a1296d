package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// TestNATSService asks the NATS service what POST /v1/events would answer,
// in every mode, and checks that it stores what it accepts in SHARELOG_IN,
// refuses with the problem details the API gives, and is listed by the
// micro discovery requests `nats micro ls` and `nats micro info` send.
func TestNATSService(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	registerRecipient(t, m, "acro")
	nc, js := m.connect(t)
	subj := []ledger.Subject{{Scheme: "dbs-ref", ID: secretID}}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	good := func(id string) map[string]any {
		return disclosure("/systems/casework", id, subj, "acro", []string{"user.criminal_history"}, at)
	}
	structured := func(ev any) *natsio.Msg {
		msg := natsio.NewMsg(nats.SubjectService)
		msg.Header.Set("Content-Type", "application/cloudevents+json")
		msg.Data = mustJSON(t, ev)
		return msg
	}
	batch := func(evs ...any) *natsio.Msg {
		msg := natsio.NewMsg(nats.SubjectService)
		msg.Header.Set("Content-Type", "application/cloudevents-batch+json")
		msg.Data = mustJSON(t, append([]any{}, evs...)) // [] when empty, not null
		return msg
	}
	noTime := good("svc-no-time")
	delete(noTime, "time")

	tests := []struct {
		name     string
		msg      *natsio.Msg
		status   int      // 0: accepted
		outcomes []string // accepted: each event's outcome
		problems []string // refused: "index reason field" of each problem
	}{
		{name: "structured", msg: structured(good("svc-1")), outcomes: []string{slhttp.OutcomeRecorded}},
		{name: "structured again", msg: structured(good("svc-1")), outcomes: []string{slhttp.OutcomeDuplicate}},
		{name: "binary", msg: func() *natsio.Msg {
			msg := binaryMsg(t, nats.SubjectService, good("svc-2"))
			return msg
		}(), outcomes: []string{slhttp.OutcomeRecorded}},
		{name: "no time", msg: structured(noTime), outcomes: []string{slhttp.OutcomeRecorded}},
		{name: "batch", msg: batch(good("svc-3"), good("svc-4")), outcomes: []string{slhttp.OutcomeRecorded, slhttp.OutcomeRecorded}},
		{name: "empty batch", msg: batch(), outcomes: []string{}},
		{name: "refused: every problem of every event", msg: batch(
			good("svc-5"),
			func() map[string]any { e := good("svc-6"); e["id"] = 42; e["subject"] = ""; return e }(),
			withData(good("svc-7"), func(d map[string]any) { d["recipient"] = "nobody" }),
		), status: http.StatusBadRequest, problems: []string{
			"1 not-cloudevent id", "1 not-cloudevent subject", "2 unknown-recipient data.recipient",
		}},
		{name: "refused: a replay with other content", msg: structured(withData(good("svc-1"), func(d map[string]any) { d["justification"] = "another justification" })),
			status: http.StatusConflict, problems: []string{"0 conflict id"}},
		{name: "refused: an ack is not a producer's", msg: structured(ce("/systems/casework", "svc-ack", ledger.TypeNoticeAck, map[string]any{"notice": "n-1", "outcome": "done"})),
			status: http.StatusBadRequest},
		{name: "refused: content type", msg: func() *natsio.Msg {
			msg := structured(good("svc-8"))
			msg.Header.Set("Content-Type", "text/plain")
			return msg
		}(), status: http.StatusUnsupportedMediaType},
	}
	before := m.Store.Count()
	recorded := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply, err := nc.RequestMsg(tt.msg, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			code := reply.Header.Get(micro.ErrorCodeHeader)
			if tt.status == 0 {
				if code != "" {
					t.Fatalf("refused: %s %s: %s", code, reply.Header.Get(micro.ErrorHeader), reply.Data)
				}
				var acc slhttp.Accepted
				if err := json.Unmarshal(reply.Data, &acc); err != nil {
					t.Fatalf("reply %s: %v", reply.Data, err)
				}
				if acc.Accepted == nil {
					t.Fatalf("reply %s has no accepted list", reply.Data)
				}
				var got []string
				for _, a := range acc.Accepted {
					got = append(got, a.Outcome)
					if a.StreamSeq == 0 {
						t.Errorf("event %s: no streamSeq in the answer %s", a.ID, reply.Data)
					}
					if a.Outcome == slhttp.OutcomeRecorded {
						recorded++
					}
				}
				if strings.Join(got, ",") != strings.Join(tt.outcomes, ",") {
					t.Errorf("outcomes = %v, want %v (%s)", got, tt.outcomes, reply.Data)
				}
				return
			}
			if code != strconv.Itoa(tt.status) {
				t.Fatalf("error code %q, want %d: %s", code, tt.status, reply.Data)
			}
			if reply.Header.Get(micro.ErrorHeader) == "" || reply.Header.Get("Content-Type") != slhttp.ContentTypeProblem {
				t.Errorf("headers %v: want a description and %s", reply.Header, slhttp.ContentTypeProblem)
			}
			var p slhttp.Problem
			if err := json.Unmarshal(reply.Data, &p); err != nil {
				t.Fatalf("reply %s: %v", reply.Data, err)
			}
			if p.Status != tt.status {
				t.Errorf("problem status %d, want %d", p.Status, tt.status)
			}
			var got []string
			for _, e := range p.Events {
				for _, pr := range e.Problems {
					got = append(got, strconv.Itoa(e.Index)+" "+string(pr.Reason)+" "+pr.Field)
				}
			}
			if tt.problems != nil && strings.Join(got, ",") != strings.Join(tt.problems, ",") {
				t.Errorf("problems = %v, want %v (%s)", got, tt.problems, reply.Data)
			}
			if strings.Contains(string(reply.Data), secretID) || strings.Contains(reply.Header.Get(micro.ErrorHeader), secretID) {
				t.Error("the reply quotes the identifier")
			}
		})
	}
	if err := m.Ingester.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := m.Store.Count(); got != before+uint64(recorded) || recorded != 5 {
		t.Errorf("ledger has %d new entries, the service reported %d recorded, want 5", got-before, recorded)
	}
	// The replay with other content is kept in SHARELOG_REJECTED, as over HTTP.
	in, err := js.Stream(context.Background(), nats.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := in.GetLastMsgForSubject(context.Background(), nats.SubjectInService)
	if err != nil || !strings.Contains(string(kept.Data), "another justification") {
		t.Fatalf("the conflicting copy is not in SHARELOG_IN: %v, %v", kept, err)
	}
	if msg := rejectedOf(t, context.Background(), js, map[uint64]int{kept.Sequence: 0})[0]; msg.Headers().Get(nats.HeaderReason) != string(ledger.ReasonConflict) {
		t.Errorf("the service's conflicting copy refused for %q, want conflict", msg.Headers().Get(nats.HeaderReason))
	}
	if got := get(t, m.HTTP.URL()+"/metrics"); !strings.Contains(got, `sharelog_rejected_total{reason="unknown-recipient",transport="nats-service"} 1`) {
		t.Error("metrics do not count the service's refusals")
	}

	// What `nats micro ls` and `nats micro info sharelog` ask.
	reply, err := nc.Request("$SRV.INFO."+nats.ServiceName, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(reply.Data, &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != nats.ServiceName || len(info.Endpoints) != 2 || info.Endpoints[0].Subject != nats.SubjectService || info.Endpoints[1].Subject != nats.SubjectService+".*" {
		t.Errorf("service info = %+v, want %s with endpoints on %s and %[3]s.*", info, nats.ServiceName, nats.SubjectService)
	}
}

// TestEmptyBatchOverHTTP checks that the empty batch, a valid batch in the
// CloudEvents JSON format, is accepted with nothing in it.
func TestEmptyBatchOverHTTP(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents-batch+json", nil, []byte(" [ ] "))
	if resp.StatusCode != http.StatusAccepted || strings.TrimSpace(string(body)) != `{"accepted":[]}` {
		t.Errorf("empty batch: %d %s, want 202 {\"accepted\":[]}", resp.StatusCode, body)
	}
}

// TestNATSServiceWithCLI asks the service with the nats CLI
// (github.com/nats-io/natscli), as README.md shows, when SHARELOG_NATS_CLI
// names one; .ci/run does not install it, so it is skipped without one.
func TestNATSServiceWithCLI(t *testing.T) {
	// Named explicitly: testscript.Main (TestMain) puts TestREADME's nats
	// stand-in on this process's PATH, so a nats found there may be it.
	cli := os.Getenv("SHARELOG_NATS_CLI")
	if cli == "" {
		t.Skip("SHARELOG_NATS_CLI does not name a nats CLI (github.com/nats-io/natscli)")
	}
	m := startMain(t, testConfig(t.TempDir()))
	registerRecipient(t, m, "acro")
	nats := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(cli, append([]string{"--server", m.NATSURL()}, args...)...).Output()
		if err != nil {
			t.Fatalf("nats %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	var info struct{ Info micro.Info }
	if err := json.Unmarshal(nats("micro", "info", "sharelog", "--json"), &info); err != nil || info.Info.Name != "sharelog" || len(info.Info.Endpoints) != 2 || info.Info.Endpoints[0].Subject != "sharelog.api.events" {
		t.Errorf("nats micro info sharelog: %+v, %v", info, err)
	}
	ev := disclosure("casework", "cli-1", []ledger.Subject{{Scheme: "dbs-ref", ID: secretID}}, "acro", []string{"user.criminal_history"}, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	for _, want := range []string{slhttp.OutcomeRecorded, slhttp.OutcomeDuplicate} {
		out := nats("request", "--raw", "sharelog.api.events", string(mustJSON(t, ev)), "-H", "Content-Type:application/cloudevents+json")
		var acc slhttp.Accepted
		if err := json.Unmarshal(out, &acc); err != nil || len(acc.Accepted) != 1 || acc.Accepted[0].Outcome != want {
			t.Errorf("nats request: %s, want one %s", out, want)
		}
	}
}
