package ledger

import (
	"fmt"
	"slices"
	"strings"
)

// Access rules: who may do what. The principals and their roles come from
// the --access file (internal/access); which role may send which event type
// from which source is decided here, once, for HTTP and NATS alike. Which
// role may call which HTTP operation is declared beside each operation in
// schemas/openapi.yaml (x-sharelog-roles).
//
// The law behind them: UK GDPR Art. 5(1)(f) and 32 (security of processing:
// only those who need the data see it), DPA 2018 s.62 (every consultation
// of a person's data logged with who and why), and Art. 19 / s.48 (notices
// are told to each recipient, so a recipient sees and acknowledges only its
// own).

// Role is what a principal may do (DESIGN.md, "Access").
type Role string

// The roles.
const (
	// RoleProducer publishes disclosures and requests from its own sources.
	RoleProducer Role = "producer"
	// RoleDPO may make every query and read the consultation log, and
	// publish requests, exemptions, holds and the answer's clock events.
	RoleDPO Role = "dpo"
	// RoleAdmin publishes and reads the recipient registry; no personal data.
	RoleAdmin Role = "admin"
	// RoleClerk works the manual queue and marks notices sent.
	RoleClerk Role = "clerk"
	// RoleAuditor reads checkpoints, proofs, metrics and aggregate counts;
	// no personal data.
	RoleAuditor Role = "auditor"
	// RoleRecipient reads and acknowledges its own notices only.
	RoleRecipient Role = "recipient"
)

// AllRoles lists every role, in the order DESIGN.md documents them.
var AllRoles = []Role{RoleProducer, RoleDPO, RoleAdmin, RoleClerk, RoleAuditor, RoleRecipient}

// ValidRole reports whether r is one of AllRoles.
func ValidRole(r Role) bool { return slices.Contains(AllRoles, r) }

// Principal is who is asking: a name from the access file (shown in the
// consultation log), its roles, the CloudEvent sources it may publish as,
// and for a recipient the registry id it answers for.
type Principal struct {
	Name      string
	Roles     []Role
	Sources   []string
	Recipient string
}

// Has reports whether p holds role r.
func (p *Principal) Has(r Role) bool { return p != nil && slices.Contains(p.Roles, r) }

// HasAny reports whether p holds any of roles.
func (p *Principal) HasAny(roles []Role) bool {
	for _, r := range roles {
		if p.Has(r) {
			return true
		}
	}
	return false
}

// PublishRoles says which roles may publish each event type. A type not in
// the table (notices, deliveries, forgettings: sharelog's own) may be
// published by no principal; sharelog records them itself on
// sharelog.in.notify.
var PublishRoles = map[string][]Role{
	TypeDisclosure:        {RoleProducer},
	TypeRectification:     {RoleProducer, RoleDPO},
	TypeErasure:           {RoleProducer, RoleDPO},
	TypeRestriction:       {RoleProducer, RoleDPO},
	TypeRestrictionLifted: {RoleProducer, RoleDPO},
	TypeExemption:         {RoleDPO},
	TypeHold:              {RoleDPO},
	TypeHoldReleased:      {RoleDPO},
	TypeExtension:         {RoleDPO},
	TypeRequestPaused:     {RoleDPO},
	TypeRequestResumed:    {RoleDPO},
	TypeRecipient:         {RoleAdmin},
	TypeNoticeAck:         {RoleRecipient},
}

// Forbidden returns an *Error with code EFORBIDDEN. Its message names the
// principal and the rule, never a person.
func Forbidden(format string, args ...any) *Error { return Errorf(EFORBIDDEN, format, args...) }

// MayPublish decides whether p may publish an event of type typ with
// CloudEvents source source; for an acknowledgement, recipient is the
// recipient it is for (the notice's, as the transport names it). It returns
// nil or an EFORBIDDEN *Error naming the rule.
//
// A principal that lists sources may publish only as one of them; a
// producer must list at least one (the access file's loader refuses one
// without). A recipient acknowledges only as itself.
func MayPublish(p *Principal, typ, source, recipient string) error {
	if p == nil {
		return Errorf(EUNAUTHENTICATED, "no principal: a credential is required to publish")
	}
	roles, ok := PublishRoles[typ]
	if !ok {
		return Forbidden("%s events are recorded only by sharelog itself; no principal may publish them", typ)
	}
	if !p.HasAny(roles) {
		return Forbidden("principal %q (roles %s) may not publish %s; that takes role %s",
			p.Name, joinRoles(p.Roles), typ, joinRoles(roles))
	}
	if len(p.Sources) > 0 && !slices.Contains(p.Sources, source) {
		return Forbidden("principal %q may publish only from its sources (%s), not from source %q",
			p.Name, strings.Join(p.Sources, ", "), source)
	}
	if typ == TypeNoticeAck && (p.Recipient == "" || p.Recipient != recipient) {
		return Forbidden("principal %q answers for recipient %q and may acknowledge only that recipient's notices, not %q's",
			p.Name, p.Recipient, recipient)
	}
	return nil
}

// MayRead decides whether p may call an operation that the API declares for
// roles; recipient is the recipient the operation is about ("" when none):
// a principal whose only reason to be allowed is RoleRecipient may read
// only its own. It returns nil, EUNAUTHENTICATED or EFORBIDDEN.
func MayRead(p *Principal, operation string, roles []Role, recipient string) error {
	if p == nil {
		return Errorf(EUNAUTHENTICATED, "a credential is required for %s", operation)
	}
	if !p.HasAny(roles) {
		return Forbidden("principal %q (roles %s) may not call %s; that takes role %s",
			p.Name, joinRoles(p.Roles), operation, joinRoles(roles))
	}
	others := slices.DeleteFunc(slices.Clone(roles), func(r Role) bool { return r == RoleRecipient })
	if recipient != "" && !p.HasAny(others) && p.Recipient != recipient {
		return Forbidden("principal %q answers for recipient %q and may not call %s for recipient %q",
			p.Name, p.Recipient, operation, recipient)
	}
	return nil
}

func joinRoles(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, " or ")
}

// ValidatePrincipal checks one principal of an access file: a name, known
// roles, sources for a producer, a recipient id for a recipient (and only
// for one). It does not check the credential.
func ValidatePrincipal(p Principal) error {
	if p.Name == "" {
		return fmt.Errorf("principal without a name")
	}
	if len(p.Roles) == 0 {
		return fmt.Errorf("principal %q: no roles (one or more of %s)", p.Name, joinRoles(AllRoles))
	}
	for _, r := range p.Roles {
		if !ValidRole(r) {
			return fmt.Errorf("principal %q: unknown role %q (one of %s)", p.Name, r, joinRoles(AllRoles))
		}
	}
	if p.Has(RoleProducer) && len(p.Sources) == 0 {
		return fmt.Errorf("principal %q: a producer must list the sources it publishes from", p.Name)
	}
	for _, s := range p.Sources {
		if s == "" {
			return fmt.Errorf("principal %q: an empty source", p.Name)
		}
	}
	switch {
	case p.Has(RoleRecipient) && !ValidSlug(p.Recipient):
		return fmt.Errorf("principal %q: role recipient needs recipient: <registry id> (a slug), not %q", p.Name, p.Recipient)
	case !p.Has(RoleRecipient) && p.Recipient != "":
		return fmt.Errorf("principal %q: recipient %q given without role recipient", p.Name, p.Recipient)
	}
	return nil
}

// Consultation is one request that reads a person's data (DPA 2018 s.62:
// logs of consultation show its justification, date and time and, as far
// as possible, who consulted). It is recorded in the ledger before the
// request is answered; the time is the ledger's. It is also the data of
// the ledger's org.sharelog.consultation.v1 entries (consultation.go).
type Consultation struct {
	// Principal is the name of who asked, from the access file; empty on
	// a server without access control, where nobody is authenticated.
	Principal string `json:"principal,omitempty" validate:"max=200"`
	// Operation is the API operation (openapi.yaml operationId).
	Operation string `json:"operation" validate:"required,max=100"`
	// Reason is the justification the principal gave (Sharelog-Reason).
	Reason string `json:"reason,omitempty" validate:"max=1000"`
	// Subject is the person looked up, or nil for a query that is not by
	// person (a page of disclosures to one recipient, the manual queue).
	Subject *Subject `json:"subject,omitempty"`
	// Query is what was asked besides the person (filters), without
	// identifiers.
	Query string `json:"query,omitempty" validate:"max=2000"`
}
