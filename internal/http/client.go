package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Client calls a sharelog server's API. Errors come back as *Problem, whose
// Code is the ledger error code the server mapped from.
type Client struct {
	URL  string
	HTTP *http.Client
	// Token, when set, is sent as Authorization: Bearer (the principal's
	// token from sharelog token).
	Token string
	// Reason, when set, is sent as the Sharelog-Reason header: the
	// justification recorded when a request reads a person's data.
	Reason string
	// Applied, when set, is sent as the Sharelog-Applied header: a read is
	// answered once the server's ledger has applied SHARELOG_IN up to this
	// sequence (read-your-writes across replicas).
	Applied uint64
}

// NewClient returns a client for the server at baseURL.
func NewClient(baseURL string) *Client {
	return &Client{URL: strings.TrimRight(baseURL, "/"), HTTP: &http.Client{Timeout: 2 * time.Minute}}
}

// ContentTypeBatch is the CloudEvents HTTP batch media type.
const ContentTypeBatch = "application/cloudevents-batch+json"

// Publish posts a JSON array of structured events in one batch request.
// A refused batch returns a *Problem listing each refused event.
func (c *Client) Publish(ctx context.Context, batch []byte) (*Accepted, error) {
	var out Accepted
	err := c.do(ctx, http.MethodPost, "/v1/events", ContentTypeBatch, bytes.NewReader(batch), &out)
	return &out, err
}

// Who asks who received subj's data.
func (c *Client) Who(ctx context.Context, subj ledger.Subject) (*ledger.Who, error) {
	var out ledger.Who
	return &out, c.doJSON(ctx, http.MethodPost, "/v1/who", SubjectRequest{Subject: subj}, &out)
}

// Disclosures lists disclosures. A filter with a subject is POSTed, so that
// the identifier stays out of the URL.
func (c *Client) Disclosures(ctx context.Context, f ledger.DisclosureFilter) (*ledger.DisclosurePage, error) {
	var out ledger.DisclosurePage
	if f.Subject != nil {
		return &out, c.doJSON(ctx, http.MethodPost, "/v1/disclosures/search", f, &out)
	}
	q := pageValues("recipient", f.Recipient, f.Since, f.Until, f.After, f.Limit)
	path := "/v1/disclosures"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return &out, c.do(ctx, http.MethodGet, path, "", nil, &out)
}

// Disclosure fetches one disclosure by its event id (and source, if the id is
// used by more than one source).
func (c *Client) Disclosure(ctx context.Context, id, source string) (*ledger.DisclosureRecord, error) {
	var out ledger.DisclosureRecord
	path := "/v1/disclosures/" + url.PathEscape(id)
	if source != "" {
		path += "?source=" + url.QueryEscape(source)
	}
	return &out, c.do(ctx, http.MethodGet, path, "", nil, &out)
}

// Recipients lists the recipient registry.
func (c *Client) Recipients(ctx context.Context) ([]ledger.Recipient, error) {
	var out RecipientList
	return out.Recipients, c.do(ctx, http.MethodGet, "/v1/recipients", "", nil, &out)
}

// send sends req with the client's credential and reason.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.Reason != "" {
		req.Header.Set(HeaderReason, c.Reason)
	}
	if c.Applied != 0 {
		req.Header.Set(HeaderApplied, strconv.FormatUint(c.Applied, 10))
	}
	return c.HTTP.Do(req)
}

func (c *Client) doJSON(ctx context.Context, method, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.do(ctx, method, path, "application/json", bytes.NewReader(b), out)
}

func (c *Client) do(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.send(req)
	if err != nil {
		return ledger.Errorf(ledger.EUNAVAILABLE, "cannot reach sharelog at %s: %v", c.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 300 {
		p := &Problem{}
		if json.Unmarshal(data, p) != nil || p.Status == 0 {
			p = newProblem(resp.StatusCode, errorCode(resp.StatusCode), strings.TrimSpace(string(data)))
		}
		if p.Code == "" {
			p.Code = errorCode(resp.StatusCode)
		}
		return p
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}
