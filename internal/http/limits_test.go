package http

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/metrics"
)

// whoLedger answers Who with nobody; other Ledger methods are not used.
type whoLedger struct{ Ledger }

func (whoLedger) Who(ctx context.Context, subj ledger.Subject) (*ledger.Who, error) {
	return &ledger.Who{}, nil
}

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

const testAccess = `principals:
  - name: jane.dpo
    roles: [dpo]
    tokenSHA256: 6b86b273ff34fce19d6b804eff5a3f5747ada4ea2f1b1bb1dcd2f3ef34bd9be8
  - name: john.dpo
    roles: [dpo]
    tokenSHA256: d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da2a666eec13ab35
`

// TestLookupLimitPerPrincipal: each principal has its own bucket; the
// metric is labelled with names from the access file only, "anonymous"
// otherwise; the warning is logged once per principal.
func TestLookupLimitPerPrincipal(t *testing.T) {
	t.Parallel()
	control, err := access.Parse([]byte(testAccess))
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	s := &Server{
		Ledger:  whoLedger{},
		Metrics: metrics.New(),
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
		Access:  control,
		Limits:  Limits{LookupRate: 0.01, LookupBurst: 2},
	}
	// What authentication does: the principal named by the request, here
	// by a test header, in the request's context; a name not in the access
	// file stands for a principal the file does not know.
	h := s.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name := r.Header.Get("Test-Principal"); name != "" {
			p := control.Named(name)
			if p == nil {
				p = &ledger.Principal{Name: name, Roles: []ledger.Role{ledger.RoleDPO}}
			}
			r = r.WithContext(access.WithPrincipal(r.Context(), p))
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	who := func(principal string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/who", strings.NewReader(`{"subject":{"scheme":"nhs","id":"9434765919"}}`))
		req.Header.Set("Test-Principal", principal)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, step := range []struct {
		principal string
		want      int
	}{
		{"jane.dpo", 200}, {"jane.dpo", 200}, {"jane.dpo", 429}, {"jane.dpo", 429},
		{"john.dpo", 200}, {"john.dpo", 200}, {"john.dpo", 429}, // his own bucket
		{"", 200}, {"", 200}, {"", 429}, // no principal: by address
		{"mallory-1", 429}, {"mallory-2", 429}, // not in the file: anonymous, by address
	} {
		if got := who(step.principal); got != step.want {
			t.Errorf("lookup by %q: %d, want %d", step.principal, got, step.want)
		}
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
	if want := map[string]float64{"jane.dpo": 2, "john.dpo": 1, "anonymous": 3}; !maps.Equal(limited, want) {
		t.Errorf("sharelog_lookups_limited_total by principal: %v, want %v", limited, want)
	}
	for name, want := range map[string]int{"principal=jane.dpo": 1, "principal=john.dpo": 1, "principal=anonymous": 1} {
		if got := strings.Count(logs.String(), "msg=\"principal over its lookup rate\" "+name); got != want {
			t.Errorf("%d warnings for %s, want %d:\n%s", got, name, want, logs)
		}
	}
	if strings.Contains(logs.String(), "9434765919") {
		t.Error("the logs hold the data subject's identifier")
	}
}
