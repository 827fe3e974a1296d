package http

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/console"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/metrics"
	"github.com/sharelog/sharelog/internal/notify"
	"github.com/sharelog/sharelog/internal/store"
)

// TestEveryRouteDeclaresRoles reads the routes the server registers from
// this package's source (every HandleFunc or Handle with a pattern) and
// checks each is an operation of schemas/openapi.yaml with roles, or public.
func TestEveryRouteDeclaresRoles(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	ops := operations()
	fset := token.NewFileSet()
	var routes []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: a route whose pattern is not a literal cannot be checked", fset.Position(call.Pos()))
				return true
			}
			pattern, _ := strconv.Unquote(lit.Value)
			routes = append(routes, pattern)
			if pattern == "/" || pattern == console.Prefix {
				return true // the catch-all 404 and 405; the web console, which signs its people in itself
			}
			op, ok := ops[pattern]
			switch {
			case !ok:
				t.Errorf("%s: route %q is not an operation of schemas/openapi.yaml, so it has no roles", fset.Position(call.Pos()), pattern)
			case !op.Public && len(op.Roles) == 0:
				t.Errorf("route %q (%s) declares no roles", pattern, op.ID)
			}
			return true
		})
	}
	if len(routes) < 20 {
		t.Fatalf("found %d routes in the source: %v", len(routes), routes)
	}
	if len(ops) != len(routes)-2 {
		t.Errorf("openapi.yaml has %d operations, the source routes %d", len(ops), len(routes)-2)
	}
}

func TestOperationsRefusesUndeclared(t *testing.T) {
	doc := func(op string) []byte {
		return []byte("paths:\n  /v1/x:\n    parameters: []\n    get:\n      operationId: x\n" + op)
	}
	tests := []struct {
		name, op, wantErr string
	}{
		{"no roles", "", "declares no roles"},
		{"empty roles", "      x-sharelog-roles: []\n", "declares no roles"},
		{"unknown role", "      x-sharelog-roles: [root]\n", `unknown role "root"`},
		{"public with roles", "      security: []\n      x-sharelog-roles: [dpo]\n", "public"},
		{"public personal", "      security: []\n      x-sharelog-personal: true\n", "public"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Operations(doc(tt.op))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one saying %q", err, tt.wantErr)
			}
		})
	}
	ops, err := Operations(doc("      x-sharelog-roles: [dpo, auditor]\n      x-sharelog-personal: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := ops["GET /v1/x"]; got.ID != "x" || len(got.Roles) != 2 || !got.Personal || got.Public {
		t.Errorf("operation = %+v", got)
	}
	ops, err = Operations(doc("      security: []\n"))
	if err != nil || !ops["GET /v1/x"].Public {
		t.Errorf("public operation = %+v, %v", ops, err)
	}
}

// countingLedger is the real store, counting the queries that reach it.
type countingLedger struct {
	*store.Store
	mu      sync.Mutex
	queries int
}

func (l *countingLedger) count() int { l.mu.Lock(); defer l.mu.Unlock(); return l.queries }
func (l *countingLedger) add()       { l.mu.Lock(); l.queries++; l.mu.Unlock() }

func (l *countingLedger) Who(ctx context.Context, subj ledger.Subject) (*ledger.Who, error) {
	l.add()
	return l.Store.Who(ctx, subj)
}

func (l *countingLedger) Disclosures(ctx context.Context, f ledger.DisclosureFilter) (*ledger.DisclosurePage, error) {
	l.add()
	return l.Store.Disclosures(ctx, f)
}

// consultLog records the consultations a server asks for; fail makes it
// refuse them.
type consultLog struct {
	mu   sync.Mutex
	got  []ledger.Consultation
	fail bool
}

func (c *consultLog) consult(ctx context.Context, cs ledger.Consultation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return errors.New("ledger full")
	}
	c.got = append(c.got, cs)
	return nil
}

func (c *consultLog) all() []ledger.Consultation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ledger.Consultation(nil), c.got...)
}

// accessFile returns an access file with one principal per token in
// tokens (name -> roles), and the tokens by name.
func accessFile(t *testing.T, principals map[string]string) (*access.Control, map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("principals:\n")
	tokens := map[string]string{}
	for name, rest := range principals {
		tok, sha := access.NewToken()
		tokens[name] = tok
		b.WriteString("  - name: " + name + "\n    tokenSHA256: " + sha + "\n" + rest)
	}
	c, err := access.Parse([]byte(b.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return c, tokens
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(store.Config{Dir: filepath.Join(dir, "ledger"), KeyFile: filepath.Join(dir, "site.key"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type call struct {
	method, path, token, reason, body string
}

func (c call) do(t *testing.T, base string, client *http.Client) (int, http.Header, Problem, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.reason != "" {
		req.Header.Set(HeaderReason, c.reason)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p Problem
	json.Unmarshal(raw, &p)
	return resp.StatusCode, resp.Header, p, string(raw)
}

const whoBody = `{"subject":{"scheme":"dbs-ref","id":"QX7-SECRET-9041"}}`

func TestAuthentication(t *testing.T) {
	t.Parallel()
	ctrl, tok := accessFile(t, map[string]string{
		"jane.dpo": "    roles: [dpo]\n",
		"audit":    "    roles: [auditor]\n",
	})
	led := &countingLedger{Store: openStore(t)}
	log := &consultLog{}
	logs := &lockedBuffer{}
	s := &Server{Ledger: led, Metrics: metrics.New(), Logger: slog.New(slog.NewTextHandler(logs, nil)), Access: ctrl, Consult: log.consult}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	tests := []struct {
		name     string
		call     call
		auth     string // Authorization header instead of the token's
		want     int
		wantCode string
		inDetail string
	}{
		{"public healthz", call{method: "GET", path: "/healthz"}, "", 200, "", ""},
		{"public openapi", call{method: "GET", path: "/v1/openapi.yaml"}, "", 200, "", ""},
		{"no credential", call{method: "GET", path: "/v1/recipients"}, "", 401, ledger.EUNAUTHENTICATED, "Bearer"},
		{"unknown token", call{method: "GET", path: "/v1/recipients"}, "Bearer slt_0000", 401, ledger.EUNAUTHENTICATED, "not in the access file"},
		{"not bearer", call{method: "GET", path: "/v1/recipients"}, "Basic " + tok["audit"], 401, ledger.EUNAUTHENTICATED, "Bearer <token>"},
		{"the hash is not the token", call{method: "GET", path: "/v1/recipients"}, "Bearer " + ctrl.Entries()[0].TokenSHA256, 401, ledger.EUNAUTHENTICATED, ""},
		{"auditor lists recipients", call{method: "GET", path: "/v1/recipients", token: tok["audit"]}, "", 200, "", ""},
		{"auditor may not ask who", call{method: "POST", path: "/v1/who", token: tok["audit"], reason: "curious", body: whoBody}, "", 403, ledger.EFORBIDDEN, `"audit"`},
		{"metrics need a role", call{method: "GET", path: "/metrics"}, "", 401, ledger.EUNAUTHENTICATED, ""},
		{"auditor reads metrics", call{method: "GET", path: "/metrics", token: tok["audit"]}, "", 200, "", ""},
		{"dpo without a reason", call{method: "POST", path: "/v1/who", token: tok["jane.dpo"], body: whoBody}, "", 400, ledger.EINVALID, HeaderReason},
		{"dpo with a blank reason", call{method: "POST", path: "/v1/who", token: tok["jane.dpo"], reason: "   ", body: whoBody}, "", 400, ledger.EINVALID, HeaderReason},
		{"dpo with an overlong reason", call{method: "POST", path: "/v1/who", token: tok["jane.dpo"], reason: strings.Repeat("r", maxReason+1), body: whoBody}, "", 400, ledger.EINVALID, HeaderReason},
		{"unrouted stays 404", call{method: "GET", path: "/v1/nothing"}, "", 404, ledger.ENOTFOUND, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.call
			req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			} else if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			if c.reason != "" {
				req.Header.Set(HeaderReason, c.reason)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var p Problem
			json.Unmarshal(raw, &p)
			if resp.StatusCode != tt.want || p.Code != tt.wantCode || !strings.Contains(p.Detail, tt.inDetail) {
				t.Errorf("status %d code %q detail %q, want %d %q with %q", resp.StatusCode, p.Code, p.Detail, tt.want, tt.wantCode, tt.inDetail)
			}
			if tt.want == 401 && resp.Header.Get("WWW-Authenticate") != `Bearer realm="sharelog"` {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
			if tt.want >= 400 && resp.Header.Get("Content-Type") != ContentTypeProblem {
				t.Errorf("Content-Type = %q", resp.Header.Get("Content-Type"))
			}
			if strings.Contains(string(raw), "QX7-SECRET-9041") {
				t.Errorf("the answer quotes the identifier: %s", raw)
			}
		})
	}
	if n := led.count(); n != 0 {
		t.Errorf("%d refused queries reached the ledger", n)
	}
	if got := log.all(); len(got) != 0 {
		t.Errorf("refused requests were recorded as consultations: %+v", got)
	}
	out := logs.String()
	if !strings.Contains(out, `msg="request refused" operation=who code=forbidden principal=audit`) {
		t.Errorf("no log line for the refusal of who to audit:\n%s", out)
	}
	for _, secret := range []string{tok["audit"], tok["jane.dpo"], "QX7-SECRET-9041"} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs hold %q:\n%s", secret, out)
		}
	}
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestConsultation(t *testing.T) {
	t.Parallel()
	ctrl, tok := accessFile(t, map[string]string{"jane.dpo": "    roles: [dpo]\n"})
	led := &countingLedger{Store: openStore(t)}
	log := &consultLog{}
	s := &Server{Ledger: led, Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Access: ctrl, Consult: log.consult}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	dpo := tok["jane.dpo"]

	// Each personal read is recorded, with who, what and why, before it is answered.
	calls := []struct {
		call    call
		want    ledger.Consultation
		subject bool
	}{
		{call{method: "POST", path: "/v1/who", token: dpo, reason: "SAR 2026-17", body: whoBody},
			ledger.Consultation{Principal: "jane.dpo", Operation: "who", Reason: "SAR 2026-17"}, true},
		{call{method: "GET", path: "/v1/disclosures?recipient=acro&limit=5", token: dpo, reason: "audit of ACRO"},
			ledger.Consultation{Principal: "jane.dpo", Operation: "listDisclosures", Reason: "audit of ACRO", Query: "limit=5&recipient=acro"}, false},
		{call{method: "POST", path: "/v1/disclosures/search", token: dpo, reason: "SAR 2026-17", body: `{"subject":{"scheme":"dbs-ref","id":"QX7-SECRET-9041"},"recipient":"acro"}`},
			ledger.Consultation{Principal: "jane.dpo", Operation: "searchDisclosures", Reason: "SAR 2026-17", Query: "recipient=acro"}, true},
	}
	for i, c := range calls {
		if status, _, p, _ := c.call.do(t, srv.URL, nil); status != 200 {
			t.Fatalf("%s: %d %+v", c.call.path, status, p)
		}
		got := log.all()
		if len(got) != i+1 {
			t.Fatalf("%s: %d consultations recorded, want %d", c.call.path, len(got), i+1)
		}
		g := got[i]
		if c.subject != (g.Subject != nil) || (g.Subject != nil && *g.Subject != (ledger.Subject{Scheme: "dbs-ref", ID: "QX7-SECRET-9041"})) {
			t.Errorf("%s: subject %+v", c.call.path, g.Subject)
		}
		g.Subject = nil
		if g != c.want {
			t.Errorf("%s: recorded %+v, want %+v", c.call.path, g, c.want)
		}
		if strings.Contains(g.Query, "QX7") {
			t.Errorf("the query recorded holds the identifier: %q", g.Query)
		}
	}
	if n := led.count(); n != len(calls) {
		t.Fatalf("%d queries reached the ledger, want %d", n, len(calls))
	}

	// A log that cannot record refuses the lookup: 503, and the ledger is not asked.
	log.mu.Lock()
	log.fail = true
	log.mu.Unlock()
	status, _, p, raw := call{method: "POST", path: "/v1/who", token: dpo, reason: "SAR", body: whoBody}.do(t, srv.URL, nil)
	if status != 503 || p.Code != ledger.EUNAVAILABLE || !strings.Contains(p.Detail, "s.62") {
		t.Errorf("failing log: %d %s", status, raw)
	}
	if n := led.count(); n != len(calls) {
		t.Errorf("the lookup reached the ledger although it was not recorded (%d queries)", n)
	}

	// No consultation log at all: refused the same way.
	s2 := &Server{Ledger: led, Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Access: ctrl}
	srv2 := httptest.NewServer(s2.Handler())
	defer srv2.Close()
	if status, _, p, _ := (call{method: "POST", path: "/v1/who", token: dpo, reason: "SAR", body: whoBody}).do(t, srv2.URL, nil); status != 503 || p.Code != ledger.EUNAVAILABLE {
		t.Errorf("no Consult: %d %+v", status, p)
	}
	if n := led.count(); n != len(calls) {
		t.Errorf("the lookup reached the ledger without a consultation log (%d queries)", n)
	}
}

func TestConsultationWithoutAccess(t *testing.T) {
	t.Parallel()
	led := &countingLedger{Store: openStore(t)}
	log := &consultLog{}
	s := &Server{Ledger: led, Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Consult: log.consult}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	if status, _, p, _ := (call{method: "POST", path: "/v1/who", reason: "SAR 9", body: whoBody}).do(t, srv.URL, nil); status != 200 {
		t.Fatalf("who: %d %+v", status, p)
	}
	if status, _, p, _ := (call{method: "POST", path: "/v1/who", body: whoBody}).do(t, srv.URL, nil); status != 200 {
		t.Fatalf("who without a reason, access off: %d %+v", status, p)
	}
	got := log.all()
	if len(got) != 2 || got[0].Principal != Anonymous || got[0].Reason != "SAR 9" || got[0].Operation != "who" || got[1].Reason != "" {
		t.Errorf("recorded %+v", got)
	}
	log.mu.Lock()
	log.fail = true
	log.mu.Unlock()
	if status, _, _, _ := (call{method: "POST", path: "/v1/who", body: whoBody}).do(t, srv.URL, nil); status != 503 {
		t.Errorf("failing log, access off: %d, want 503", status)
	}
	// A read of no one's data is not a consultation.
	if status, _, _, _ := (call{method: "GET", path: "/v1/recipients"}).do(t, srv.URL, nil); status != 200 {
		t.Errorf("recipients: %d", status)
	}
	if n := len(log.all()); n != 2 {
		t.Errorf("%d consultations, want 2", n)
	}
}

// TestMutualTLS names the principal by a verified client certificate.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca, caKey := newCert(t, "test CA", nil, nil)
	other, otherKey := newCert(t, "other CA", nil, nil)
	ctrl, err := access.Parse([]byte("principals:\n  - name: audit\n    roles: [auditor]\n    certificate: audit.example\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Ledger: openStore(t), Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Access: ctrl}
	srv := httptest.NewUnstartedServer(s.Handler())
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()

	clientWith := func(cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) *http.Client {
		c := srv.Client()
		tr := c.Transport.(*http.Transport).Clone()
		if cn != "" {
			cert, key := newCert(t, cn, parent, parentKey)
			c := &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
			// Offered whatever CAs the server asks for.
			tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c, nil }
		}
		return &http.Client{Transport: tr}
	}
	tests := []struct {
		name   string
		client *http.Client
		path   string
		want   int
	}{
		{"named by its certificate", clientWith("audit.example", ca, caKey), "/v1/recipients", 200},
		{"its role still counts", clientWith("audit.example", ca, caKey), "/v1/manual", 403},
		{"a certificate naming no principal", clientWith("stranger.example", ca, caKey), "/v1/recipients", 401},
		{"no certificate", clientWith("", nil, nil), "/v1/recipients", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _, p, _ := (call{method: "GET", path: tt.path}).do(t, srv.URL, tt.client); got != tt.want {
				t.Errorf("status %d (%s), want %d", got, p.Detail, tt.want)
			}
		})
	}
	// A certificate from a CA the server does not trust names no one: the
	// handshake fails.
	req, _ := http.NewRequest("GET", srv.URL+"/v1/recipients", nil)
	if resp, err := clientWith("audit.example", other, otherKey).Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("a certificate of an untrusted CA: status %d, want a failed handshake", resp.StatusCode)
	}
}

// newCert makes a certificate for cn signed by parent (self-signed CA when
// parent is nil).
func newCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestEveryPersonalReadIsConsulted calls every operation of openapi.yaml:
// each one marked x-sharelog-personal is recorded as one consultation,
// under its operationId, before it is answered; no other operation is.
func TestEveryPersonalReadIsConsulted(t *testing.T) {
	t.Parallel()
	ctrl, tok := accessFile(t, map[string]string{"all": "    roles: [dpo, clerk, admin, auditor]\n"})
	log := &consultLog{}
	notices := &stubNotices{queue: []notify.ManualNotice{{Recipient: "cgi", Notice: "n-manual", Subject: ledger.Subject{Scheme: "dbs-ref", ID: "QX7-SECRET-9041"}}}}
	s := &Server{Ledger: openStore(t), Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Access: ctrl, Consult: log.consult, Notices: notices}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	param := regexp.MustCompile(`\{[^}]+\}`)
	personal := 0
	for pattern, op := range operations() {
		if op.Public || op.ID == "postEvents" || op.ID == "postAck" {
			continue // no reads; postEvents and postAck need a publisher
		}
		method, path, _ := strings.Cut(pattern, " ")
		c := call{method: method, path: param.ReplaceAllString(path, "x"), token: tok["all"], reason: "test", body: "{}"}
		if method == http.MethodPost && op.Personal {
			c.body = whoBody
		}
		before := len(log.all())
		status, _, _, raw := c.do(t, srv.URL, nil)
		got := log.all()[before:]
		switch {
		case op.Personal && (len(got) != 1 || got[0].Operation != op.ID || got[0].Principal != "all" || got[0].Reason != "test"):
			t.Errorf("%s (personal): recorded %+v, want one consultation (answered %d %s)", op.ID, got, status, raw)
		case !op.Personal && len(got) != 0:
			t.Errorf("%s (not personal): recorded %+v", op.ID, got)
		}
		if op.Personal {
			personal++
		}
	}
	if personal < 7 {
		t.Errorf("%d personal operations checked, want at least 7", personal)
	}
}

// BenchmarkAuthorize measures what authentication and the role check add to
// a request: GET /v1/recipients with access off, and with a bearer token,
// answered by the handler without the network.
func BenchmarkAuthorize(b *testing.B) {
	tok, sha := access.NewToken()
	ctrl, err := access.Parse([]byte("principals:\n  - {name: audit, roles: [auditor], tokenSHA256: " + sha + "}\n"))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	st, err := store.Open(store.Config{Dir: filepath.Join(dir, "ledger"), KeyFile: filepath.Join(dir, "site.key"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for _, bc := range []struct {
		name   string
		access *access.Control
		token  string
	}{{"off", nil, ""}, {"bearer", ctrl, tok}} {
		h := (&Server{Ledger: st, Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Access: bc.access}).Handler()
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/v1/recipients", nil)
				if bc.token != "" {
					req.Header.Set("Authorization", "Bearer "+bc.token)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
