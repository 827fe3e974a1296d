package console

import (
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// fakeLog is a hand-written fake of ConsultationLog: it records the
// filters it is asked for, and the order of calls with Consult's.
type fakeLog struct {
	mu      sync.Mutex
	calls   []string
	filters []ledger.ConsultationFilter
}

func (l *fakeLog) call(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, name)
}

func (l *fakeLog) Consultations(ctx context.Context, f ledger.ConsultationFilter) (*ledger.ConsultationPage, error) {
	l.call("log")
	l.mu.Lock()
	l.filters = append(l.filters, f)
	l.mu.Unlock()
	subj := ledger.Subject{Scheme: "dbs-ref", ID: secret}
	at := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	recs := []ledger.ConsultationRecord{
		{Seq: 7, RecordedAt: at, Principal: "jane", Operation: "who", Reason: "=HYPERLINK(\"x\")", Subject: &subj, BySubject: true, Query: "console: person page"},
		{Seq: 9, RecordedAt: at.Add(time.Hour), Principal: "jane", Operation: "listDisclosures", Reason: "SAR 7", Query: "-since"},
	}
	// One record a page, so that every reader has to page.
	if f.After == "p2" {
		return &ledger.ConsultationPage{Consultations: recs[1:]}, nil
	}
	return &ledger.ConsultationPage{Consultations: recs[:1], Next: "p2"}, nil
}

func accessesConsole(t *testing.T, fail *bool) (*fakeLog, *client, *client, *client) {
	t.Helper()
	lg := &fakeLog{}
	srv, _ := testConsole(t, Config{Consultations: lg, Consult: func(ctx context.Context, c ledger.Consultation) error {
		lg.call("consult:" + c.Principal + ":" + c.Operation + ":" + c.Reason + ":" + c.Subject.String())
		if *fail {
			return errors.New("consultation log unavailable")
		}
		return nil
	}})
	dpo, aud, clerk := newClient(t, srv), newClient(t, srv), newClient(t, srv)
	return lg, dpo, aud, clerk
}

// TestAccessesRoles: the consultation log is for the DPO and the auditor
// (listAccesses); the auditor sees no person and no reason, and may not
// select by person; the clerk and the admin may not see it.
func TestAccessesRoles(t *testing.T) {
	fail := false
	lg, dpo, aud, clerk := accessesConsole(t, &fail)
	dpo.signIn("jane")
	if status, body, _ := dpo.do("GET", "/ui/evidence/accesses", nil); status != http.StatusOK || !strings.Contains(body, secret) || !strings.Contains(body, "HYPERLINK") {
		t.Errorf("DPO: %d, want the log with people and reasons\n%s", status, body)
	}
	audCSRF := aud.signIn("aud")
	status, body, _ := aud.do("GET", "/ui/evidence/accesses", nil)
	if status != http.StatusOK || strings.Contains(body, secret) || strings.Contains(body, "SAR 7") || strings.Contains(body, "HYPERLINK") ||
		!strings.Contains(body, "(a person)") || strings.Contains(body, `id="scheme"`) {
		t.Errorf("auditor: %d, want the log without people, reasons or a person filter\n%s", status, body)
	}
	status, body, _ = aud.do("POST", "/ui/evidence/accesses.csv", nil)
	if status != http.StatusForbidden {
		t.Errorf("auditor's CSV without CSRF token: %d, want 403", status)
	}
	status, body, _ = aud.do("POST", "/ui/evidence/accesses.csv", url.Values{"csrf": {audCSRF}})
	if status != http.StatusOK || strings.Contains(body, secret) || strings.Contains(body, "SAR 7") {
		t.Errorf("auditor's CSV: %d, want it without people or reasons\n%s", status, body)
	}
	lg.calls = nil
	status, _, _ = aud.do("POST", "/ui/evidence/accesses", url.Values{"csrf": {audCSRF}, "scheme": {"dbs-ref"}, "id": {secret}, "reason": {"x"}})
	if status != http.StatusForbidden || len(lg.calls) != 0 {
		t.Errorf("auditor selecting by person: %d, calls %v, want 403 and nothing recorded or read", status, lg.calls)
	}
	for _, who := range []string{"ann", "al"} {
		clerk.signIn(who)
		if status, _, _ := clerk.do("GET", "/ui/evidence/accesses", nil); status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", who, status)
		}
		if status, _, _ := clerk.do("GET", "/ui/evidence/accesses.csv", nil); status != http.StatusForbidden {
			t.Errorf("%s CSV: %d, want 403", who, status)
		}
	}
}

// TestAccessesByPerson: selecting the log by person is a consultation,
// recorded with the user's reason before the log is read, refused when it
// cannot be recorded or has no reason; a person in a URL is ignored.
func TestAccessesByPerson(t *testing.T) {
	fail := false
	lg, dpo, _, _ := accessesConsole(t, &fail)
	csrf := dpo.signIn("jane")
	form := url.Values{"csrf": {csrf}, "scheme": {"dbs-ref"}, "id": {secret}, "reason": {"complaint 12"}, "principal": {"jane"}}
	status, body, _ := dpo.do("POST", "/ui/evidence/accesses", form)
	if want := "consult:jane:listAccesses:complaint 12:dbs-ref:" + secret + " log"; status != http.StatusOK || strings.Join(lg.calls, " ") != want {
		t.Errorf("by person: %d, calls %q, want %q\n%s", status, lg.calls, want, body)
	}
	if f := lg.filters[0]; f.Subject == nil || f.Subject.ID != secret || f.Principal != "jane" || f.Limit != accessesPageSize {
		t.Errorf("filter = %+v", f)
	}

	if !strings.Contains(body, `name="after" value="p2"`) || !strings.Contains(body, `name="id" value="`+secret+`"`) {
		t.Errorf("no form for the next page, by the same person:\n%s", body)
	}
	// The next page: another lookup of the person, recorded first.
	lg.calls = nil
	status, body, _ = dpo.do("POST", "/ui/evidence/accesses", withField(form, "after", "p2"))
	if want := "consult:jane:listAccesses:complaint 12:dbs-ref:" + secret + " log"; status != http.StatusOK || strings.Join(lg.calls, " ") != want ||
		!strings.Contains(body, "SAR 7") || strings.Contains(body, "HYPERLINK") || strings.Contains(body, `name="after"`) {
		t.Errorf("next page: %d, calls %q\n%s", status, lg.calls, body)
	}

	lg.calls, fail = nil, true
	status, body, _ = dpo.do("POST", "/ui/evidence/accesses.csv", form)
	if status != http.StatusServiceUnavailable || len(lg.calls) != 1 || strings.Contains(body, secret) {
		t.Errorf("with the log down: %d, calls %v, want 503, nothing read, no identifier\n%s", status, lg.calls, body)
	}
	lg.calls, fail = nil, false
	form.Del("reason")
	if status, _, _ = dpo.do("POST", "/ui/evidence/accesses", form); status != http.StatusBadRequest || len(lg.calls) != 0 {
		t.Errorf("without a reason: %d, calls %v, want 400 and nothing read", status, lg.calls)
	}
	lg.filters = nil
	if status, _, _ = dpo.do("GET", "/ui/evidence/accesses.csv?scheme=dbs-ref&id=x&reason=y", nil); status != http.StatusOK || lg.filters[0].Subject != nil {
		t.Errorf("a person in the URL: %d, filter %+v, want it ignored", status, lg.filters)
	}
	if status, _, _ = dpo.do("GET", "/ui/evidence/accesses?since=2026-02-01&until=2026-01-01", nil); status != http.StatusBadRequest {
		t.Errorf("until before since: %d, want 400", status)
	}
}

// TestAccessesCSV: every page of the log, the CLI's columns, free text escaped
// against spreadsheet formulas.
func TestAccessesCSV(t *testing.T) {
	fail := false
	lg, dpo, _, _ := accessesConsole(t, &fail)
	dpo.signIn("jane")
	status, body, h := dpo.do("GET", "/ui/evidence/accesses.csv?principal=jane", nil)
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") {
		t.Fatalf("CSV: %d %v", status, h)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || strings.Join(recs[0], ",") != strings.Join(accessColumns, ",") {
		t.Fatalf("CSV: want a header and 2 rows:\n%v", recs)
	}
	if recs[1][4] != `'=HYPERLINK("x")` || recs[2][5] != "'-since" || recs[1][3] != "dbs-ref:"+secret || recs[2][6] != "9" {
		t.Errorf("CSV rows: %q", recs[1:])
	}
	if len(lg.filters) != 2 || lg.filters[0].Principal != "jane" || lg.filters[1].After != "p2" || lg.filters[1].Principal != "jane" {
		t.Errorf("filters: %+v", lg.filters)
	}
}

// withField returns a copy of v with k set to val.
func withField(v url.Values, k, val string) url.Values {
	out := url.Values{}
	for kk, vv := range v {
		out[kk] = append([]string(nil), vv...)
	}
	out.Set(k, val)
	return out
}
