package http

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/ledger"
)

// Checkpoint fetches the signed checkpoint of tree size size, or the latest
// one when size is 0. The caller checks its signature (checkpoint.Open).
func (c *Client) Checkpoint(ctx context.Context, size int64) ([]byte, error) {
	path := "/v1/checkpoint"
	if size > 0 {
		path += "?size=" + fmt.Sprint(size)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain, application/problem+json")
	resp, err := c.send(req)
	if err != nil {
		return nil, ledger.Errorf(ledger.EUNAVAILABLE, "cannot reach sharelog at %s: %v", c.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 300 {
		p := &Problem{}
		if json.Unmarshal(data, p) != nil || p.Status == 0 {
			p = newProblem(resp.StatusCode, errorCode(resp.StatusCode), strings.TrimSpace(string(data)))
		}
		if p.Code == "" {
			p.Code = errorCode(resp.StatusCode)
		}
		return nil, p
	}
	return data, nil
}

// CheckpointSizes fetches every tree size the server holds a signed
// checkpoint of, page by page.
func (c *Client) CheckpointSizes(ctx context.Context) ([]int64, error) {
	var all []int64
	after := int64(0)
	for {
		var page CheckpointSizes
		path := "/v1/checkpoints"
		if after > 0 {
			path += "?after=" + fmt.Sprint(after)
		}
		if err := c.do(ctx, http.MethodGet, path, "", nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Sizes...)
		if !page.More || len(page.Sizes) == 0 {
			return all, nil
		}
		after = page.Sizes[len(page.Sizes)-1]
	}
}

// InclusionProof fetches the proof that entry seq is in the tree of size
// size (0: the server's current size).
func (c *Client) InclusionProof(ctx context.Context, seq, size int64) (*checkpoint.InclusionProof, error) {
	q := url.Values{"seq": {fmt.Sprint(seq)}}
	if size > 0 {
		q.Set("size", fmt.Sprint(size))
	}
	var out checkpoint.InclusionProof
	return &out, c.do(ctx, http.MethodGet, "/v1/proof/inclusion?"+q.Encode(), "", nil, &out)
}

// ConsistencyProof fetches the proof that the tree of size from is a prefix
// of the tree of size to (0: the server's current size).
func (c *Client) ConsistencyProof(ctx context.Context, from, to int64) (*checkpoint.ConsistencyProof, error) {
	q := url.Values{"from": {fmt.Sprint(from)}}
	if to > 0 {
		q.Set("to", fmt.Sprint(to))
	}
	var out checkpoint.ConsistencyProof
	return &out, c.do(ctx, http.MethodGet, "/v1/proof/consistency?"+q.Encode(), "", nil, &out)
}
