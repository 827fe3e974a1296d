package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sharelog/sharelog/internal/access"
	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/schemas"
)

// accessPrincipals is the access file of the access tests: one principal
// per role, and a second recipient.
var accessPrincipals = []struct {
	name string
	role ledger.Role
	rest string
}{
	{"casework", ledger.RoleProducer, "sources: [casework]"},
	{"jane.dpo", ledger.RoleDPO, ""},
	{"registry", ledger.RoleAdmin, ""},
	{"a.clerk", ledger.RoleClerk, ""},
	{"audit", ledger.RoleAuditor, ""},
	{"acro", ledger.RoleRecipient, "recipient: acro"},
	{"cgi", ledger.RoleRecipient, "recipient: cgi"},
}

// writeAccessFile writes the access file of accessPrincipals with new
// tokens, and returns its path and the tokens by principal name.
func writeAccessFile(t *testing.T) (string, map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("principals:\n")
	tokens := map[string]string{}
	for _, p := range accessPrincipals {
		tok, sha := access.NewToken()
		tokens[p.name] = tok
		fmt.Fprintf(&b, "  - name: %s\n    roles: [%s]\n    tokenSHA256: %s\n", p.name, p.role, sha)
		if p.rest != "" {
			fmt.Fprintf(&b, "    %s\n", p.rest)
		}
	}
	path := filepath.Join(t.TempDir(), "access.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tokens
}

// apiCall is one HTTP request to a running server.
type apiCall struct {
	method, path, token, reason, contentType string
	body                                     []byte
}

func (c apiCall) do(t *testing.T, base string) (int, slhttp.Problem, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", cmpOr(c.contentType, "application/json"))
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.reason != "" {
		req.Header.Set(slhttp.HeaderReason, c.reason)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p slhttp.Problem
	json.Unmarshal(raw, &p)
	return resp.StatusCode, p, string(raw)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestAccessMatrix is generated from schemas/openapi.yaml: every role
// against every operation on a real server with an access file. Allowed
// calls are not refused (neither 401 nor 403), denied ones are 403, calls
// without a token 401, and public operations answer 200 to anyone.
func TestAccessMatrix(t *testing.T) {
	accessFile, tokens := writeAccessFile(t)
	cfg := testConfig(t.TempDir())
	cfg.Access = accessFile
	m := startMain(t, cfg)
	base := m.HTTP.URL()
	checkFor(t, 30*time.Second, func() error {
		if status, _, body := (apiCall{method: "GET", path: "/readyz"}).do(t, base); status != 200 {
			return fmt.Errorf("readyz %d %s", status, body)
		}
		return nil
	})

	raw, err := schemas.FS.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	operations, calls := 0, 0
	for path, methods := range doc.Paths {
		for method, node := range methods {
			method = strings.ToUpper(method)
			if method != http.MethodGet && method != http.MethodPost {
				continue
			}
			var op struct {
				ID       string        `yaml:"operationId"`
				Roles    []ledger.Role `yaml:"x-sharelog-roles"`
				Personal bool          `yaml:"x-sharelog-personal"`
				Security *[]any        `yaml:"security"`
			}
			if err := node.Decode(&op); err != nil {
				t.Fatal(err)
			}
			public := op.Security != nil && len(*op.Security) == 0
			if !public && len(op.Roles) == 0 {
				t.Errorf("%s (%s %s) declares no roles and is not public", op.ID, method, path)
				continue
			}
			operations++
			// Path parameters: the recipient principal's own id where the
			// path names a recipient, so that a recipient is allowed its own.
			p := param.ReplaceAllStringFunc(path, func(name string) string {
				if name == "{id}" && strings.HasPrefix(path, "/v1/recipients/") {
					return "acro"
				}
				return "x"
			})
			c := apiCall{method: method, path: p, body: []byte("{}")}
			if op.Personal {
				c.reason = "matrix test"
			}
			status, prob, body := c.do(t, base)
			calls++
			switch {
			case public && status != 200:
				t.Errorf("%s without a token: %d %s, want 200 (public)", op.ID, status, body)
			case !public && (status != 401 || prob.Code != ledger.EUNAUTHENTICATED):
				t.Errorf("%s without a token: %d %s, want 401 unauthenticated", op.ID, status, body)
			}
			if public {
				continue
			}
			for _, pr := range accessPrincipals {
				if pr.name == "cgi" {
					continue // the second recipient: the same role as acro
				}
				c.token = tokens[pr.name]
				status, prob, body := c.do(t, base)
				calls++
				allowed := slices.Contains(op.Roles, pr.role)
				switch {
				case allowed && (status == 401 || status == 403):
					t.Errorf("%s as %s (%s, allowed): %d %s", op.ID, pr.name, pr.role, status, body)
				case !allowed && (status != 403 || prob.Code != ledger.EFORBIDDEN):
					t.Errorf("%s as %s (%s, not allowed): %d %s, want 403 forbidden", op.ID, pr.name, pr.role, status, body)
				}
				t.Logf("%-20s %-9s %d", op.ID, pr.role, status)
			}
		}
	}
	if operations < 20 {
		t.Fatalf("only %d operations in openapi.yaml", operations)
	}
	t.Logf("%d operations, %d calls", operations, calls)

	// A recipient reads only its own registry entry.
	if status, _, body := (apiCall{method: "GET", path: "/v1/recipients/cgi", token: tokens["acro"]}).do(t, base); status != 403 {
		t.Errorf("acro reads cgi's registry entry: %d %s, want 403", status, body)
	}
}

// TestAccessPublishAndAck: each principal publishes only what its role
// allows, from its own sources, and a recipient acks only its own notices.
func TestAccessPublishAndAck(t *testing.T) {
	accessFile, tokens := writeAccessFile(t)
	cfg := testConfig(t.TempDir())
	cfg.Access = accessFile
	m := startMain(t, cfg)
	base := m.HTTP.URL()
	post := func(token string, events ...map[string]any) (int, slhttp.Problem, string) {
		return apiCall{method: "POST", path: "/v1/events", token: token, contentType: slhttp.ContentTypeBatch, body: mustJSON(t, events)}.do(t, base)
	}
	subject := ledger.Subject{Scheme: "dbs-ref", ID: secretID}
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)

	// The registry is the admin's; a producer may not write it.
	if status, _, body := post(tokens["casework"], manualRecipient("acro", "dpa-part3", 0)); status != 403 {
		t.Errorf("producer registers a recipient: %d %s, want 403", status, body)
	}
	if status, _, body := post(tokens["registry"], manualRecipient("acro", "dpa-part3", 0), manualRecipient("cgi", "dpa-part3", 0)); status != 202 {
		t.Fatalf("admin registers recipients: %d %s", status, body)
	}

	// A producer publishes from its own source only, and no exemption.
	foreign := disclosure("other-system", "d-foreign", []ledger.Subject{subject}, "acro", []string{"user.name"}, at)
	own := disclosure("casework", "d-own", []ledger.Subject{subject}, "acro", []string{"user.name"}, at)
	status, prob, body := post(tokens["casework"], own, foreign)
	if status != 403 || prob.Code != ledger.EFORBIDDEN || len(prob.Events) != 1 || prob.Events[0].Index != 1 ||
		prob.Events[0].Problems[0].Reason != "forbidden" || !strings.Contains(prob.Events[0].Problems[0].Detail, `"other-system"`) {
		t.Errorf("producer publishes from another source: %d %s, want 403 naming event 1 and the source", status, body)
	}
	if strings.Contains(body, secretID) {
		t.Errorf("the refusal quotes the identifier: %s", body)
	}
	exemption := ce("casework", "ex-1", ledger.TypeExemption, map[string]any{"notice": "n-x", "reason": "impossible", "justification": "j", "decidedBy": "me"})
	if status, prob, body := post(tokens["casework"], exemption); status != 403 || len(prob.Events) != 1 || !strings.Contains(prob.Events[0].Problems[0].Detail, ledger.TypeExemption) {
		t.Errorf("producer publishes an exemption: %d %s, want 403 naming the type", status, body)
	}
	if status, _, body := post(tokens["jane.dpo"], own); status != 403 {
		t.Errorf("dpo publishes a disclosure: %d %s, want 403 (producers only)", status, body)
	}
	cgi := disclosure("casework", "d-cgi", []ledger.Subject{subject}, "cgi", []string{"user.name"}, at)
	if status, _, body := post(tokens["casework"], own, cgi); status != 202 || !strings.Contains(body, `"recorded"`) {
		t.Fatalf("producer publishes from its source: %d %s", status, body)
	}
	if e, err := m.Store.Lookup(context.Background(), "other-system", "d-foreign"); err == nil {
		t.Errorf("the refused event is in the ledger: %+v", e)
	}

	// The DPO decides an erasure: a notice to each recipient.
	erasure := ce("dpo", "erasure-1", ledger.TypeErasure, map[string]any{"request": "req-1", "subject": subject,
		"ground": "art17-1-a", "decidedAt": at.Add(time.Minute).Format(time.RFC3339), "decidedBy": "dpo", "regime": "dpa-part3"})
	if status, _, body := post(tokens["jane.dpo"], erasure); status != 202 {
		t.Fatalf("dpo publishes an erasure: %d %s", status, body)
	}
	st, err := m.Store.Status(context.Background(), "req-1")
	if err != nil {
		t.Fatal(err)
	}
	notice := map[string]string{}
	for _, o := range st.Obligations {
		notice[o.Recipient] = o.Notice
	}
	if notice["acro"] == "" || notice["cgi"] == "" {
		t.Fatalf("obligations %+v", st.Obligations)
	}

	ack := func(token, recipient, noticeID, id string) (int, slhttp.Problem, string) {
		ev := ce(recipient+"/notices", id, ledger.TypeNoticeAck, map[string]any{"notice": noticeID, "outcome": "done"})
		return apiCall{method: "POST", path: "/v1/recipients/" + recipient + "/acks", token: token,
			contentType: "application/cloudevents+json", body: mustJSON(t, ev)}.do(t, base)
	}
	tests := []struct {
		name             string
		token, recipient string
		notice           string
		want             int
	}{
		{"no token", "", "cgi", notice["cgi"], 401},
		{"acro acks cgi's notice as cgi", tokens["acro"], "cgi", notice["cgi"], 403},
		{"acro acks cgi's notice as itself", tokens["acro"], "acro", notice["cgi"], 404},
		{"a producer acks", tokens["casework"], "cgi", notice["cgi"], 403},
		{"the dpo acks for a recipient", tokens["jane.dpo"], "cgi", notice["cgi"], 403},
		{"acro acks its own", tokens["acro"], "acro", notice["acro"], 202},
		{"cgi acks its own", tokens["cgi"], "cgi", notice["cgi"], 202},
	}
	for i, tt := range tests {
		status, _, body := ack(tt.token, tt.recipient, tt.notice, fmt.Sprintf("ack-%d", i))
		if status != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, status, body, tt.want)
		}
		if status == 202 && !strings.Contains(body, `"recorded"`) {
			t.Errorf("%s: %s, want recorded", tt.name, body)
		}
	}
	for r, want := range map[string]string{"acro": ledger.StateAcknowledged, "cgi": ledger.StateAcknowledged} {
		o, err := m.Store.Obligation(context.Background(), notice[r])
		if err != nil || o.State != want {
			t.Errorf("%s's obligation: %+v %v, want %s", r, o, err, want)
		}
	}
}

// TestAccessCLI: the client commands send --token and --reason, and a
// refusal gets exit status 5.
func TestAccessCLI(t *testing.T) {
	accessFile, tokens := writeAccessFile(t)
	cfg := testConfig(t.TempDir())
	cfg.Access = accessFile
	m := startMain(t, cfg)

	err, _ := m.cliErr(t, "recipients")
	if exitCode(err) != ExitRefused || !strings.Contains(err.Error(), ledger.EUNAUTHENTICATED) || accessHint(err) == "" {
		t.Errorf("without a token: %v (exit %d, hint %q), want unauthenticated, exit 5", err, exitCode(err), accessHint(err))
	}
	if out := m.cli(t, "recipients", "--token", tokens["audit"], "--json"); !strings.Contains(out, `"recipients"`) {
		t.Errorf("recipients as the auditor: %s", out)
	}
	t.Setenv("SHARELOG_TOKEN", tokens["audit"])
	if out := m.cli(t, "recipients", "--json"); !strings.Contains(out, `"recipients"`) {
		t.Errorf("recipients with SHARELOG_TOKEN: %s", out)
	}
	err, _ = m.cliErr(t, "who", "dbs-ref:A1", "--reason", "SAR 1")
	if exitCode(err) != ExitRefused || !strings.Contains(err.Error(), ledger.EFORBIDDEN) {
		t.Errorf("who as the auditor: %v (exit %d), want forbidden, exit 5", err, exitCode(err))
	}
	err, _ = m.cliErr(t, "who", "dbs-ref:A1", "--token", tokens["jane.dpo"])
	if exitCode(err) != ExitRefused || !strings.Contains(err.Error(), slhttp.HeaderReason) {
		t.Errorf("who without a reason: %v (exit %d), want the header named, exit 5", err, exitCode(err))
	}
	// With a token and a reason the request passes authorisation. It is
	// answered once the consultation is recorded; without a consultation
	// log it is refused (fail closed) rather than answered.
	t.Setenv("SHARELOG_REASON", "SAR 2026-17")
	if m.HTTP.Consult != nil {
		if out := m.cli(t, "who", "dbs-ref:A1", "--token", tokens["jane.dpo"], "--json"); !strings.Contains(out, "recipients") {
			t.Errorf("who with a token and a reason: %s", out)
		}
		return
	}
	err, _ = m.cliErr(t, "who", "dbs-ref:A1", "--token", tokens["jane.dpo"])
	if exitCode(err) != ExitUnavailable || !strings.Contains(err.Error(), "consultation") {
		t.Errorf("who with a reason and no consultation log: %v (exit %d), want unavailable, exit 3", err, exitCode(err))
	}
}

func TestTokenCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"token", "--json"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var nt NewToken
	if err := json.Unmarshal(out.Bytes(), &nt); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	h := sha256.Sum256([]byte(nt.Token))
	if nt.Token == "" || hex.EncodeToString(h[:]) != nt.TokenSHA256 {
		t.Fatalf("token %q, tokenSHA256 %q: not its hash", nt.Token, nt.TokenSHA256)
	}
	c, err := access.Parse([]byte("principals:\n  - {name: p, roles: [auditor], tokenSHA256: " + nt.TokenSHA256 + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Token(nt.Token); p == nil || p.Name != "p" {
		t.Errorf("the access file does not know the token: %+v", p)
	}
	out.Reset()
	if err := run(context.Background(), []string{"token"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^token: +slt_[0-9a-f]{64}\ntokenSHA256: +[0-9a-f]{64}$`).MatchString(out.String()) || strings.Contains(out.String(), nt.Token) {
		t.Errorf("text output:\n%s", out.String())
	}
}

func TestLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.1:0", true},
		{"127.9.9.9:80", true},
		{"[::1]:8080", true},
		{"[::1]:0", true},
		{"localhost:0", true},
		{"LOCALHOST:4222", true},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{":8080", false},
		{":0", false},
		{"10.1.2.3:8080", false},
		{"example.org:80", false},
		{"127.0.0.1", false}, // no port: not an address serve can listen on
	}
	for _, tt := range tests {
		if got := loopback(tt.addr); got != tt.want {
			t.Errorf("loopback(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

// TestServeSafeDefault: without --access, serve refuses a non-loopback
// address and warns at start; with one it listens where it is told; a bad
// access file is named.
func TestServeSafeDefault(t *testing.T) {
	open := func(cfg Config) (error, string) {
		logs := &syncBuffer{}
		m := NewMain(cfg, slog.New(slog.NewTextHandler(logs, nil)))
		err := m.Open(context.Background())
		m.Close()
		return err, logs.String()
	}
	for _, tt := range []struct{ flag, http, nats string }{
		{"--http", "0.0.0.0:0", "127.0.0.1:0"},
		{"--http", ":0", "127.0.0.1:0"},
		{"--nats-listen", "127.0.0.1:0", "0.0.0.0:0"},
	} {
		cfg := testConfig(t.TempDir())
		cfg.HTTP, cfg.NATSListen = tt.http, tt.nats
		err, _ := open(cfg)
		if err == nil || !strings.Contains(err.Error(), tt.flag) || !strings.Contains(err.Error(), "--access") {
			t.Errorf("http %s nats %s without --access: %v, want a refusal naming %s and --access", tt.http, tt.nats, err, tt.flag)
		}
	}

	m := startMain(t, testConfig(t.TempDir()))
	if !strings.Contains(m.logs.String(), "nobody is authenticated") {
		t.Errorf("no warning at start without --access:\n%s", m.logs)
	}

	accessFile, tokens := writeAccessFile(t)
	cfg := testConfig(t.TempDir())
	cfg.Access, cfg.HTTP = accessFile, "0.0.0.0:0"
	wide := startMain(t, cfg)
	port := wide.HTTP.URL()[strings.LastIndex(wide.HTTP.URL(), ":"):]
	if status, _, body := (apiCall{method: "GET", path: "/v1/recipients", token: tokens["audit"]}).do(t, "http://127.0.0.1"+port); status != 200 {
		t.Errorf("with --access on 0.0.0.0: %d %s", status, body)
	}
	if strings.Contains(wide.logs.String(), "nobody is authenticated") {
		t.Errorf("the no-access warning with --access:\n%s", wide.logs)
	}

	bad := filepath.Join(t.TempDir(), "bad-access.yaml")
	os.WriteFile(bad, []byte("principals:\n  - {name: x, roles: [root], tokenSHA256: ab}\n"), 0o600)
	for _, file := range []string{bad, filepath.Join(t.TempDir(), "missing.yaml")} {
		cfg := testConfig(t.TempDir())
		cfg.Access = file
		if err, _ := open(cfg); err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("--access %s: %v, want an error naming the file", file, err)
		}
	}
}

// TestAccessExample: deploy/access.example.yaml loads, and each token its
// comments give is the one its tokenSHA256 is the hash of.
func TestAccessExample(t *testing.T) {
	const path = "../../deploy/access.example.yaml"
	c, err := access.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := regexp.MustCompile(`tokenSHA256: ([0-9a-f]{64}) +# (\S+)`).FindAllStringSubmatch(string(raw), -1)
	if len(lines) != len(c.Entries()) {
		t.Fatalf("%d documented tokens for %d principals", len(lines), len(c.Entries()))
	}
	for i, l := range lines {
		p := c.Token(l[2])
		if p == nil || p.Name != c.Entries()[i].Name {
			t.Errorf("token %q names %+v, want %s", l[2], p, c.Entries()[i].Name)
		}
	}
}
