package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/notify"
)

// sdkSetup is a running sharelog with a webhook recipient, sdk-hook, that
// has received a disclosure about a person and then a notice of their
// erasure, waiting for its ack.
type sdkSetup struct {
	m      *testMain
	secret []byte
	notice string // the notice to sdk-hook, to be acknowledged
}

// startSDKSetup starts sharelog with recipients sdk-hook (webhook, secret
// configured) and acro, and returns it once the erasure's notice to
// sdk-hook is delivered. The disclosure is for the SDK under test to send:
// disclose is called with the server's URL and must record disclosure
// (source, id) to sdk-hook about dbs-ref:secretID.
func startSDKSetup(t *testing.T, source, id string, disclose func(url string)) *sdkSetup {
	t.Helper()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(hook.Close)
	dir := t.TempDir()
	secret := []byte("secret-of-the-sdk-hook-0123456789")
	secrets := filepath.Join(dir, "webhook-secrets.yaml")
	if err := os.WriteFile(secrets, fmt.Appendf(nil, "recipients:\n  sdk-hook: {secret: %q}\n", secret), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(filepath.Join(dir, "data"))
	cfg.WebhookSecrets = secrets
	m := startMain(t, cfg)
	for _, ev := range []map[string]any{recipientEvent("sdk-hook", map[string]any{"type": "webhook", "url": hook.URL}), recipientEvent("acro", map[string]any{"type": "nats"})} {
		if resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, ev)); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("recipient: %d %s", resp.StatusCode, body)
		}
	}
	disclose(m.HTTP.URL())
	ctx := context.Background()
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if rec, err := m.Store.Disclosure(ctx, id, source); err != nil {
		t.Fatalf("the SDK's disclosure is not in the ledger: %v", err)
	} else if rec.Disclosure.Recipient != "sdk-hook" {
		t.Fatalf("disclosure to %s, want sdk-hook", rec.Disclosure.Recipient)
	}
	erasure := ce("dpo", "sdk-erasure-1", ledger.TypeErasure, map[string]any{
		"request": "req-sdk-1", "subject": ledger.Subject{Scheme: "dbs-ref", ID: secretID},
		"decidedAt": time.Now().UTC().Format(time.RFC3339), "decidedBy": "dpo", "regime": "dpa-part3",
	})
	if resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, erasure)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("erasure: %d %s", resp.StatusCode, body)
	}
	s := &sdkSetup{m: m, secret: secret}
	checkFor(t, 20*time.Second, func() error {
		st, err := m.Store.Status(ctx, "req-sdk-1")
		if err != nil {
			return err
		}
		for _, o := range st.Obligations {
			if o.Recipient == "sdk-hook" && o.State == ledger.StateDelivered {
				s.notice = o.Notice
				return nil
			}
		}
		return fmt.Errorf("no delivered notice to sdk-hook: %+v", st.Obligations)
	})
	return s
}

// acknowledged checks that the notice to sdk-hook is acknowledged.
func (s *sdkSetup) acknowledged(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := s.m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := s.m.Store.Status(ctx, "req-sdk-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range st.Obligations {
		if o.Notice == s.notice && o.AcknowledgedAt == nil {
			t.Errorf("notice %s: %s, not acknowledged", o.Notice, o.State)
		}
	}
}

// TestGoSDK sends a disclosure and an ack with the CloudEvents Go SDK and
// its defaults (binary mode, no time attribute unless set) over HTTP.
func TestGoSDK(t *testing.T) {
	ctx := context.Background()
	newClient := func(t *testing.T, target string) cloudevents.Client {
		c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(target))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	send := func(t *testing.T, ctx context.Context, c cloudevents.Client, ev cloudevents.Event) {
		t.Helper()
		res := c.Send(ctx, ev)
		var hr *cehttp.Result
		if !cloudevents.IsACK(res) || !cloudevents.ResultAs(res, &hr) || hr.StatusCode != http.StatusAccepted {
			t.Fatalf("send %s: %v", ev.Type(), res)
		}
	}
	s := startSDKSetup(t, "/sdk/casework", "sdk-disclosure-1", func(url string) {
		ev := cloudevents.NewEvent()
		ev.SetID("sdk-disclosure-1")
		ev.SetSource("/sdk/casework")
		ev.SetType(ledger.TypeDisclosure)
		if err := ev.SetData(cloudevents.ApplicationJSON, map[string]any{
			"subjects": []ledger.Subject{{Scheme: "dbs-ref", ID: secretID}}, "recipient": "sdk-hook",
			"categories": []string{"user.name"}, "purpose": "safeguarding.disclosure_check", "lawfulBasis": "dpa-s35-2-b",
			"regime": "dpa-part3", "disclosedAt": time.Now().UTC().Format(time.RFC3339),
			"disclosedBy": "sdk", "justification": "sent with the Go SDK",
		}); err != nil {
			t.Fatal(err)
		}
		send(t, ctx, newClient(t, url+"/v1/events"), ev)
	})

	// The ack: the signature covers the body, which in binary mode is the
	// data as the SDK sends it (bytes are sent as they are).
	data, err := json.Marshal(map[string]any{"notice": s.notice, "outcome": "done"})
	if err != nil {
		t.Fatal(err)
	}
	ack := cloudevents.NewEvent()
	ack.SetID("sdk-ack-1")
	ack.SetSource("/sdk-hook/notices")
	ack.SetType(ledger.TypeNoticeAck)
	if err := ack.SetData(cloudevents.ApplicationJSON, data); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	notify.Sign(h, s.secret, data, time.Now())
	send(t, cehttp.WithCustomHeader(ctx, h), newClient(t, s.m.HTTP.URL()+"/v1/recipients/sdk-hook/acks"), ack)
	s.acknowledged(t)
}

// jsSDKDir holds the JavaScript SDK test: package.json and
// package-lock.json pin the npm package cloudevents, installed with npm ci
// (.ci/run does it; so does the test, when node_modules is absent).
const jsSDKDir = "testdata/jssdk"

// TestJavaScriptSDK sends a disclosure and an ack with the JavaScript
// CloudEvents SDK (npm package cloudevents) and its defaults (binary mode;
// the SDK sets id and time) over HTTP to a real serve. Without node it is
// skipped, except under CI (CI set), where it fails.
func TestJavaScriptSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node is not installed, and CI is set: .ci/run installs it (%v)", err)
		}
		t.Skipf("node is not installed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(jsSDKDir, "node_modules", "cloudevents")); errors.Is(err, os.ErrNotExist) {
		npm := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		npm.Dir = jsSDKDir
		if out, err := npm.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", jsSDKDir, err, out)
		}
	}
	run := func(t *testing.T, env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(node, append([]string{"send.mjs"}, args...)...)
		cmd.Dir = jsSDKDir
		cmd.Env = append(os.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("node send.mjs %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}
	recorded := func(t *testing.T, answer string) {
		t.Helper()
		var acc struct {
			Accepted []struct{ Outcome string }
		}
		if err := json.Unmarshal([]byte(answer), &acc); err != nil || len(acc.Accepted) != 1 || acc.Accepted[0].Outcome != "recorded" {
			t.Fatalf("answer %s, want one event recorded", answer)
		}
	}
	s := startSDKSetup(t, "/jssdk/casework", "jssdk-disclosure-1", func(url string) {
		recorded(t, run(t, []string{"SHARELOG_PERSON=" + secretID}, "disclosure", url))
	})
	recorded(t, run(t, []string{"SHARELOG_SECRET=" + string(s.secret)}, "ack", s.m.HTTP.URL(), "sdk-hook", s.notice))
	s.acknowledged(t)
}
