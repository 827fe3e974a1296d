package http

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/console"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// console returns the web console (package console), mounted at /ui/: it
// reads through the same Ledger, Notices and Tree as the API, records
// lookups through Consult, and publishes decisions through the path of
// POST /v1/events (consolePublish).
func (s *Server) console(lookups *lookupLimiter) http.Handler {
	cfg := console.Config{Ledger: s.Ledger, Access: s.Access, Publish: s.consolePublish, OIDC: s.ConsoleOIDC, Logger: s.Logger,
		Roles: operationRoles}
	if s.Consult != nil {
		// The same log, the same fail-closed rule and the same lookup
		// limit as the API's lookups.
		cfg.Consult = lookups.consult(s.Consult)
	}
	if s.Notices != nil {
		cfg.Notices = s.Notices
	}
	if s.Tree != nil {
		cfg.Tree = s.Tree
	}
	if log, ok := s.Ledger.(ConsultationLog); ok {
		cfg.Consultations = log
	}
	c, err := console.New(cfg)
	if err != nil {
		// The templates are embedded: a parse error is a bug caught by the tests.
		panic(err)
	}
	return c
}

// consolePublish publishes one structured CloudEvent the console built, as
// POST /v1/events publishes a request's events (submit), and returns the
// event's outcome or an error naming why it was refused.
func (s *Server) consolePublish(ctx context.Context, body []byte) (string, error) {
	ev, err := s.Decoder.DecodeStructured(body)
	if err != nil {
		return "", err
	}
	decoded := []cloudevents.Decoded{{Event: ev, Source: ev.Source, ID: ev.ID}}
	switch b := s.submit(ctx, nats.SubjectInHTTP, "console", decoded).(type) {
	case *Problem:
		if b.Status >= 500 {
			s.Logger.Error("console publish failed", "detail", b.Detail)
		}
		var details []string
		for _, ep := range b.Events {
			for _, p := range ep.Problems {
				details = append(details, p.Detail)
			}
		}
		if len(details) == 0 {
			details = []string{b.Detail}
		}
		return "", ledger.Errorf(b.Code, "%s", strings.Join(details, "; "))
	case Accepted:
		if len(b.Accepted) != 1 {
			return "", errors.New("console publish: no outcome")
		}
		if o := b.Accepted[0].Outcome; o != OutcomeRejected {
			return o, nil
		}
		return "", ledger.Errorf(ledger.ECONFLICT, "the ledger's rules refused it when it was applied (its reason is in SHARELOG_REJECTED)")
	default:
		return "", errors.New("console publish: unexpected answer")
	}
}

// operationRoles returns the roles schemas/openapi.yaml declares for the
// operation id, so that each console page is allowed to the roles of the
// API operation it stands for; nil for an id the document lacks.
func operationRoles(id string) []ledger.Role {
	for _, op := range operations() {
		if op.ID == id {
			return op.Roles
		}
	}
	return nil
}
