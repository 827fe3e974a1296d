package http

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/metrics"
)

// personLedger answers the person page's queries with nothing found.
type personLedger struct{ Ledger }

func (personLedger) Who(ctx context.Context, s ledger.Subject) (*ledger.Who, error) {
	return &ledger.Who{}, nil
}
func (personLedger) SubjectReport(ctx context.Context, s ledger.Subject) (*ledger.SubjectReport, error) {
	return &ledger.SubjectReport{}, nil
}
func (personLedger) Disclosures(ctx context.Context, f ledger.DisclosureFilter) (*ledger.DisclosurePage, error) {
	return &ledger.DisclosurePage{}, nil
}

// TestConsoleMounted: the server serves the console at /ui/ with the
// server's own Consult, so a console lookup is logged as the API's are.
func TestConsoleMounted(t *testing.T) {
	var got []ledger.Consultation
	s := &Server{Ledger: personLedger{}, Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler),
		Consult: func(ctx context.Context, c ledger.Consultation) error { got = append(got, c); return nil }}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(srv.URL + "/ui/person")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, rest, _ := strings.Cut(string(body), `name="csrf" value="`)
	csrf, _, _ := strings.Cut(rest, `"`)
	resp, err = c.PostForm(srv.URL+"/ui/person", url.Values{"csrf": {csrf}, "scheme": {"dbs-ref"}, "id": {"A1"}, "reason": {"SAR 9"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(got) != 1 || got[0].Reason != "SAR 9" || got[0].Principal != "anonymous" {
		t.Errorf("console lookup: %d, consultations %+v; want 200 and one consultation by anonymous for SAR 9", resp.StatusCode, got)
	}
}
