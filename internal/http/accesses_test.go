package http

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/metrics"
)

// logLedger serves a fixed consultation log and records the filters asked.
type logLedger struct {
	stubLedger
	page  ledger.ConsultationPage
	asked []ledger.ConsultationFilter
}

func (l *logLedger) Consultations(_ context.Context, f ledger.ConsultationFilter) (*ledger.ConsultationPage, error) {
	l.asked = append(l.asked, f)
	p := l.page
	return &p, nil
}

// TestAccesses: POST /v1/accesses gives the DPO the whole log, the auditor
// (s.62(6)) the log without personal data and no selection by person, and
// records a query by person before answering it, refusing it when it
// cannot be recorded. Principals authenticate with bearer tokens.
func TestAccesses(t *testing.T) {
	t.Parallel()
	subj := ledger.Subject{Scheme: "dbs-ref", ID: "A1"}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	led := &logLedger{page: ledger.ConsultationPage{Consultations: []ledger.ConsultationRecord{
		ledger.ConsultationRecordOf(7, at, at, &ledger.Consultation{Principal: "jane.dpo", Operation: "who", Reason: "SAR", Subject: &subj}, false)}}}
	ctl, tok := accessFile(t, map[string]string{"jane.dpo": "    roles: [dpo]\n", "ico": "    roles: [auditor]\n"})
	var consulted []ledger.Consultation
	var consultErr error
	s := &Server{Ledger: led, Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Access: ctl,
		Consult: func(_ context.Context, c ledger.Consultation) error {
			consulted = append(consulted, c)
			return consultErr
		}}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	ask := func(principal, reason string, f ledger.ConsultationFilter) (*ledger.ConsultationPage, error) {
		c := NewClient(srv.URL)
		h := headerTransport{HeaderReason: reason}
		if principal != "" {
			h["Authorization"] = "Bearer " + tok[principal]
		}
		c.HTTP.Transport = h
		return c.Accesses(context.Background(), f)
	}

	pg, err := ask("jane.dpo", "SAR REQ-1", ledger.ConsultationFilter{Subject: &subj})
	if err != nil || len(pg.Consultations) != 1 || pg.Consultations[0].Subject == nil || pg.Consultations[0].Reason != "SAR" {
		t.Fatalf("DPO by person = %+v, %v", pg, err)
	}
	if len(consulted) != 1 || consulted[0].Principal != "jane.dpo" || consulted[0].Operation != OperationAccesses ||
		consulted[0].Reason != "SAR REQ-1" || consulted[0].Subject == nil || *consulted[0].Subject != subj {
		t.Errorf("the query by person was recorded as %+v", consulted)
	}

	pg, err = ask("ico", "quarterly audit", ledger.ConsultationFilter{Principal: "jane.dpo"})
	if err != nil || len(pg.Consultations) != 1 {
		t.Fatalf("auditor = %+v, %v", pg, err)
	}
	if c := pg.Consultations[0]; c.Subject != nil || c.Reason != "" || !c.BySubject || c.Principal != "jane.dpo" {
		t.Errorf("the auditor sees %+v; want no person, no reason", c)
	}
	if len(consulted) != 1 {
		t.Errorf("a query not by person was recorded: %+v", consulted[1:])
	}
	if _, err := ask("ico", "quarterly audit", ledger.ConsultationFilter{Subject: &subj}); codeOf(err) != ledger.EFORBIDDEN {
		t.Errorf("auditor by person = %v, want forbidden", err)
	}
	if _, err := ask("", "audit", ledger.ConsultationFilter{}); codeOf(err) != ledger.EUNAUTHENTICATED {
		t.Errorf("no principal = %v, want unauthenticated", err)
	}

	// Fail closed: the query by person is refused when it cannot be recorded.
	asked := len(led.asked)
	consultErr = ledger.Errorf(ledger.EUNAVAILABLE, "consultation log down")
	if _, err := ask("jane.dpo", "SAR", ledger.ConsultationFilter{Subject: &subj}); codeOf(err) != ledger.EUNAVAILABLE {
		t.Errorf("by person with the log down = %v, want unavailable", err)
	}
	if len(led.asked) != asked {
		t.Error("the log was read although the consultation was not recorded")
	}
	s.Consult = nil
	if _, err := ask("jane.dpo", "SAR", ledger.ConsultationFilter{Subject: &subj}); codeOf(err) != ledger.EUNAVAILABLE {
		t.Errorf("by person without a consultation log = %v, want unavailable", err)
	}
}

// headerTransport adds headers to every request.
type headerTransport map[string]string

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		if v != "" {
			r.Header.Set(k, v)
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// codeOf is the error code of a client error (a *Problem).
func codeOf(err error) string {
	if p, ok := err.(*Problem); ok {
		return p.Code
	}
	return ledger.ErrorCode(err)
}
