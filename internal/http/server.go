package http

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/console"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/metrics"
	"github.com/sharelog/sharelog/internal/nats"
)

// Ledger is what the API reads from the ledger store.
type Ledger interface {
	Who(ctx context.Context, subj ledger.Subject) (*ledger.Who, error)
	Disclosures(ctx context.Context, f ledger.DisclosureFilter) (*ledger.DisclosurePage, error)
	Disclosure(ctx context.Context, id, source string) (*ledger.DisclosureRecord, error)
	Recipients(ctx context.Context) ([]ledger.Recipient, error)
	Recipient(ctx context.Context, id string) (*ledger.Recipient, error)
	// Lookup returns the entry recorded for (source, id), or ENOTFOUND.
	Lookup(ctx context.Context, source, id string) (*ledger.Entry, error)
	WaitApplied(ctx context.Context, streamSeq uint64) error
	// Status, Obligations and SubjectReport answer the propagation
	// questions (obligations.go).
	Status(ctx context.Context, request string) (*ledger.RequestStatus, error)
	Obligations(ctx context.Context, f ledger.ObligationFilter) (*ledger.ObligationList, error)
	SubjectReport(ctx context.Context, subj ledger.Subject) (*ledger.SubjectReport, error)
}

// Publisher puts validated events on SHARELOG_IN and returns once they are durable there.
type Publisher interface {
	Publish(ctx context.Context, subject string, events []*ledger.Event) ([]nats.Ack, error)
	// PublishConflicts puts there events whose (source, id) the ledger
	// holds with other content, each under a message id of its own, for
	// the ingest to refuse and keep in SHARELOG_REJECTED.
	PublishConflicts(ctx context.Context, subject string, events []*ledger.Event) ([]nats.Ack, error)
}

// Server is the HTTP API. Set the fields, then Open.
type Server struct {
	Addr      string
	Ledger    Ledger
	Decoder   *cloudevents.Decoder
	Publisher Publisher
	// CatchUp waits until the ledger has applied all input published so far.
	CatchUp func(ctx context.Context) error
	// CheckReplay returns a conflict (ledger.Replay) for an event whose
	// (source, id) the ledger holds with other content; nil skips the check
	// (the ingest loop still refuses such an event when it applies it).
	CheckReplay func(ctx context.Context, ev *ledger.Event) error
	// Ready returns nil when the server can take events (NATS connected, no
	// background loop failed, ingest running), or an error saying why not
	// without personal data; /readyz answers 503 with it.
	Ready func() error
	// Role, if set, returns a line /readyz adds to its "ready" answer: a
	// replica's role (leader or follower, and the leader's name); empty,
	// nothing.
	Role    func() string
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	OpenAPI []byte

	// ReadyDetail, when set, returns warnings that do not make the server
	// unready (another replica's ledger differs, say), without personal
	// data; /readyz lists them, one a line, after its answer.
	ReadyDetail func() []string

	// Notices serves the notice endpoints (acks over HTTP, the manual
	// queue); nil answers them 503.
	Notices Notices
	// Tree serves checkpoints and Merkle proofs (proof.go); nil answers
	// them 503.
	Tree Tree
	// ApplyWait bounds how long POST /v1/events waits to report whether each
	// event was recorded (default 5s); the events are durable before it waits.
	ApplyWait time.Duration
	// AppliedWait bounds how long a read with the Sharelog-Applied header
	// waits for the ledger to apply its sequence (default
	// DefaultAppliedWait; applied.go).
	AppliedWait time.Duration
	// Access, when set, turns on authentication and authorisation (the
	// --access file); nil serves everyone, as serve does on loopback only.
	Access *access.Control
	// Consult records a consultation of a person's data in the ledger
	// (DPA 2018 s.62) and returns once it is durable; a request that reads
	// a person's data is answered only after it returned nil (fail closed).
	Consult func(ctx context.Context, c ledger.Consultation) error
	// ConsoleOIDC, when set, lets the web console (/ui/) sign people in
	// with the organisation's OpenID Connect provider (the --oidc file).
	ConsoleOIDC *console.OIDC
	// TLS, when set, serves HTTPS (ServerTLS); nil serves plain HTTP.
	TLS *tls.Config
	// Limits bounds connections, request read time and lookups (limits.go).
	Limits Limits

	ln  net.Listener
	srv *http.Server
}

// Open listens on Addr and serves in the background.
func (s *Server) Open() error {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	s.Logger = s.Logger.With("system", "http")
	if s.ApplyWait == 0 {
		s.ApplyWait = 5 * time.Second
	}
	ln, err := s.listen()
	if err != nil {
		return err
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.readTimeout(),
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		TLSConfig:         s.TLS,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: maxStreams},
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelDebug), // failed handshakes, mostly
	}
	go func() {
		serve := s.srv.Serve
		if s.TLS != nil {
			serve = func(ln net.Listener) error { return s.srv.ServeTLS(ln, "", "") }
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("http serve", "err", err)
		}
	}()
	s.Logger.Info("http api listening", "url", s.URL())
	return nil
}

// URL returns the base URL the server listens on.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	if s.TLS != nil {
		return "https://" + s.ln.Addr().String()
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops accepting requests and waits for those in flight until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

// Handler returns the API's routes with logging and metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events", s.handleEvents)
	mux.HandleFunc("POST /v1/who", subjectHandler(s, s.Ledger.Who))
	mux.HandleFunc("GET /v1/disclosures", s.handleDisclosures)
	mux.HandleFunc("POST /v1/disclosures/search", s.handleDisclosureSearch)
	mux.HandleFunc("GET /v1/disclosures/{id}", s.handleDisclosure)
	mux.HandleFunc("GET /v1/recipients", s.handleRecipients)
	mux.HandleFunc("GET /v1/recipients/{id}", s.handleRecipient)
	mux.HandleFunc("GET /v1/openapi.yaml", s.handleOpenAPI)
	s.noticesRoutes(mux)
	s.obligationRoutes(mux)
	s.proofRoutes(mux)
	s.accessRoutes(mux) // accesses.go
	lookups := s.lookupLimiter()
	mux.Handle("/ui/", s.console(lookups)) // console.Prefix: the web console, not an API operation (auth.go)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeProblem(w, newProblem(http.StatusMethodNotAllowed, ledger.EINVALID,
				fmt.Sprintf("method %s not allowed here; use %s", r.Method, strings.Join(allow, " or "))))
			return
		}
		writeProblem(w, newProblem(http.StatusNotFound, ledger.ENOTFOUND, "no such route; see /v1/openapi.yaml"))
	})
	return s.observe(s.authorize(mux, lookups))
}

// methods are those the API's routes use, in the order Allow lists them.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost}

// allowed returns the methods with a route for r's path other than the
// catch-all: the mux's own 405 cannot answer once "/" matches every method.
func allowed(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range methods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	return allow
}

// statusWriter remembers the status code for logs and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// observe logs and counts each request by route pattern, never by URL, so
// that nothing a client put in a URL reaches logs or metrics.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		}
		s.Metrics.HTTPRequests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
		s.Logger.Debug("request", "route", route, "status", sw.status, "duration", time.Since(start))
	})
}

// fail writes err as a problem and logs internal errors.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err)
	if p.Status >= 500 {
		s.Logger.Error("request failed", "route", r.Pattern, "err", err)
	}
	writeProblem(w, p)
}

// Accepted is the 202 body of POST /v1/events.
type Accepted struct {
	Accepted []AcceptedEvent `json:"accepted"`
}

// Outcomes reported for accepted events.
const (
	OutcomeRecorded  = "recorded"  // a new ledger entry
	OutcomeDuplicate = "duplicate" // (source, id) was already recorded
	OutcomeRejected  = "rejected"  // refused when applied; see SHARELOG_REJECTED
	OutcomePending   = "pending"   // durable in SHARELOG_IN, not yet applied when the response was sent
)

// AcceptedEvent reports one accepted event.
type AcceptedEvent struct {
	Source  string `json:"source"`
	ID      string `json:"id"`
	Outcome string `json:"outcome"`
	Seq     uint64 `json:"seq,omitempty"`
	// StreamSeq is the event's SHARELOG_IN sequence (of its earlier copy
	// when JetStream dropped it as a resend): a read on any replica with
	// it in the Sharelog-Applied header sees this event (applied.go).
	StreamSeq uint64 `json:"streamSeq"`
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := decompress(w, r); err != nil {
		s.fail(w, r, err)
		return
	}
	decoded, err := s.Decoder.DecodeHTTP(r)
	if err != nil {
		s.countRejected(err)
		s.fail(w, r, err)
		return
	}
	switch body := s.submit(ctx, nats.SubjectInHTTP, "http", decoded).(type) {
	case *Problem:
		if body.Status >= 500 {
			s.Logger.Error("request failed", "route", r.Pattern, "detail", body.Detail)
		}
		writeProblem(w, body)
	default:
		writeJSON(w, http.StatusAccepted, body)
	}
}

// submit does what POST /v1/events does with the events of a request once
// decoded: it refuses the whole request if any event is refused, otherwise
// publishes the events to SHARELOG_IN on subject and waits (bounded) for
// their outcomes. It returns the body of the answer: an Accepted (HTTP
// 202; an empty batch gives an empty list) or a *Problem whose Events list
// every refused event and each of its problems. transport labels the
// rejection metrics.
//
// When every refused event is a replay of a recorded (source, id) with
// other content, those copies are published to SHARELOG_IN before the 409,
// so that the ingest refuses them and keeps them in SHARELOG_REJECTED under
// reason conflict, as it does a conflicting copy sent over NATS (and
// forgetting the person scrubs them there too). A request refused for any
// other reason is refused whole and nothing of it is kept: the producer
// must correct it and send it again.
func (s *Server) submit(ctx context.Context, subject, transport string, decoded []cloudevents.Decoded) any {
	var refused []EventProblems
	var replays []*ledger.Event // refused as replays with other content
	events := make([]*ledger.Event, 0, len(decoded))
	registered := map[string]bool{}
	for i, d := range decoded {
		if d.Err == nil {
			d.Err = notFromProducers(d.Event)
		}
		if d.Err == nil {
			d.Err = mayPublish(ctx, d.Event) // auth.go: the principal's roles and sources
		}
		if d.Err == nil {
			d.Err = ledger.CheckAlone(d.Event) // s.62, Art. 18(3): refused with the reason, before storing
		}
		if d.Err == nil {
			d.Err = s.checkRecipient(ctx, d.Event, registered)
		}
		if d.Err == nil && s.CheckReplay != nil {
			if d.Err = s.CheckReplay(ctx, d.Event); d.Err != nil {
				replays = append(replays, d.Event) // a replay with other content: 409 if only those
			}
		}
		if d.Err != nil {
			s.countRejectedOn(d.Err, transport)
			refused = append(refused, EventProblems{Index: i, Source: d.Source, ID: d.ID, Problems: problemsOf(d.Err)})
			continue
		}
		events = append(events, d.Event)
	}
	if len(refused) > 0 {
		status, code := http.StatusBadRequest, ledger.EINVALID
		if len(replays) == len(refused) {
			if err := s.keepConflicts(ctx, subject, replays); err != nil {
				return problemFor(err)
			}
			status, code = http.StatusConflict, ledger.ECONFLICT
		}
		p := newProblem(status, code, fmt.Sprintf("%d of %d events refused; none were accepted", len(refused), len(decoded)))
		if isForbidden(refused) {
			p = newProblem(http.StatusForbidden, ledger.EFORBIDDEN, fmt.Sprintf("%d of %d events refused, at least one the principal may not publish; none were accepted", len(refused), len(decoded)))
		}
		p.Events = refused
		return p
	}
	if len(events) == 0 {
		// An empty batch, [], is a valid batch (CloudEvents JSON format,
		// section 4): nothing to store, nothing refused.
		return Accepted{Accepted: []AcceptedEvent{}}
	}
	// The ingest reads these events back from SHARELOG_IN: it takes them
	// as decoded here rather than decoding them a second time.
	s.Decoder.Handoff(events)
	acks, err := s.Publisher.Publish(ctx, subject, events)
	if err != nil {
		return problemFor(ledger.Errorf(ledger.EUNAVAILABLE, "events not stored: %v", err))
	}
	return Accepted{Accepted: s.outcomes(ctx, events, acks)}
}

// keepConflicts publishes replays with other content to SHARELOG_IN on
// subject for the ingest to refuse and keep in SHARELOG_REJECTED (submit).
// A copy sent again within JetStream's duplicate window is stored once.
func (s *Server) keepConflicts(ctx context.Context, subject string, replays []*ledger.Event) error {
	s.Decoder.Handoff(replays)
	if _, err := s.Publisher.PublishConflicts(ctx, subject, replays); err != nil {
		return ledger.Errorf(ledger.EUNAVAILABLE, "conflicting events not kept: %v", err)
	}
	return nil
}

// Answer gives other transports that answer producers (the NATS service)
// the answer POST /v1/events gives: the events of a request as decoded, or
// err, a request-level failure such as cloudevents.Decoder.DecodeBatch
// returns, are refused or published to SHARELOG_IN on subject, as
// handleEvents does. It returns the HTTP status of the answer, a one-line
// detail for a refusal (empty for 202), and the body: an Accepted or a
// *Problem. Neither the detail nor the body quotes a data-subject
// identifier. transport labels the rejection metrics.
func (s *Server) Answer(ctx context.Context, subject, transport string, decoded []cloudevents.Decoded, err error) (status int, detail string, body any) {
	if err != nil {
		s.countRejectedOn(err, transport)
		p := problemFor(err)
		return p.Status, p.Detail, p
	}
	switch b := s.submit(ctx, subject, transport, decoded).(type) {
	case *Problem:
		if b.Status >= 500 {
			s.Logger.Error("request failed", "transport", transport, "detail", b.Detail)
		}
		return b.Status, b.Detail, b
	default:
		return http.StatusAccepted, "", b
	}
}

// notFromProducers refuses the event types a producer may not send here,
// by the ledger's rule of who may send which type (ledger.MaySend): notices,
// their delivery records and forgettings are sharelog's own, and an ack must
// come from its recipient (POST /v1/recipients/{id}/acks, signed, or NATS
// subject sharelog.in.ack.<recipient>), which this endpoint does not vouch
// for.
func notFromProducers(ev *ledger.Event) error {
	if ie := ledger.MaySend(ev.Type, ledger.Sender{}); ie != nil {
		return ie
	}
	return nil
}

// checkRecipient refuses a disclosure to an unregistered recipient, allowing
// for recipients registered earlier in the same request and, after a
// read-your-writes barrier, recipients published just before it.
func (s *Server) checkRecipient(ctx context.Context, ev *ledger.Event, registered map[string]bool) error {
	switch d := ev.Data.(type) {
	case *ledger.Recipient:
		registered[d.ID] = true
	case *ledger.Disclosure:
		if err := s.checkRegistered(ctx, d.Recipient, registered, "data.recipient", "recipient %q is not registered"); err != nil {
			return err
		}
		if d.ReceivedFrom != "" {
			return s.checkRegistered(ctx, d.ReceivedFrom, registered, "data.receivedFrom",
				"receivedFrom %q is not registered: DPA 2018 s.48(7) names the competent authority the data came from, by its registry id")
		}
	}
	return nil
}

// checkRegistered refuses a recipient id that is not registered (see
// checkRecipient); format names it in the problem.
func (s *Server) checkRegistered(ctx context.Context, id string, registered map[string]bool, field, format string) error {
	if registered[id] {
		return nil
	}
	_, err := s.Ledger.Recipient(ctx, id)
	if ledger.ErrorCode(err) == ledger.ENOTFOUND && s.CatchUp != nil {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if s.CatchUp(cctx) == nil {
			_, err = s.Ledger.Recipient(ctx, id)
		}
		cancel()
	}
	if ledger.ErrorCode(err) == ledger.ENOTFOUND {
		return ledger.Invalid(ledger.ReasonUnknownRecipient, field, format, id)
	}
	if err != nil {
		return err
	}
	registered[id] = true
	return nil
}

// outcomes waits (bounded) until the ledger has applied the published events
// and says what became of each.
func (s *Server) outcomes(ctx context.Context, events []*ledger.Event, acks []nats.Ack) []AcceptedEvent {
	var maxSeq uint64
	for _, a := range acks {
		maxSeq = max(maxSeq, a.Seq)
	}
	wctx, cancel := context.WithTimeout(ctx, s.ApplyWait)
	defer cancel()
	applied := s.Ledger.WaitApplied(wctx, maxSeq) == nil
	out := make([]AcceptedEvent, len(events))
	for i, ev := range events {
		out[i] = AcceptedEvent{Source: ev.Source, ID: ev.ID, Outcome: OutcomePending, StreamSeq: acks[i].Seq}
		if !applied {
			continue
		}
		e, err := s.Ledger.Lookup(ctx, ev.Source, ev.ID)
		switch {
		case err != nil:
			out[i].Outcome = OutcomeRejected
		case e.StreamSeq == acks[i].Seq && !acks[i].Duplicate:
			out[i].Outcome, out[i].Seq = OutcomeRecorded, e.Seq
		default:
			out[i].Outcome, out[i].Seq = OutcomeDuplicate, e.Seq
			if s.CheckReplay != nil && s.CheckReplay(ctx, ev) != nil {
				// Recorded meanwhile with other content: the ingest refused
				// this one as a conflict (SHARELOG_REJECTED).
				out[i].Outcome = OutcomeRejected
			}
		}
	}
	return out
}

func (s *Server) countRejected(err error) { s.countRejectedOn(err, "http") }

// countRejectedOn counts a refusal in sharelog_rejected_total, labelled
// with the transport it came by.
func (s *Server) countRejectedOn(err error, transport string) {
	var ie *ledger.InvalidError
	reason := string(ledger.ReasonMalformed)
	if errors.As(err, &ie) {
		reason = string(ie.Reason())
	} else if ledger.ErrorCode(err) == ledger.ETOOLARGE {
		reason = string(ledger.ReasonOversize)
	} else if ledger.ErrorCode(err) == ledger.EFORBIDDEN {
		reason = string(reasonForbidden)
	}
	s.Metrics.Rejected.WithLabelValues(reason, transport).Inc()
}

func problemsOf(err error) []ledger.Problem {
	var ie *ledger.InvalidError
	if errors.As(err, &ie) {
		return ie.Problems
	}
	if ledger.ErrorCode(err) == ledger.EFORBIDDEN {
		return []ledger.Problem{{Reason: reasonForbidden, Detail: ledger.ErrorMessage(err)}}
	}
	return []ledger.Problem{{Reason: ledger.ReasonMalformed, Detail: ledger.ErrorMessage(err)}}
}

// maxQueryBody bounds the JSON body of query requests.
const maxQueryBody = 64 << 10

// decodeBody strictly decodes a small JSON request body into v.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxQueryBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return ledger.Errorf(ledger.EINVALID, "request body: %s", jsonError(err))
	}
	return nil
}

// jsonError describes a JSON decoding error without echoing input values.
func jsonError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, os.ErrDeadlineExceeded): // Limits.ReadTimeout
		return "the request body did not arrive in the time allowed"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "not valid JSON"
}

// queryParams returns r's query parameters, refusing any not in allowed. A
// "subject" parameter gets its own answer naming post, the endpoint to POST
// it to instead: data-subject identifiers never go in URLs.
func queryParams(r *http.Request, post string, allowed ...string) (url.Values, error) {
	q := r.URL.Query()
	for k := range q {
		switch {
		case slices.Contains(allowed, k):
		case k == "subject":
			return nil, ledger.Errorf(ledger.EINVALID, "a data subject never goes in a URL: POST it in the body of %s", cmp.Or(post, "an endpoint that takes one (see /v1/openapi.yaml)"))
		default:
			return nil, ledger.Errorf(ledger.EINVALID, "unknown query parameter %q", k)
		}
	}
	return q, nil
}

// parseLimit parses a listing's limit parameter; "" means the default (0).
func parseLimit(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > ledger.MaxLimit {
		return 0, ledger.Errorf(ledger.EINVALID, "limit must be between 1 and %d", ledger.MaxLimit)
	}
	return n, nil
}

// SubjectRequest is the body of the endpoints that ask about one data
// subject (POST /v1/who, POST /v1/reports/subject): identifiers travel in
// request bodies, never in URLs.
type SubjectRequest struct {
	Subject ledger.Subject `json:"subject"`
}

// subjectHandler serves a POST whose body names a data subject with the
// answer of query for that subject.
func subjectHandler[T any](s *Server, query func(context.Context, ledger.Subject) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req SubjectRequest
		if err := decodeBody(r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		if req.Subject.Scheme == "" || req.Subject.ID == "" {
			s.fail(w, r, ledger.Errorf(ledger.EINVALID, "subject.scheme and subject.id are required"))
			return
		}
		if !s.consult(w, r, &req.Subject, "") {
			return
		}
		answer, err := query(r.Context(), req.Subject)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, answer)
	}
}

func (s *Server) handleDisclosures(w http.ResponseWriter, r *http.Request) {
	q, err := queryParams(r, "/v1/disclosures/search", "recipient", "since", "until", "after", "limit")
	var f ledger.DisclosureFilter
	if err == nil {
		f.Recipient, f.After = q.Get("recipient"), q.Get("after")
		f.Since, err = parseTime("since", q.Get("since"))
	}
	if err == nil {
		f.Until, err = parseTime("until", q.Get("until"))
	}
	if err == nil {
		f.Limit, err = parseLimit(q.Get("limit"))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.listDisclosures(w, r, f)
}

func (s *Server) handleDisclosureSearch(w http.ResponseWriter, r *http.Request) {
	var f ledger.DisclosureFilter
	if err := decodeBody(r, &f); err != nil {
		s.fail(w, r, err)
		return
	}
	s.listDisclosures(w, r, f)
}

func (s *Server) listDisclosures(w http.ResponseWriter, r *http.Request, f ledger.DisclosureFilter) {
	if f.Limit < 0 || f.Limit > ledger.MaxLimit {
		s.fail(w, r, ledger.Errorf(ledger.EINVALID, "limit must be between 1 and %d", ledger.MaxLimit))
		return
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		s.fail(w, r, ledger.Errorf(ledger.EINVALID, "until must be after since"))
		return
	}
	if !s.consult(w, r, f.Subject, disclosureQuery(f)) {
		return
	}
	page, err := s.Ledger.Disclosures(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, ledger.Errorf(ledger.EINVALID, "%s must be an RFC 3339 time such as 2026-01-31T00:00:00Z", name)
	}
	return t, nil
}

func (s *Server) handleDisclosure(w http.ResponseWriter, r *http.Request) {
	id, source := r.PathValue("id"), r.URL.Query().Get("source")
	query := url.Values{"id": {id}}
	if source != "" {
		query.Set("source", source)
	}
	if !s.consult(w, r, nil, query.Encode()) {
		return
	}
	d, err := s.Ledger.Disclosure(r.Context(), id, source)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// RecipientList is the body of GET /v1/recipients.
type RecipientList struct {
	Recipients []ledger.Recipient `json:"recipients"`
}

func (s *Server) handleRecipients(w http.ResponseWriter, r *http.Request) {
	rs, err := s.Ledger.Recipients(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if rs == nil {
		rs = []ledger.Recipient{}
	}
	writeJSON(w, http.StatusOK, RecipientList{Recipients: rs})
}

func (s *Server) handleRecipient(w http.ResponseWriter, r *http.Request) {
	if !s.mayFor(w, r, r.PathValue("id")) {
		return
	}
	rec, err := s.Ledger.Recipient(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(s.OpenAPI)
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			writeProblem(w, newProblem(http.StatusServiceUnavailable, ledger.EUNAVAILABLE, err.Error()))
			return
		}
	}
	io.WriteString(w, "ready\n")
	if s.Role != nil {
		if role := s.Role(); role != "" {
			io.WriteString(w, role+"\n")
		}
	}
	if s.ReadyDetail != nil {
		for _, d := range s.ReadyDetail() {
			io.WriteString(w, d+"\n")
		}
	}
}
