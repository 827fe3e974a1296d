package http

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/notify"
)

// Notices is what the notice endpoints need: the webhook secrets that
// authenticate recipients' acks, and the manual queue. *notify.Dispatcher
// implements it.
type Notices interface {
	// WebhookSecret returns recipient's webhook secret, if one is configured.
	WebhookSecret(recipient string) ([]byte, bool)
	// Obligation returns the obligation of notice, or ENOTFOUND.
	Obligation(ctx context.Context, notice string) (*ledger.Obligation, error)
	// ManualQueue returns the open manual notices not yet sent.
	ManualQueue(ctx context.Context) ([]notify.ManualNotice, error)
	// MarkSent records that a person sent a manual notice; ENOTFOUND,
	// ECONFLICT (not manual, closed or already sent) or EINVALID.
	MarkSent(ctx context.Context, notice, sentBy string) (*ledger.NoticeDelivery, error)
}

// codeUnauthorized is the problem code of a 401: an ack whose signature is
// missing or wrong. It is not a ledger error code; only this route uses it.
const codeUnauthorized = "unauthorized"

// noticesRoutes adds the notice endpoints to mux.
func (s *Server) noticesRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/recipients/{id}/acks", s.handleAck)
	mux.HandleFunc("GET /v1/manual", s.handleManual)
	mux.HandleFunc("POST /v1/notices/{notice}/sent", s.handleSent)
}

func (s *Server) notices(w http.ResponseWriter, r *http.Request) bool {
	if s.Notices == nil {
		s.fail(w, r, ledger.Errorf(ledger.EUNAVAILABLE, "notice delivery is not running"))
		return false
	}
	return true
}

// handleAck takes a recipient's acknowledgement of a notice: an
// org.sharelog.notice.ack.v1 CloudEvent, structured or in binary mode, whose
// body is signed with the recipient's webhook secret (Sharelog-Timestamp
// and Sharelog-Signature, as notify.Verify checks): in binary mode the body
// is the data, which names the notice and the outcome. It is published to sharelog.in.ack.<id>, so the ingest loop
// vouches for the recipient and the store accepts it only for a notice sent
// to that recipient.
func (s *Server) handleAck(w http.ResponseWriter, r *http.Request) {
	if !s.notices(w, r) {
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	if !ledger.ValidSlug(id) {
		s.fail(w, r, ledger.Errorf(ledger.ENOTFOUND, "no such recipient"))
		return
	}
	if !s.mayFor(w, r, id) { // with access on, a recipient acks only its own notices
		return
	}
	if _, err := s.Ledger.Recipient(ctx, id); err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := readAll(r, cloudevents.MaxEventSize)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.Access == nil {
		// Without an access file the recipient is authenticated by the
		// signature; with one, by its principal (authorize and mayFor).
		secret, ok := s.Notices.WebhookSecret(id)
		if !ok {
			s.unauthorized(w, "no webhook secret is configured for this recipient, so its acks cannot be authenticated")
			return
		}
		if err := notify.Verify(secret, r.Header, body, time.Now(), notify.DefaultTolerance); err != nil {
			s.Metrics.Rejected.WithLabelValues("unauthorized", "http").Inc()
			s.unauthorized(w, err.Error())
			return
		}
	}
	var ev *ledger.Event
	mt := mediaType(r.Header.Get("Content-Type"))
	switch {
	case mt != cloudevents.MediaTypeStructured && len(r.Header.Values("Ce-Specversion")) > 0:
		// Binary mode, the CloudEvents SDKs' default: the signed body is
		// the data (the notice and the outcome), the attributes are in
		// ce-* headers.
		br := r.Clone(ctx)
		br.Body = io.NopCloser(bytes.NewReader(body))
		var ds []cloudevents.Decoded
		if ds, err = s.Decoder.DecodeHTTP(br); err == nil {
			ev, err = ds[0].Event, ds[0].Err
		}
	case mt != cloudevents.MediaTypeStructured && mt != "application/json":
		s.fail(w, r, ledger.Invalid(ledger.ReasonContentType, "Content-Type", "an ack is one CloudEvent: send %s or binary mode (ce-* headers)", cloudevents.MediaTypeStructured))
		return
	default:
		ev, err = s.Decoder.DecodeStructured(body)
	}
	if err != nil {
		s.countRejected(err)
		s.fail(w, r, err)
		return
	}
	ack, ok := ev.Data.(*ledger.NoticeAck)
	if !ok {
		s.fail(w, r, ledger.Invalid(ledger.ReasonUnknownType, "type", "this endpoint takes %s events only", ledger.TypeNoticeAck))
		return
	}
	if p := access.From(ctx); p != nil {
		if err := ledger.MayPublish(p, ev.Type, ev.Source, id); err != nil {
			s.refuse(w, r, operationOf(ctx), p, err)
			return
		}
	}
	ob, err := s.Notices.Obligation(ctx, ack.Notice)
	if ledger.ErrorCode(err) == ledger.ENOTFOUND || (err == nil && ob.Recipient != id) {
		// The same answer whether the notice does not exist or went to
		// someone else: a recipient learns nothing of others' notices.
		s.fail(w, r, ledger.Errorf(ledger.ENOTFOUND, "no notice %q was sent to recipient %s", ack.Notice, id))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	events := []*ledger.Event{ev}
	s.Decoder.Handoff(events) // decoded once, here, not again by the ingest
	acks, err := s.Publisher.Publish(ctx, notify.SubjectAckPrefix+id, events)
	if err != nil {
		s.fail(w, r, ledger.Errorf(ledger.EUNAVAILABLE, "ack not stored: %v", err))
		return
	}
	writeJSON(w, http.StatusAccepted, Accepted{Accepted: s.outcomes(ctx, events, acks)})
}

func (s *Server) unauthorized(w http.ResponseWriter, detail string) {
	w.Header().Set("WWW-Authenticate", `Sharelog-HMAC-SHA256 realm="sharelog acks"`)
	writeProblem(w, newProblem(http.StatusUnauthorized, codeUnauthorized, detail))
}

// readAll reads at most limit bytes of the request body.
func readAll(r *http.Request, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, limit))
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return nil, ledger.Errorf(ledger.ETOOLARGE, "request body is over the limit of %d bytes", limit)
	case err != nil:
		return nil, ledger.Errorf(ledger.EINVALID, "cannot read the request body")
	case n == 0:
		return nil, ledger.Errorf(ledger.EINVALID, "empty body")
	}
	return buf.Bytes(), nil
}

// mediaType returns the media type of a Content-Type value, lowercased.
func mediaType(ct string) string {
	ct, _, _ = strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(ct))
}

// handleManual exports the manual queue, as JSON (a ManualList, the default)
// or CSV (?format=csv). The export holds data-subject identifiers, because a
// person must send them; it is marked not to be cached.
func (s *Server) handleManual(w http.ResponseWriter, r *http.Request) {
	if !s.notices(w, r) {
		return
	}
	params, err := queryParams(r, "", "format")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	format := cmp.Or(params.Get("format"), "json")
	if format != "json" && format != "csv" {
		s.fail(w, r, ledger.Errorf(ledger.EINVALID, "format must be json or csv"))
		return
	}
	if !s.consult(w, r, nil, url.Values{"format": {format}}.Encode()) {
		return
	}
	q, err := s.Notices.ManualQueue(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if format == "json" {
		if q == nil {
			q = []notify.ManualNotice{}
		}
		writeJSON(w, http.StatusOK, notify.ManualList{Notices: q})
		return
	}
	var buf bytes.Buffer
	if err := notify.WriteManualCSV(&buf, q); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
	w.Header().Set("Content-Disposition", `attachment; filename="sharelog-manual.csv"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(buf.Bytes())
}

// SentRequest is the body of POST /v1/notices/{notice}/sent.
type SentRequest struct {
	SentBy string `json:"sentBy"`
}

// handleSent marks a manual notice sent; the response is the delivery record.
func (s *Server) handleSent(w http.ResponseWriter, r *http.Request) {
	if !s.notices(w, r) {
		return
	}
	var req SentRequest
	if err := decodeBody(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	rec, err := s.Notices.MarkSent(r.Context(), r.PathValue("notice"), req.SentBy)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// Manual fetches the manual queue.
func (c *Client) Manual(ctx context.Context) ([]notify.ManualNotice, error) {
	var out notify.ManualList
	return out.Notices, c.do(ctx, http.MethodGet, "/v1/manual?format=json", "", nil, &out)
}

// ManualCSV fetches the manual queue as CSV.
func (c *Client) ManualCSV(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"/v1/manual?format=csv", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, ledger.Errorf(ledger.EUNAVAILABLE, "cannot reach sharelog at %s: %v", c.URL, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, resp.Body, 256<<20)); err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.problem(resp.StatusCode, buf.Bytes())
	}
	return buf.Bytes(), nil
}

// MarkSent records that a person sent the manual notice.
func (c *Client) MarkSent(ctx context.Context, notice, sentBy string) (*ledger.NoticeDelivery, error) {
	var out ledger.NoticeDelivery
	return &out, c.doJSON(ctx, http.MethodPost, "/v1/notices/"+url.PathEscape(notice)+"/sent", SentRequest{SentBy: sentBy}, &out)
}

// problem turns an error response into a *Problem, as do does.
func (c *Client) problem(status int, data []byte) error {
	var p Problem
	if json.Unmarshal(data, &p) != nil || p.Status == 0 {
		return newProblem(status, errorCode(status), string(bytes.TrimSpace(data)))
	}
	if p.Code == "" {
		p.Code = errorCode(status)
	}
	return &p
}
