package ledger

import (
	"errors"
	"fmt"
	"strings"
)

// Error codes. internal/http maps each to one HTTP status, and its client maps
// them back, so callers on both sides match errors with ErrorCode.
const (
	EINVALID     = "invalid"     // the input is wrong; the message says how
	ENOTFOUND    = "not_found"   // the thing asked for does not exist
	ECONFLICT    = "conflict"    // the request contradicts the ledger's state
	EUNAVAILABLE = "unavailable" // a dependency is not ready; try again
	EINTERNAL    = "internal"    // a bug or an I/O failure
	ETOOLARGE    = "too_large"   // the input is over a size limit
	// EUNAUTHENTICATED: no valid credential was given (HTTP 401).
	EUNAUTHENTICATED = "unauthenticated"
	// EFORBIDDEN: the principal's roles do not allow this (HTTP 403).
	EFORBIDDEN = "forbidden"
	// ETOOMANY: the principal is over its rate limit (HTTP 429).
	ETOOMANY = "too_many_requests"
)

// Error is an application error with a code and a message safe to show a user.
// Messages never contain data-subject identifiers.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: its *Error's, an *InvalidError's
// (EINVALID), or EINTERNAL for any other non-nil error.
func ErrorCode(err error) string {
	var e *Error
	var ie *InvalidError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	case errors.As(err, &ie):
		return EINVALID
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the user-facing message of err; internal errors get a
// generic message so that no detail leaks.
func ErrorMessage(err error) string {
	var e *Error
	var ie *InvalidError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	case errors.As(err, &ie):
		return ie.Error()
	default:
		return "internal error"
	}
}

// Reason classifies why an event was refused. It is the third token of the
// subject a refused NATS message is republished on
// (sharelog.rejected.<reason>.<source token>),
// the value of its Sharelog-Reason header and a label of the rejection metric.
type Reason string

// The reasons an event can be refused.
const (
	ReasonMalformed        Reason = "malformed"            // not JSON, or not an object where one is needed
	ReasonNotCloudEvent    Reason = "not-cloudevent"       // a required context attribute is missing or wrong
	ReasonSpecVersion      Reason = "specversion"          // specversion is not 1.0
	ReasonUnknownType      Reason = "unknown-type"         // type is not one of Types
	ReasonContentType      Reason = "content-type"         // datacontenttype is not application/json
	ReasonInvalidData      Reason = "invalid-data"         // data breaks its JSON Schema or field rules
	ReasonUnknownKey       Reason = "unknown-key"          // a category, purpose or lawful basis not in the vocabulary
	ReasonUnknownRecipient Reason = "unknown-recipient"    // the recipient is not registered
	ReasonOversize         Reason = "oversize"             // over the size limit
	ReasonIdentifierHeader Reason = "identifier-in-header" // a data-subject identifier in a context attribute
	ReasonConflict         Reason = "conflict"             // contradicts the ledger's state
	ReasonUnknownNotice    Reason = "unknown-notice"       // an ack, exemption or delivery names a notice sharelog never opened
	ReasonUnknownRequest   Reason = "unknown-request"      // a restriction.lifted names a restriction not in the ledger
	ReasonWrongRecipient   Reason = "wrong-recipient"      // an ack from a recipient other than the notice's
	ReasonExemptionRefused Reason = "exemption-refused"    // the exemption is not available under the regime (DPA 2018 s.48)
	ReasonForbidden        Reason = "forbidden"            // the publisher may not publish it (access.go, MayPublish)
)

// Problem is one thing wrong with one event. Field names the offending place
// as a path (data.categories[1], ce-subject, ...); Detail says what is wrong
// and never contains a data-subject identifier.
type Problem struct {
	Reason Reason `json:"reason"`
	Field  string `json:"field,omitempty"`
	Detail string `json:"detail"`
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Detail
	}
	return p.Field + ": " + p.Detail
}

// InvalidError is returned for an event that must not enter the ledger.
// It lists every problem found, first the most fundamental.
type InvalidError struct {
	Problems []Problem
}

// Invalid returns an *InvalidError with a single problem.
func Invalid(reason Reason, field, format string, args ...any) *InvalidError {
	return &InvalidError{Problems: []Problem{{Reason: reason, Field: field, Detail: fmt.Sprintf(format, args...)}}}
}

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// Reason returns the reason of the first problem, which classifies the event.
func (e *InvalidError) Reason() Reason {
	if len(e.Problems) == 0 {
		return ReasonInvalidData
	}
	return e.Problems[0].Reason
}
