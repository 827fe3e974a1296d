package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/ledger"
)

// The NATS service for producers who want an answer: a request on
// SubjectService carries one event (structured or binary mode, as on
// sharelog.in.>) or a batch (Content-Type application/cloudevents-batch+json),
// and the reply is what POST /v1/events answers.
const (
	// ServiceName is the name `nats micro ls` lists the service under.
	ServiceName = "sharelog"
	// ServiceVersion is the version of the service's request and reply
	// format (the same as POST /v1/events).
	ServiceVersion = "1.0.0"
	// SubjectService is the subject of the service's endpoint events. With
	// an access file, a producer asks on SubjectService.<source token>
	// instead (endpoint events-by-source): the service cannot see who sent a
	// request, so the subject, which only the source's owner may publish on,
	// says it.
	SubjectService = "sharelog.api.events"
	// TransportService labels the service's refusals in
	// sharelog_rejected_total.
	TransportService = "nats-service"
)

// Answerer answers a request of decoded events as POST /v1/events does
// (internal/http Server.Answer): decoded, or err, a request-level failure,
// are refused or published to SHARELOG_IN on subject. It returns the HTTP
// status, a one-line detail for a refusal without personal data, and the
// body to send as JSON.
type Answerer func(ctx context.Context, subject, transport string, decoded []cloudevents.Decoded, err error) (status int, detail string, body any)

// Service is the NATS micro service of sharelog (nats.go's micro package,
// so `nats micro ls` and `nats micro info sharelog` show it).
//
// A reply to a request that is accepted has the JSON body of a 202 from
// POST /v1/events ({"accepted":[{"source","id","outcome","seq"}]}) and
// Content-Type application/json. A refused request gets a micro error
// reply: the Nats-Service-Error-Code header holds the HTTP status the API
// would give (400, 413, 415, 503), Nats-Service-Error the problem's detail,
// and the body the problem details (application/problem+json), listing
// every problem of every refused event. A request is refused or stored
// whole, as a POST is.
type Service struct {
	nc      *natsio.Conn
	decoder *cloudevents.Decoder
	answer  Answerer
	log     *slog.Logger
	// Timeout bounds the handling of one request (default 30s).
	Timeout time.Duration
	// Concurrency bounds the requests handled at once (default 64); more
	// wait for a slot.
	Concurrency int
	// Access, when set, makes the service take events only on
	// SubjectService.<source token>, from that source's owner, as far as
	// its roles allow (bySource); nil takes them on either subject.
	Access *access.Control
}

// NewService returns a Service; Run starts it.
func NewService(nc *natsio.Conn, dec *cloudevents.Decoder, answer Answerer, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{nc: nc, decoder: dec, answer: answer, log: logger.With("system", "service"), Timeout: 30 * time.Second, Concurrency: 64}
}

// Run serves requests until ctx is done, then stops the service, waits
// for the requests being handled and returns nil. It returns an error if
// the service cannot be added or stops on its own (the connection closed).
func (s *Service) Run(ctx context.Context) error {
	stopped := make(chan struct{})
	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        ServiceName,
		Version:     ServiceVersion,
		Description: "sharelog: validates CloudEvents, stores them in SHARELOG_IN and answers as POST /v1/events does",
		DoneHandler: func(micro.Service) { close(stopped) },
		ErrorHandler: func(_ micro.Service, err *micro.NATSError) {
			s.log.Warn("service", "subject", err.Subject, "err", err.Description)
		},
	})
	if err != nil {
		return fmt.Errorf("nats service: %w", err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		closed bool // no more requests are started: Run waits for wg
	)
	slots := make(chan struct{}, max(s.Concurrency, 1))
	shuttingDown := func(req micro.Request) {
		_ = req.Error(strconv.Itoa(http.StatusServiceUnavailable), "sharelog is shutting down", nil)
	}
	handler := micro.HandlerFunc(func(req micro.Request) {
		// Handlers run on the subscription's goroutine: handle each
		// request on its own, so that one waiting for its outcome does
		// not hold up the next.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			shuttingDown(req)
			return
		}
		mu.Lock()
		if closed {
			mu.Unlock()
			<-slots
			shuttingDown(req)
			return
		}
		wg.Add(1)
		mu.Unlock()
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			rctx, cancel := context.WithTimeout(ctx, s.Timeout)
			defer cancel()
			s.handle(rctx, req)
		}()
	})
	err = svc.AddEndpoint("events", handler, micro.WithEndpointSubject(SubjectService),
		micro.WithEndpointMetadata(map[string]string{
			"content-types": cloudevents.MediaTypeStructured + ", " + cloudevents.MediaTypeBatch + ", binary mode (ce-* headers)",
			"stores-on":     SubjectInService,
		}))
	if err == nil {
		err = svc.AddEndpoint("events-by-source", handler, micro.WithEndpointSubject(SubjectService+".*"),
			micro.WithEndpointMetadata(map[string]string{"stores-on": SubjectInService}))
	}
	if err != nil {
		_ = svc.Stop()
		return fmt.Errorf("nats service: %w", err)
	}
	wait := func() {
		mu.Lock()
		closed = true
		mu.Unlock()
		wg.Wait()
	}
	select {
	case <-ctx.Done():
		err = svc.Stop()
		wait()
		return err
	case <-stopped:
		wait()
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("nats service stopped: the connection closed")
	}
}

// handle answers one request.
func (s *Service) handle(ctx context.Context, req micro.Request) {
	header := map[string][]string(req.Headers())
	var decoded []cloudevents.Decoded
	var err error
	if ct := headerValue(header, "Content-Type"); mediaTypeOf(ct) == cloudevents.MediaTypeBatch {
		decoded, err = s.decoder.DecodeBatch(req.Data())
	} else {
		d := s.decoder.DecodeNATS(header, req.Data())
		if ie, ok := errors.AsType[*ledger.InvalidError](d.Err); ok && ie.Reason() == ledger.ReasonContentType && ie.Problems[0].Field == "Content-Type" {
			// The request's content type, not the event: 415, as the API.
			err = d.Err
		}
		decoded = []cloudevents.Decoded{d}
	}
	if err == nil {
		ctx, err = s.bySource(ctx, req.Subject(), decoded)
	}
	status, detail, body := s.answer(ctx, SubjectInService, TransportService, decoded, err)
	b, jerr := json.Marshal(body)
	if jerr != nil {
		s.log.Error("service reply", "err", jerr)
		_ = s.reply(req, nil, natsio.Header{micro.ErrorCodeHeader: {strconv.Itoa(http.StatusInternalServerError)}, micro.ErrorHeader: {"reply cannot be encoded"}})
		return
	}
	h := natsio.Header{"Content-Type": {"application/json"}}
	if status/100 != 2 {
		h = natsio.Header{"Content-Type": {"application/problem+json"},
			micro.ErrorCodeHeader: {strconv.Itoa(status)}, micro.ErrorHeader: {headerSafe(detail)}}
	}
	if err := s.reply(req, b, h); err != nil {
		s.log.Warn("service reply", "err", err)
	}
}

// reply answers req, from the goroutine handling it, with data and the
// headers h (micro's error headers for a refusal). micro's Request.Respond
// and Error also note the outcome in the request for the endpoint's stats,
// which micro reads as soon as the handler returns; the handler hands each
// request to a goroutine of its own and returns at once, so answering
// through them raced with that read (seen by the race detector). The answer
// is published on the reply subject directly instead: the endpoint's
// request count stays right, its error count does not include refusals.
func (s *Service) reply(req micro.Request, data []byte, h natsio.Header) error {
	if req.Reply() == "" {
		return errors.New("request without a reply subject")
	}
	return s.nc.PublishMsg(&natsio.Msg{Subject: req.Reply(), Data: data, Header: h})
}

// headerValue returns the first value of the header named name in any
// case, or "".
func headerValue(h map[string][]string, name string) string {
	if v := natsio.Header(h).Get(name); v != "" {
		return v
	}
	for k, vs := range h {
		if len(vs) > 0 && http.CanonicalHeaderKey(k) == http.CanonicalHeaderKey(name) {
			return vs[0]
		}
	}
	return ""
}

// mediaTypeOf returns the media type of a Content-Type value, lowercased.
func mediaTypeOf(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}

// bySource checks who may send a request on subject: on
// SubjectService.<token>, every event must have the source whose token that
// is and, with an access file, its owner must be allowed to publish it
// (ledger.MayPublish), and ctx is returned carrying the owner as the
// request's principal; on SubjectService itself, only without an access
// file. A refusal is an EFORBIDDEN error, answered 403 for the whole
// request.
func (s *Service) bySource(ctx context.Context, subject string, decoded []cloudevents.Decoded) (context.Context, error) {
	token, ok := strings.CutPrefix(subject, SubjectService+".")
	if !ok {
		if s.Access != nil {
			return ctx, ledger.Forbidden("with an access file, events are taken on %s.<source token> only, from the source's owner", SubjectService)
		}
		return ctx, nil
	}
	var owner *ledger.Principal
	for _, d := range decoded {
		if d.Err != nil {
			continue // refused for what it is; Answer says why
		}
		ev := d.Event
		if SourceToken(ev.Source) != token {
			return ctx, ledger.Forbidden("an event's source is not the one subject %s is for", subject)
		}
		if s.Access == nil {
			continue
		}
		if owner = s.Access.SourceOwner(ev.Source); owner == nil {
			return ctx, ledger.Forbidden("no principal of the access file publishes from the source of subject %s", subject)
		}
		if err := ledger.MayPublish(owner, ev.Type, ev.Source, ""); err != nil {
			return ctx, err
		}
	}
	if owner != nil {
		ctx = access.WithPrincipal(ctx, owner)
	}
	return ctx, nil
}
