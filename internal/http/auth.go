package http

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/console"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/schemas"
)

// Access to the API (DESIGN.md, "Access"). Who may call each operation is
// declared once, beside the operation, in schemas/openapi.yaml:
// x-sharelog-roles lists the roles, x-sharelog-personal marks an operation
// that reads a person's data, and `security: []` marks a public one. The
// server builds its table from the embedded document; a route the document
// does not declare is refused to every principal (fail closed).

// Operation is one API operation as schemas/openapi.yaml declares it.
type Operation struct {
	// ID is the operationId.
	ID string
	// Roles may call the operation (x-sharelog-roles).
	Roles []ledger.Role
	// Personal marks an operation that reads a person's data
	// (x-sharelog-personal): it takes a reason and is recorded in the
	// consultation log before it is answered.
	Personal bool
	// Public operations (security: []) need no credential.
	Public bool
	// Applied marks a read that takes the Sharelog-Applied header
	// (applied.go): it declares the parameter components/parameters/Applied.
	Applied bool
}

// Operations returns the operations of the OpenAPI document doc by route
// pattern as the server's mux spells it ("POST /v1/who"). It refuses an
// operation that is neither public nor lists roles, and an unknown role.
func Operations(doc []byte) (map[string]Operation, error) {
	var d struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	ops := map[string]Operation{}
	for path, methods := range d.Paths {
		for method, node := range methods {
			m := strings.ToUpper(method)
			if m != http.MethodGet && m != http.MethodPost {
				continue // parameters, summary
			}
			var o struct {
				OperationID string        `yaml:"operationId"`
				Roles       []ledger.Role `yaml:"x-sharelog-roles"`
				Personal    bool          `yaml:"x-sharelog-personal"`
				Security    *[]yaml.Node  `yaml:"security"`
				Parameters  []struct {
					Ref string `yaml:"$ref"`
				} `yaml:"parameters"`
			}
			if err := node.Decode(&o); err != nil {
				return nil, fmt.Errorf("openapi: %s %s: %w", m, path, err)
			}
			op := Operation{ID: o.OperationID, Roles: o.Roles, Personal: o.Personal,
				Public: o.Security != nil && len(*o.Security) == 0}
			for _, p := range o.Parameters {
				op.Applied = op.Applied || p.Ref == appliedParameter
			}
			switch {
			case op.ID == "":
				return nil, fmt.Errorf("openapi: %s %s has no operationId", m, path)
			case op.Public && (len(op.Roles) > 0 || op.Personal):
				return nil, fmt.Errorf("openapi: %s is public (security: []) but declares roles or personal data", op.ID)
			case !op.Public && len(op.Roles) == 0:
				return nil, fmt.Errorf("openapi: %s declares no roles (x-sharelog-roles) and is not public (security: [])", op.ID)
			}
			for _, r := range op.Roles {
				if !ledger.ValidRole(r) {
					return nil, fmt.Errorf("openapi: %s: unknown role %q in x-sharelog-roles", op.ID, r)
				}
			}
			ops[m+" "+path] = op
		}
	}
	return ops, nil
}

// operations is the table of the embedded schemas/openapi.yaml, read once.
// The document is part of the binary and a test reads it, so an error here
// is a bug in the build, not an input.
var operations = sync.OnceValue(func() map[string]Operation {
	doc, err := schemas.FS.ReadFile("openapi.yaml")
	if err == nil {
		var ops map[string]Operation
		if ops, err = Operations(doc); err == nil {
			return ops
		}
	}
	panic(fmt.Sprintf("embedded openapi.yaml: %v", err))
})

// maxReason bounds the Sharelog-Reason header.
const maxReason = 500

type operationKey struct{}

// operationOf returns the operation the request is for, as authorize found it.
func operationOf(ctx context.Context) Operation {
	op, _ := ctx.Value(operationKey{}).(Operation)
	return op
}

// authorize finds each request's operation in the table and, with Access
// set, authenticates its principal (401 without a valid credential),
// checks the operation's roles (403), and requires a reason for an
// operation that reads a person's data (400). It passes the principal and
// the operation on in the request's context. Unrouted requests pass through
// to the mux's 404 and 405.
//
// A lookup (an operation marked personal) over its principal's rate, or its
// remote address's without a valid credential, is answered 429 first, so
// that a refused lookup is never recorded as a consultation (lookups nil:
// no limit).
func (s *Server) authorize(mux *http.ServeMux, lookups *lookupLimiter) http.Handler {
	ops := operations()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		if pattern == "" || pattern == "/" || pattern == console.Prefix {
			// The web console signs its people in itself (a session
			// cookie, not a bearer token) and allows each page by the
			// roles of the operation it stands for (package console).
			mux.ServeHTTP(w, r)
			return
		}
		op, declared := ops[pattern]
		if !declared && s.Access != nil {
			s.Logger.Error("route has no operation in openapi.yaml; refused", "route", pattern)
			s.fail(w, r, ledger.Forbidden("route %s declares no roles in openapi.yaml, so no principal may call it", pattern))
			return
		}
		ctx := context.WithValue(r.Context(), operationKey{}, op)
		var p *ledger.Principal
		var err error
		if s.Access != nil && !op.Public {
			p, err = s.authenticate(r)
		}
		if op.Personal && lookups != nil {
			if wait := lookups.allow(r, p); wait > 0 {
				lookups.tooMany(w, wait)
				return
			}
		}
		if s.Access != nil && !op.Public {
			if err == nil {
				err = ledger.MayRead(p, op.ID, op.Roles, "")
			}
			if err == nil && op.Personal {
				err = checkReason(r.Header.Get(HeaderReason))
			}
			if err != nil {
				s.refuse(w, r, op, p, err)
				return
			}
			ctx = access.WithPrincipal(ctx, p)
		}
		r2 := r.WithContext(ctx)
		if !s.waitApplied(w, r2, op) {
			return
		}
		mux.ServeHTTP(w, r2)
		r.Pattern = r2.Pattern // for observe's logs and metrics
	})
}

// checkReason refuses a missing, blank or overlong Sharelog-Reason.
func checkReason(reason string) error {
	switch reason = strings.TrimSpace(reason); {
	case reason == "":
		return ledger.Errorf(ledger.EINVALID, "this request reads a person's data: give the reason in the %s header (CLI --reason or SHARELOG_REASON); it is recorded in the consultation log (DPA 2018 s.62)", HeaderReason)
	case len(reason) > maxReason:
		return ledger.Errorf(ledger.EINVALID, "the %s header is over %d bytes", HeaderReason, maxReason)
	}
	return nil
}

// authenticate returns the principal of r's credential: a bearer token
// (Authorization: Bearer), else the common name of a verified client
// certificate under mutual TLS. Only a chain the TLS handshake verified
// counts; a presented but unverified certificate names no one. It returns
// EUNAUTHENTICATED when there is no valid credential.
func (s *Server) authenticate(r *http.Request) (*ledger.Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return nil, ledger.Errorf(ledger.EUNAUTHENTICATED, "the Authorization header must be Bearer <token>")
		}
		p := s.Access.Token(strings.TrimSpace(token))
		if p == nil {
			return nil, ledger.Errorf(ledger.EUNAUTHENTICATED, "the bearer token is not in the access file")
		}
		return p, nil
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
		if p := s.Access.Certificate(cn); p != nil {
			return p, nil
		}
		return nil, ledger.Errorf(ledger.EUNAUTHENTICATED, "the client certificate names no principal of the access file")
	}
	return nil, ledger.Errorf(ledger.EUNAUTHENTICATED, "a credential is required: Authorization: Bearer <token> (sharelog token makes one; CLI --token or SHARELOG_TOKEN)")
}

// refuse answers an authentication or authorisation failure of op by p
// (nil when unknown): 401 with WWW-Authenticate, 403, or 400 for a missing
// reason. Each refusal is logged with the operation and the principal, so
// that probing shows in the logs; never with the credential.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, op Operation, p *ledger.Principal, err error) {
	code := ledger.ErrorCode(err)
	if code == ledger.EUNAUTHENTICATED {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sharelog"`)
	}
	principal := ""
	if p != nil {
		principal = p.Name
	}
	s.Logger.Info("request refused", "operation", op.ID, "code", code, "principal", principal)
	s.fail(w, r, err)
}

// mayFor refuses, with a 403 answered, a principal whose only claim to the
// request's operation is RoleRecipient when recipient is not its own
// (ledger.MayRead). Without Access it allows everything.
func (s *Server) mayFor(w http.ResponseWriter, r *http.Request, recipient string) bool {
	if s.Access == nil {
		return true
	}
	op, p := operationOf(r.Context()), access.From(r.Context())
	if err := ledger.MayRead(p, op.ID, op.Roles, recipient); err != nil {
		s.refuse(w, r, op, p, err)
		return false
	}
	return true
}

// Anonymous is the principal the consultation log names when access is off.
const Anonymous = "anonymous"

// consult records, before the request is answered, that it reads a person's
// data (DPA 2018 s.62): subj is the person when the query is by person, and
// query the other filters, without identifiers. It returns false, having
// answered 503, when the consultation cannot be recorded: the request is
// then not answered (fail closed). Without Access and without Consult it
// records nothing.
func (s *Server) consult(w http.ResponseWriter, r *http.Request, subj *ledger.Subject, query string) bool {
	ctx := r.Context()
	if s.Consult == nil {
		if s.Access == nil {
			return true
		}
		s.fail(w, r, ledger.Errorf(ledger.EUNAVAILABLE, "the consultation log is not running: a lookup of a person is answered only once it is recorded (DPA 2018 s.62)"))
		return false
	}
	c := ledger.Consultation{
		Principal: Anonymous,
		Operation: operationOf(ctx).ID,
		Reason:    strings.TrimSpace(r.Header.Get(HeaderReason)),
		Subject:   subj,
		Query:     query,
	}
	if p := access.From(ctx); p != nil {
		c.Principal = p.Name
	}
	if err := s.Consult(ctx, c); err != nil {
		s.Logger.Error("consultation not recorded; lookup refused", "route", r.Pattern, "operation", c.Operation, "err", err)
		writeProblem(w, newProblem(http.StatusServiceUnavailable, ledger.EUNAVAILABLE,
			"the consultation could not be recorded, so the lookup is not answered (DPA 2018 s.62); try again"))
		return false
	}
	return true
}

// pageValues are the query parameters of a paged filter: one named filter
// (recipient, principal), the period, the page's cursor and size; empty
// ones left out. The client sends them and the consultation log records them.
func pageValues(name, value string, since, until time.Time, after string, limit int) url.Values {
	q := url.Values{}
	if value != "" {
		q.Set(name, value)
	}
	if !since.IsZero() {
		q.Set("since", since.Format(time.RFC3339Nano))
	}
	if !until.IsZero() {
		q.Set("until", until.Format(time.RFC3339Nano))
	}
	if after != "" {
		q.Set("after", after)
	}
	if limit != 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	return q
}

// disclosureQuery describes a disclosure filter for the consultation log,
// without its subject.
func disclosureQuery(f ledger.DisclosureFilter) string {
	return pageValues("recipient", f.Recipient, f.Since, f.Until, f.After, f.Limit).Encode()
}

// reasonForbidden is the problem reason of an event the principal may not
// publish (ledger.MayPublish).
const reasonForbidden ledger.Reason = "forbidden"

// mayPublish refuses an event the request's principal may not publish; with
// no principal (access off, or a transport that authorises by other means)
// it allows it.
func mayPublish(ctx context.Context, ev *ledger.Event) error {
	p := access.From(ctx)
	if p == nil {
		return nil
	}
	return ledger.MayPublish(p, ev.Type, ev.Source, "")
}

// isForbidden reports whether any refused event was refused for its principal.
func isForbidden(refused []EventProblems) bool {
	return slices.ContainsFunc(refused, func(e EventProblems) bool {
		return slices.ContainsFunc(e.Problems, func(p ledger.Problem) bool { return p.Reason == reasonForbidden })
	})
}
