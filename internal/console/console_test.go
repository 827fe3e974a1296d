package console

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/notify"
)

// fakeLedger is a hand-written fake of Ledger that records the calls made
// to it, in order, with the calls to Consult.
type fakeLedger struct {
	mu          sync.Mutex
	calls       []string
	obligations []ledger.Obligation
}

func (l *fakeLedger) called(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, name)
}

func (l *fakeLedger) Who(ctx context.Context, subj ledger.Subject) (*ledger.Who, error) {
	l.called("who")
	return &ledger.Who{Recipients: []ledger.WhoRecipient{{Recipient: "acro", Name: "ACRO", Count: 2}}, Disclosures: 2}, nil
}
func (l *fakeLedger) SubjectReport(ctx context.Context, subj ledger.Subject) (*ledger.SubjectReport, error) {
	l.called("report")
	return &ledger.SubjectReport{}, nil
}
func (l *fakeLedger) Disclosures(ctx context.Context, f ledger.DisclosureFilter) (*ledger.DisclosurePage, error) {
	l.called("disclosures")
	return &ledger.DisclosurePage{}, nil
}
func (l *fakeLedger) Recipients(ctx context.Context) ([]ledger.Recipient, error) {
	return []ledger.Recipient{{ID: "acro", Name: "ACRO"}}, nil
}
func (l *fakeLedger) Recipient(ctx context.Context, id string) (*ledger.Recipient, error) {
	return &ledger.Recipient{ID: id, Name: id}, nil
}
func (l *fakeLedger) Status(ctx context.Context, request string) (*ledger.RequestStatus, error) {
	return nil, ledger.Errorf(ledger.ENOTFOUND, "no request %q", request)
}
func (l *fakeLedger) Obligations(ctx context.Context, f ledger.ObligationFilter) (*ledger.ObligationList, error) {
	var out ledger.ObligationList
	for _, o := range l.obligations {
		if (f.Overdue && !o.Overdue) || (f.Recipient != "" && o.Recipient != f.Recipient) {
			continue
		}
		out.Obligations = append(out.Obligations, o)
	}
	return &out, nil
}

type fakeNotices struct{}

func (fakeNotices) Obligation(ctx context.Context, notice string) (*ledger.Obligation, error) {
	return nil, ledger.Errorf(ledger.ENOTFOUND, "no notice")
}
func (fakeNotices) ManualQueue(ctx context.Context) ([]notify.ManualNotice, error) { return nil, nil }
func (fakeNotices) MarkSent(ctx context.Context, notice, sentBy string) (*ledger.NoticeDelivery, error) {
	return nil, ledger.Errorf(ledger.ENOTFOUND, "no notice")
}

const secret = "ZZ-SECRET-123"

// principals: name -> token, in the access file below.
var tokens = map[string]string{}

func testConsole(t *testing.T, cfg Config) (*httptest.Server, *fakeLedger) {
	t.Helper()
	yaml := "principals:\n"
	for _, p := range []struct{ name, roles string }{{"jane", "dpo"}, {"ann", "clerk"}, {"al", "admin"}, {"aud", "auditor"}} {
		tok, hash := access.NewToken()
		tokens[p.name] = tok
		yaml += "  - {name: " + p.name + ", roles: [" + p.roles + "], tokenSHA256: " + hash + "}\n"
	}
	ctl, err := access.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	l := &fakeLedger{}
	cfg.Ledger, cfg.Access, cfg.Notices, cfg.Logger = l, ctl, fakeNotices{}, slog.New(slog.DiscardHandler)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv, l
}

// client is a browser-like client of one console.
type client struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newClient(t *testing.T, srv *httptest.Server) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: srv.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, form url.Values) (int, string, http.Header) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// signIn signs in as name and returns the session's CSRF token.
func (c *client) signIn(name string) string {
	c.t.Helper()
	if status, _, _ := c.do("POST", "/ui/sign-in", url.Values{"token": {tokens[name]}}); status != http.StatusSeeOther {
		c.t.Fatalf("sign in as %s: %d", name, status)
	}
	_, body, _ := c.do("GET", "/ui/", nil)
	_, rest, ok := strings.Cut(body, `name="csrf" value="`)
	if !ok {
		c.t.Fatalf("no CSRF token on the start page")
	}
	tok, _, _ := strings.Cut(rest, `"`)
	return tok
}

// TestPersonLookupIsConsultedFirst: the lookup is recorded with who, why and
// whom before the ledger is read; a lookup that cannot be recorded is not
// made (DPA 2018 s.62, fail closed); one without a reason is refused.
func TestPersonLookupIsConsultedFirst(t *testing.T) {
	var l *fakeLedger
	var got []ledger.Consultation
	fail := false
	srv, l := testConsole(t, Config{Consult: func(ctx context.Context, c ledger.Consultation) error {
		l.called("consult")
		if fail {
			return errors.New("consultation log unavailable")
		}
		got = append(got, c)
		return nil
	}})
	c := newClient(t, srv)
	csrf := c.signIn("jane")
	form := url.Values{"csrf": {csrf}, "scheme": {"dbs-ref"}, "id": {secret}, "reason": {"SAR 7"}}

	status, body, _ := c.do("POST", "/ui/person", form)
	if status != http.StatusOK || !strings.Contains(body, "ACRO") {
		t.Fatalf("lookup: %d\n%s", status, body)
	}
	if want := "consult who report disclosures"; strings.Join(l.calls, " ") != want {
		t.Errorf("calls = %v, want %s", l.calls, want)
	}
	if len(got) != 1 || got[0].Principal != "jane" || got[0].Reason != "SAR 7" || got[0].Operation != "who" ||
		got[0].Subject == nil || *got[0].Subject != (ledger.Subject{Scheme: "dbs-ref", ID: secret}) {
		t.Errorf("consultation = %+v", got)
	}

	l.calls, fail = nil, true
	status, body, _ = c.do("POST", "/ui/person", form)
	if status != http.StatusServiceUnavailable || strings.Contains(body, "ACRO") || strings.Join(l.calls, " ") != "consult" {
		t.Errorf("with the log down: %d, calls %v, want 503 and nothing read\n%s", status, l.calls, body)
	}
	if strings.Contains(body, secret) {
		t.Errorf("the refusal quotes the identifier")
	}

	l.calls, fail = nil, false
	form.Del("reason")
	status, body, _ = c.do("POST", "/ui/person", form)
	if status != http.StatusBadRequest || !strings.Contains(body, "There is a problem") || len(l.calls) != 0 {
		t.Errorf("without a reason: %d, calls %v, want 400 with an error summary and nothing read", status, l.calls)
	}
}

// TestNoLogNoLookup: with sign-in on and no consultation log, a lookup is
// refused, as the API refuses it.
func TestNoLogNoLookup(t *testing.T) {
	srv, l := testConsole(t, Config{})
	c := newClient(t, srv)
	csrf := c.signIn("jane")
	status, body, _ := c.do("POST", "/ui/person", url.Values{"csrf": {csrf}, "scheme": {"dbs-ref"}, "id": {secret}, "reason": {"SAR"}})
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "consultation log is not running") || len(l.calls) != 0 {
		t.Errorf("lookup without a log: %d, calls %v, want 503 and nothing read", status, l.calls)
	}
}

// TestRoles: each role sees only its sections, as the API's operations
// allow them.
func TestRoles(t *testing.T) {
	srv, _ := testConsole(t, Config{Consult: func(context.Context, ledger.Consultation) error { return nil }})
	pages := []string{"/ui/person", "/ui/requests", "/ui/overdue", "/ui/manual", "/ui/decisions", "/ui/recipients", "/ui/evidence"}
	for _, tc := range []struct {
		name string
		may  []string
	}{
		{"jane", pages},
		{"ann", []string{"/ui/requests", "/ui/overdue", "/ui/manual"}},
		{"al", []string{"/ui/recipients", "/ui/evidence"}},
		{"aud", []string{"/ui/recipients", "/ui/evidence"}},
	} {
		c := newClient(t, srv)
		c.signIn(tc.name)
		for _, p := range pages {
			want := http.StatusForbidden
			for _, m := range tc.may {
				if m == p {
					want = http.StatusOK
				}
			}
			if status, _, _ := c.do("GET", p, nil); status != want {
				t.Errorf("%s GET %s: %d, want %d", tc.name, p, status, want)
			}
		}
	}
	// The clerk may not post a person search either.
	c := newClient(t, srv)
	csrf := c.signIn("ann")
	if status, _, _ := c.do("POST", "/ui/person", url.Values{"csrf": {csrf}, "scheme": {"dbs-ref"}, "id": {secret}, "reason": {"x"}}); status != http.StatusForbidden {
		t.Errorf("clerk POST /ui/person: %d, want 403", status)
	}
}

// TestSessionExpires: a session ends after SessionTTL; the next page asks to
// sign in again.
func TestSessionExpires(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv, _ := testConsole(t, Config{SessionTTL: time.Hour, Now: clock})
	c := newClient(t, srv)
	c.signIn("jane")
	if status, _, _ := c.do("GET", "/ui/requests", nil); status != http.StatusOK {
		t.Fatalf("signed in: %d", status)
	}
	mu.Lock()
	now = now.Add(61 * time.Minute)
	mu.Unlock()
	if status, _, h := c.do("GET", "/ui/requests", nil); status != http.StatusSeeOther || h.Get("Location") != "/ui/sign-in" {
		t.Errorf("after the session's hour: %d %s, want a redirect to sign in", status, h.Get("Location"))
	}
}

// TestAnonymousWithoutAccess: without --access everyone is "anonymous",
// told so on every page.
func TestAnonymousWithoutAccess(t *testing.T) {
	c, err := New(Config{Ledger: &fakeLedger{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	defer srv.Close()
	cl := newClient(t, srv)
	status, body, _ := cl.do("GET", "/ui/person", nil)
	if status != http.StatusOK || !strings.Contains(body, "Nobody is authenticated") || !strings.Contains(body, "anonymous") {
		t.Errorf("anonymous /ui/person: %d\n%s", status, body)
	}
	if status, _, h := cl.do("GET", "/ui/sign-in", nil); status != http.StatusSeeOther || h.Get("Location") != "/ui/" {
		t.Errorf("sign-in without --access: %d %s, want a redirect to the start page", status, h.Get("Location"))
	}
}

func TestCell(t *testing.T) {
	for in, want := range map[string]string{"d-1": "d-1", "=HYPERLINK(1)": "'=HYPERLINK(1)", "+1": "'+1", "-x": "'-x", "@a": "'@a", "": ""} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSessionsBounded: the store keeps at most maxSessions, ending the
// oldest.
func TestSessionsBounded(t *testing.T) {
	s := newSessions(time.Hour)
	first := s.create(anonymous)
	for range maxSessions {
		s.create(anonymous)
	}
	if len(s.m) != maxSessions {
		t.Errorf("%d sessions, want %d", len(s.m), maxSessions)
	}
	if s.m[first.id] != nil {
		t.Errorf("the oldest session is still there")
	}
}

// TestReadRoPA reads the ICO controller template's columns below its
// contact block.
func TestReadRoPA(t *testing.T) {
	in := "Controller,Acme Council\nDPO,Jane\n\n" +
		"Business function,Purpose of processing,Categories of individuals,Categories of recipients\n" +
		`Casework,Essential.Service,Applicants,"btp; Police forces, controller"` + "\n" +
		"HR,payroll,Staff,HMRC\n"
	got, order, err := readRoPA(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, "|") != "essential.service|payroll" || strings.Join(got["essential.service"], "|") != "btp|Police forces|controller" || strings.Join(got["payroll"], "|") != "HMRC" {
		t.Errorf("readRoPA = %v %v", order, got)
	}
	if _, _, err := readRoPA(strings.NewReader("a,b\n1,2\n")); ledger.ErrorCode(err) != ledger.EINVALID || !strings.Contains(err.Error(), "Categories of recipients") {
		t.Errorf("without the headings: %v, want EINVALID naming them", err)
	}
}

// TestRequestFilters: open, overdue, regime and recipient each narrow the
// requests list.
func TestRequestFilters(t *testing.T) {
	srv, l := testConsole(t, Config{})
	l.obligations = []ledger.Obligation{
		{Notice: "n-1", Request: "REQ-A", Action: "erase", Recipient: "acro", Regime: "uk-gdpr", State: ledger.StatePending, Overdue: true},
		{Notice: "n-2", Request: "REQ-A", Action: "erase", Recipient: "btp", Regime: "uk-gdpr", State: ledger.StateAcknowledged},
		{Notice: "n-3", Request: "REQ-B", Action: "restrict", Recipient: "btp", Regime: "dpa-part3", State: ledger.StateAcknowledged},
		{Notice: "n-4", Request: "REQ-C", Action: "rectify", Recipient: "cgi", Regime: "uk-gdpr", State: ledger.StateExempted},
	}
	c := newClient(t, srv)
	c.signIn("jane")
	for _, tc := range []struct{ query, want string }{
		{"", "REQ-A REQ-B REQ-C"},
		{"?show=open", "REQ-A"},
		{"?show=overdue", "REQ-A"},
		{"?regime=dpa-part3", "REQ-B"},
		{"?recipient=btp", "REQ-A REQ-B"},
		{"?show=all&regime=uk-gdpr&recipient=cgi", "REQ-C"},
	} {
		status, body, _ := c.do("GET", "/ui/requests"+tc.query, nil)
		var got []string
		for _, r := range []string{"REQ-A", "REQ-B", "REQ-C"} {
			if strings.Contains(body, `href="/ui/requests/`+r+`"`) {
				got = append(got, r)
			}
		}
		if status != http.StatusOK || strings.Join(got, " ") != tc.want {
			t.Errorf("/ui/requests%s: %d %v, want %s", tc.query, status, got, tc.want)
		}
	}
	if status, _, _ := c.do("GET", "/ui/requests?show=late", nil); status != http.StatusBadRequest {
		t.Errorf("show=late: %d, want 400", status)
	}
}
