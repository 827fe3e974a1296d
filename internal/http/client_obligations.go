package http

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Status returns the propagation of one request to every recipient, or a
// *Problem with code ENOTFOUND for an unknown request.
func (c *Client) Status(ctx context.Context, request string) (*ledger.RequestStatus, error) {
	var out ledger.RequestStatus
	return &out, c.do(ctx, http.MethodGet, "/v1/requests/"+url.PathEscape(request), "", nil, &out)
}

// Obligations lists obligations across requests that match f.
func (c *Client) Obligations(ctx context.Context, f ledger.ObligationFilter) (*ledger.ObligationList, error) {
	q := url.Values{}
	if f.Overdue {
		q.Set("overdue", "true")
	}
	if f.Recipient != "" {
		q.Set("recipient", f.Recipient)
	}
	if f.State != "" {
		q.Set("state", f.State)
	}
	if f.Limit != 0 {
		q.Set("limit", fmt.Sprint(f.Limit))
	}
	path := "/v1/obligations"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out ledger.ObligationList
	return &out, c.do(ctx, http.MethodGet, path, "", nil, &out)
}

// SubjectReport returns the report for a data subject; the identifier goes
// in the request body.
func (c *Client) SubjectReport(ctx context.Context, subj ledger.Subject) (*ledger.SubjectReport, error) {
	var out ledger.SubjectReport
	return &out, c.doJSON(ctx, http.MethodPost, "/v1/reports/subject", SubjectRequest{Subject: subj}, &out)
}
