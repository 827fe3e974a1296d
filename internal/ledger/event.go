package ledger

import (
	"encoding/json"
	"log/slog"
	"strings"
	"time"
)

// The CloudEvent types sharelog understands. Each has a JSON Schema in schemas/
// and a Go type below; the two are tested against one fixture set.
const (
	TypeRecipient         = "org.sharelog.recipient.v1"
	TypeDisclosure        = "org.sharelog.disclosure.v1"
	TypeRectification     = "org.sharelog.rectification.v1"
	TypeErasure           = "org.sharelog.erasure.v1"
	TypeRestriction       = "org.sharelog.restriction.v1"
	TypeRestrictionLifted = "org.sharelog.restriction.lifted.v1"
	TypeNotice            = "org.sharelog.notice.v1"
	TypeNoticeAck         = "org.sharelog.notice.ack.v1"
	TypeExemption         = "org.sharelog.exemption.v1"
	TypeHold              = "org.sharelog.hold.v1"
	TypeHoldReleased      = "org.sharelog.hold.released.v1"
)

// Types lists every event type with a constructor for its data.
var Types = map[string]func() any{
	TypeRecipient:         func() any { return new(Recipient) },
	TypeDisclosure:        func() any { return new(Disclosure) },
	TypeRectification:     func() any { return new(Rectification) },
	TypeErasure:           func() any { return new(Erasure) },
	TypeRestriction:       func() any { return new(Restriction) },
	TypeRestrictionLifted: func() any { return new(RestrictionLifted) },
	TypeNotice:            func() any { return new(Notice) },
	TypeNoticeAck:         func() any { return new(NoticeAck) },
	TypeExemption:         func() any { return new(Exemption) },
	TypeHold:              func() any { return new(Hold) },
	TypeHoldReleased:      func() any { return new(HoldReleased) },
	TypeNoticeDelivery:    func() any { return new(NoticeDelivery) },
	TypeSubjectForgotten:  func() any { return new(SubjectForgotten) },
	TypeExtension:         func() any { return new(Extension) },
	TypeRequestPaused:     func() any { return new(RequestPaused) },
	TypeRequestResumed:    func() any { return new(RequestResumed) },
	TypeConsultation:      func() any { return new(Consultation) },
}

// Regimes are the legal regimes a disclosure or request is made under.
const (
	RegimeUKGDPR   = "uk-gdpr"
	RegimeEUGDPR   = "eu-gdpr"
	RegimeDPAPart3 = "dpa-part3"
	RegimeDPAPart4 = "dpa-part4"
)

// MarshalEvent encodes an event sharelog makes itself in the CloudEvents
// JSON (structured) format, with JSON data: what its Raw holds.
func MarshalEvent(id, source, typ string, at time.Time, data any) ([]byte, error) {
	return json.Marshal(struct {
		SpecVersion     string    `json:"specversion"`
		ID              string    `json:"id"`
		Source          string    `json:"source"`
		Type            string    `json:"type"`
		Time            time.Time `json:"time"`
		DataContentType string    `json:"datacontenttype"`
		Data            any       `json:"data"`
	}{"1.0", id, source, typ, at, "application/json", data})
}

// Event is a validated CloudEvent: the context attributes sharelog keeps and
// the decoded data, one of the pointer types in Types (*Disclosure, ...).
// Raw is the event in the CloudEvents JSON (structured) format, exactly as it
// is recorded.
type Event struct {
	Source     string    `json:"source"`
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Time       time.Time `json:"time"`
	DataSchema string    `json:"dataschema,omitempty"`
	Data       any       `json:"-"`
	Raw        []byte    `json:"-"`
	// From is the recipient the transport vouches for: set by the ingest loop
	// for messages on sharelog.in.ack.<recipient>, empty otherwise. An ack is
	// accepted only from the recipient its notice went to.
	From string `json:"-"`
	// Internal is set by the ingest loop for messages on sharelog.in.notify,
	// the subject only sharelog itself publishes to (producers must not be
	// allowed to). Only internal events may record notice deliveries.
	Internal bool `json:"-"`
}

// LogValue keeps the event's data, which may hold personal data, out of logs.
func (e *Event) LogValue() slog.Value {
	return slog.GroupValue(slog.String("source", e.Source), slog.String("id", e.ID), slog.String("type", e.Type))
}

// Subject identifies a data subject within a scheme (dbs-ref, email, case, ...).
// Its ID is personal data: it is kept only inside event data and, in the ledger,
// as a keyed hash. Subject redacts itself in logs.
type Subject struct {
	Scheme string `json:"scheme" validate:"required,scheme"`
	ID     string `json:"id" validate:"required,max=256"`
}

// String returns "scheme:id". It is personal data: never log it.
func (s Subject) String() string { return s.Scheme + ":" + s.ID }

// LogValue redacts the identifier.
func (s Subject) LogValue() slog.Value {
	return slog.GroupValue(slog.String("scheme", s.Scheme), slog.String("id", "[redacted]"))
}

// ParseSubject parses "scheme:id". The scheme is everything before the first
// colon; the id may itself contain colons.
func ParseSubject(s string) (Subject, error) {
	scheme, id, ok := strings.Cut(s, ":")
	if !ok || scheme == "" || id == "" {
		return Subject{}, Errorf(EINVALID, "subject must be SCHEME:ID, such as dbs-ref:A1")
	}
	return Subject{Scheme: scheme, ID: id}, nil
}

// Channel says how a recipient is told of rectifications, erasures and
// restrictions. Webhook secrets live in server configuration, never in events.
type Channel struct {
	Type string `json:"type" validate:"required,oneof=nats webhook manual"`
	URL  string `json:"url,omitempty" validate:"required_if=Type webhook,omitempty,url,startswith=http"`
}

// Recipient roles.
const (
	RoleController         = "controller"
	RoleProcessor          = "processor"
	RoleJointController    = "joint-controller"
	RoleCompetentAuthority = "competent-authority"
)

// Recipient is an entry of the recipient registry (org.sharelog.recipient.v1).
// A later event for the same ID replaces the earlier definition.
type Recipient struct {
	ID               string  `json:"id" validate:"required,slug"`
	Name             string  `json:"name" validate:"required,max=200"`
	Role             string  `json:"role" validate:"required,oneof=controller processor joint-controller competent-authority"`
	Country          string  `json:"country,omitempty" validate:"omitempty,iso3166_1_alpha2"`
	Regime           string  `json:"regime,omitempty" validate:"omitempty,regime"`
	Channel          Channel `json:"channel"`
	Contact          string  `json:"contact,omitempty" validate:"max=500"`
	SLADays          int     `json:"slaDays,omitempty" validate:"min=0,max=366"`
	InquiryAuthority bool    `json:"inquiryAuthority,omitempty"`
}

// RecordRef points at the record in a producing system that was disclosed.
type RecordRef struct {
	System  string `json:"system" validate:"required,max=200"`
	Ref     string `json:"ref" validate:"required,max=200"`
	Version string `json:"version,omitempty" validate:"max=100"`
	Digest  string `json:"digest,omitempty" validate:"max=200"`
}

// Transfer describes a transfer outside the UK (or EEA).
type Transfer struct {
	Country   string `json:"country" validate:"required,iso3166_1_alpha2"`
	Safeguard string `json:"safeguard,omitempty" validate:"max=200"`
}

// Disclosure is one disclosure of one or more people's data to one recipient
// (org.sharelog.disclosure.v1). Under dpa-part3 the DPA 2018 s.62 log fields
// DisclosedBy and Justification are required.
type Disclosure struct {
	Subjects      []Subject   `json:"subjects" validate:"required,min=1,max=1000,dive"`
	Recipient     string      `json:"recipient" validate:"required,slug"`
	Categories    []string    `json:"categories" validate:"required,min=1,max=100,dive,category"`
	Purpose       string      `json:"purpose" validate:"required,purpose"`
	LawfulBasis   string      `json:"lawfulBasis" validate:"required,lawfulbasis"`
	Regime        string      `json:"regime" validate:"required,regime"`
	DisclosedAt   time.Time   `json:"disclosedAt" validate:"required"`
	DisclosedBy   string      `json:"disclosedBy,omitempty" validate:"required_if=Regime dpa-part3,max=200"`
	Justification string      `json:"justification,omitempty" validate:"required_if=Regime dpa-part3,max=4000"`
	Records       []RecordRef `json:"records,omitempty" validate:"max=100,dive"`
	Transfer      *Transfer   `json:"transfer,omitempty"`
	Inquiry       bool        `json:"inquiry,omitempty"`
	OnwardOf      string      `json:"onwardOf,omitempty" validate:"max=256"`
	// ReceivedFrom is the registry id of the competent authority the data
	// came from (DPA 2018 s.48(7)): it is told of a rectification too.
	ReceivedFrom string `json:"receivedFrom,omitempty" validate:"omitempty,slug"`
}

// Change is one rectified field.
type Change struct {
	Category string `json:"category" validate:"required,category"`
	Field    string `json:"field" validate:"required,max=200"`
	Value    any    `json:"value"`
}

// RequestHeader is what every request carries: the request's id, the data
// subject it is about and when it was decided. The four request types
// (rectification, erasure, restriction, lifting of a restriction) embed it;
// its members sit at the top of their data.
type RequestHeader struct {
	Request   string    `json:"request" validate:"required,max=200"`
	Subject   Subject   `json:"subject"`
	DecidedAt time.Time `json:"decidedAt" validate:"required"`
}

// Head returns the header.
func (h *RequestHeader) Head() *RequestHeader { return h }

// A Request is the data of a request type. Decide opens its obligations
// from its header and its scope; a new request type embeds RequestHeader,
// says its scope, and has an entry in Types and RequestActions.
type Request interface {
	Head() *RequestHeader
	// Scope returns the categories the request covers (none: all) and the
	// regime it was decided under ("" when it does not say).
	Scope() (categories []string, regime string)
}

// Rectification is a decision to rectify a subject's data
// (org.sharelog.rectification.v1). No categories means all.
type Rectification struct {
	RequestHeader
	Categories []string `json:"categories,omitempty" validate:"max=100,dive,category"`
	Changes    []Change `json:"changes,omitempty" validate:"max=1000,dive"`
	Summary    string   `json:"summary,omitempty" validate:"max=4000"`
	DecidedBy  string   `json:"decidedBy,omitempty" validate:"max=200"`
	Regime     string   `json:"regime,omitempty" validate:"omitempty,regime"`

	// ReceivedAt is when the person's request arrived: it starts the
	// month to answer them (UK GDPR Art. 12(3); DPA 2018 s.54).
	ReceivedAt *time.Time `json:"receivedAt,omitempty"`
}

func (r *Rectification) Scope() ([]string, string) { return r.Categories, r.Regime }

// Erasure is a decision to erase a subject's data (org.sharelog.erasure.v1).
type Erasure struct {
	RequestHeader
	Categories []string `json:"categories,omitempty" validate:"max=100,dive,category"`
	Ground     string   `json:"ground,omitempty" validate:"max=100"`
	DecidedBy  string   `json:"decidedBy,omitempty" validate:"max=200"`
	Regime     string   `json:"regime,omitempty" validate:"omitempty,regime"`

	// ReceivedAt is when the person's request arrived: it starts the
	// month to answer them (UK GDPR Art. 12(3); DPA 2018 s.54).
	ReceivedAt *time.Time `json:"receivedAt,omitempty"`
}

func (e *Erasure) Scope() ([]string, string) { return e.Categories, e.Regime }

// Restriction is a decision to restrict processing (org.sharelog.restriction.v1).
type Restriction struct {
	RequestHeader
	Categories []string `json:"categories,omitempty" validate:"max=100,dive,category"`
	Ground     string   `json:"ground,omitempty" validate:"omitempty,oneof=art18-1-a art18-1-b art18-1-c art18-1-d"`
	DecidedBy  string   `json:"decidedBy,omitempty" validate:"max=200"`

	// ReceivedAt is when the person's request arrived: it starts the
	// month to answer them (UK GDPR Art. 12(3); DPA 2018 s.54).
	ReceivedAt *time.Time `json:"receivedAt,omitempty"`
}

func (r *Restriction) Scope() ([]string, string) { return r.Categories, "" }

// RestrictionLifted lifts an earlier restriction (org.sharelog.restriction.lifted.v1).
// Art. 18(3): the subject must be told before the restriction is lifted. Its
// scope is the restriction's.
type RestrictionLifted struct {
	RequestHeader
	Restriction       string     `json:"restriction" validate:"required,max=200"`
	SubjectInformedAt *time.Time `json:"subjectInformedAt,omitempty"`
}

func (r *RestrictionLifted) Scope() ([]string, string) { return nil, "" }

// Notice actions.
const (
	ActionRectify         = "rectify"
	ActionErase           = "erase"
	ActionRestrict        = "restrict"
	ActionLiftRestriction = "lift-restriction"
)

// Notice tells one recipient what to do about data it received
// (org.sharelog.notice.v1). It carries only what that recipient received.
type Notice struct {
	Notice      string    `json:"notice" validate:"required,max=200"`
	Action      string    `json:"action" validate:"required,oneof=rectify erase restrict lift-restriction"`
	Request     string    `json:"request" validate:"required,max=200"`
	Subject     Subject   `json:"subject"`
	Categories  []string  `json:"categories" validate:"required,min=1,dive,category"`
	Disclosures []string  `json:"disclosures" validate:"required,min=1"`
	Changes     []Change  `json:"changes,omitempty" validate:"dive"`
	Due         time.Time `json:"due" validate:"required"`
	// Instruction marks a notice to a processor as the controller's
	// documented instruction (UK GDPR Art. 28(3)(a),(g)).
	Instruction bool `json:"instruction,omitempty"`
	// Originator marks a notice to the competent authority the data came
	// from (DPA 2018 s.48(7)); its disclosures are ours that named it.
	Originator bool `json:"originator,omitempty"`
	// Hold is set on a notice to restrict what an erasure asked to erase:
	// the data is kept under a legal hold (DPA 2018 s.47(2)).
	Hold *NoticeHold `json:"hold,omitempty"`
}

// NoticeHold tells a recipient why it is to restrict, not erase: the legal
// hold's reason and when it is to be reviewed.
type NoticeHold struct {
	Hold     string     `json:"hold" validate:"required,max=200"`
	Reason   string     `json:"reason" validate:"required,max=4000"`
	ReviewAt *time.Time `json:"reviewAt,omitempty"`
}

// NoticeAck is a recipient's answer to a notice (org.sharelog.notice.ack.v1).
type NoticeAck struct {
	Notice  string `json:"notice" validate:"required,max=200"`
	Outcome string `json:"outcome" validate:"required,oneof=done not-held refused"`
	Note    string `json:"note,omitempty" validate:"max=4000"`
}

// Exemption records that a recipient will not be told, and why
// (org.sharelog.exemption.v1).
type Exemption struct {
	Notice        string `json:"notice" validate:"required,max=200"`
	Reason        string `json:"reason" validate:"required,oneof=impossible disproportionate-effort inquiry-authority other"`
	Justification string `json:"justification" validate:"required,max=4000"`
	DecidedBy     string `json:"decidedBy" validate:"required,max=200"`
}

// HoldScope says what a legal hold covers. An empty scope covers nothing.
type HoldScope struct {
	Subject    *Subject `json:"subject,omitempty"`
	Purpose    string   `json:"purpose,omitempty" validate:"omitempty,purpose"`
	Categories []string `json:"categories,omitempty" validate:"max=100,dive,category"`
}

// Hold places a legal hold that stops expiry and forgetting (org.sharelog.hold.v1).
type Hold struct {
	Hold     string     `json:"hold" validate:"required,max=200"`
	Scope    *HoldScope `json:"scope,omitempty"`
	Reason   string     `json:"reason" validate:"required,max=4000"`
	PlacedBy string     `json:"placedBy,omitempty" validate:"max=200"`
	ReviewAt *time.Time `json:"reviewAt,omitempty"`
}

// HoldReleased releases a legal hold (org.sharelog.hold.released.v1).
type HoldReleased struct {
	Hold     string     `json:"hold" validate:"required,max=200"`
	Scope    *HoldScope `json:"scope,omitempty"`
	Reason   string     `json:"reason" validate:"required,max=4000"`
	PlacedBy string     `json:"placedBy,omitempty" validate:"max=200"`
	ReviewAt *time.Time `json:"reviewAt,omitempty"`
}
