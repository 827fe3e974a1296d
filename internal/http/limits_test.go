package http

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/metrics"
)

// whoLedger answers Who with nobody; other Ledger methods are not used.
type whoLedger struct{ Ledger }

func (whoLedger) Who(ctx context.Context, subj ledger.Subject) (*ledger.Who, error) {
	return &ledger.Who{}, nil
}

// TestLookupLimitPerPrincipal: each principal of the access file has its
// own bucket; requests without a valid credential share their address's;
// the metric is labelled with names from the access file only, "anonymous"
// otherwise; the warning is logged once per principal; a refused lookup is
// not recorded as a consultation.
func TestLookupLimitPerPrincipal(t *testing.T) {
	t.Parallel()
	ctrl, tok := accessFile(t, map[string]string{
		"jane.dpo": "    roles: [dpo]\n",
		"john.dpo": "    roles: [dpo]\n",
	})
	logs := &lockedBuffer{}
	consulted := &consultLog{}
	s := &Server{
		Ledger:  whoLedger{},
		Metrics: metrics.New(),
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
		Access:  ctrl,
		Consult: consulted.consult,
		Limits:  Limits{LookupRate: 0.01, LookupBurst: 2},
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, step := range []struct {
		token string
		want  int
	}{
		{tok["jane.dpo"], 200}, {tok["jane.dpo"], 200}, {tok["jane.dpo"], 429}, {tok["jane.dpo"], 429},
		{tok["john.dpo"], 200}, {tok["john.dpo"], 200}, {tok["john.dpo"], 429}, // his own bucket
		{"", 401}, {"not-a-token", 401}, {"", 429}, {"mallory", 429}, // no valid credential: by address
	} {
		c := call{method: "POST", path: "/v1/who", token: step.token, reason: "SAR 2026-17", body: whoBody}
		if got, h, p, _ := c.do(t, srv.URL, nil); got != step.want || got == 429 && (h.Get("Retry-After") == "" || p.Code != ledger.ETOOMANY) {
			t.Errorf("lookup with token %q: %d %s, Retry-After %q; want %d", step.token, got, p.Code, h.Get("Retry-After"), step.want)
		}
	}
	// Other routes are not limited.
	for range 5 {
		if got, _, _, _ := (call{method: "GET", path: "/v1/openapi.yaml"}).do(t, srv.URL, nil); got != 200 {
			t.Fatalf("GET /v1/openapi.yaml: %d", got)
		}
	}
	if n := len(consulted.all()); n != 4 {
		t.Errorf("%d consultations recorded, want 4: the refused lookups are not consultations", n)
	}
	limited := map[string]float64{}
	families, err := s.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "sharelog_lookups_limited_total" {
			for _, m := range f.GetMetric() {
				limited[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if want := map[string]float64{"jane.dpo": 2, "john.dpo": 1, "anonymous": 2}; !maps.Equal(limited, want) {
		t.Errorf("sharelog_lookups_limited_total by principal: %v, want %v", limited, want)
	}
	for name, want := range map[string]int{"principal=jane.dpo": 1, "principal=john.dpo": 1, "principal=anonymous": 1} {
		if got := strings.Count(logs.String(), "msg=\"principal over its lookup rate\" "+name); got != want {
			t.Errorf("%d warnings for %s, want %d:\n%s", got, name, want, logs)
		}
	}
	if strings.Contains(logs.String(), "QX7-SECRET-9041") {
		t.Error("the logs hold the data subject's identifier")
	}
	for _, secret := range tok {
		if strings.Contains(logs.String(), secret) {
			t.Error("the logs hold a token")
		}
	}
}

// TestConsoleLookupsLimited: the console's lookups (which reach the log
// through Consult, not through the API's routes) take from the same
// per-principal buckets: over the rate, the lookup is refused before it is
// recorded, and another principal is not held back.
func TestConsoleLookupsLimited(t *testing.T) {
	l := newLookupLimiter(Limits{LookupRate: 0.001, LookupBurst: 2}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	recorded := map[string]int{}
	consult := l.consult(func(_ context.Context, c ledger.Consultation) error {
		recorded[c.Principal]++
		return nil
	})
	ctx := context.Background()
	for i := range 3 {
		err := consult(ctx, ledger.Consultation{Principal: "jane.dpo", Operation: "who", Reason: "r"})
		if want := i == 2; (ledger.ErrorCode(err) == ledger.ETOOMANY) != want {
			t.Fatalf("lookup %d by jane.dpo: %v, want refused=%v", i+1, err, want)
		}
	}
	if err := consult(ctx, ledger.Consultation{Principal: "sam.dpo", Operation: "who", Reason: "r"}); err != nil {
		t.Fatalf("another principal: %v", err)
	}
	if recorded["jane.dpo"] != 2 || recorded["sam.dpo"] != 1 {
		t.Fatalf("recorded %v, want jane.dpo 2 (the refused one not recorded) and sam.dpo 1", recorded)
	}
}
